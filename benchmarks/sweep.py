"""The scheduler of the benchmark suite: what items share (`Context`), what an item is
(`Item`), and the scaling sweep of an item over the number of agents (`run_sweep`), which stops
at the suite's maximum, an out-of-memory error, or a point over the time limit (measured, or
predicted for the next point from the last one), or, where the suite has a time budget, before
a point predicted to end past it."""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import jax

from . import meta_step
from .sizes import Sizes

__all__ = ["Context", "Item", "is_memory_error", "run_sweep"]


def is_memory_error(err: BaseException) -> bool:
    """Whether `err` says the device ran out of memory (compiling or running)."""
    if isinstance(err, MemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, jax.errors.JaxRuntimeError) and (
        "resource_exhausted" in text or "out of memory" in text
    )


@dataclass
class Context:
    """What items of one suite run share: sizes, seed, device count and caches."""

    sizes: Sizes
    seed: int = 0
    device_count: int = 1
    log: Callable[[str], None] = lambda _: None
    prepared: dict[meta_step.Config, meta_step.Prepared] = field(default_factory=dict)
    points: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    """Measured points by (item name, number of agents): an item and its sweep share them."""
    start: float = field(default_factory=time.perf_counter)

    def meta_config(self) -> meta_step.Config:
        return replace(self.sizes.meta, seed=self.seed, devices=self.device_count)


ItemRunner = Callable[[Context], dict[str, Any]]
PointRunner = Callable[[Context, int], dict[str, Any]]


@dataclass(frozen=True)
class Item:
    """One benchmark of the suite.

    ``run`` measures the item at the suite's sizes and returns its record: ``config`` (a dict),
    ``compile_s``, ``median_s``, ``min_s``, ``max_s``, ``spread`` (see `_timing_fields`),
    ``env_steps_per_call``, ``env_steps_per_s`` and ``meta_steps_per_s`` (``None`` where it
    does not apply), optionally ``peak_memory_bytes`` and more; the suite adds the name,
    status, device and versions. ``None`` marks an extension point whose code does not exist
    yet (reported as "not yet available" with ``unavailable`` as the reason, never timed).
    ``sweep`` measures one point of the scaling sweep for a number of agents: the same record
    plus ``wall_s`` (everything the point took, for the time limits) and optionally
    ``times_s``; items without one are not swept. Cache points in `Context.points` under
    ``(name, num_agents)`` so that the item and its sweep share them.
    """

    name: str
    title: str
    what: str
    run: ItemRunner | None = None
    sweep: PointRunner | None = None
    unavailable: str = ""

    @property
    def available(self) -> bool:
        return self.run is not None


def run_sweep(item: Item, ctx: Context) -> dict[str, Any]:
    """Run `item`'s scaling sweep over ``num_agents`` = d, 2d, 4d, … (d: the device count)
    and say why it stopped.

    Once a limit is hit no new point is measured, but points measured already (the item's
    own) are still included: they cost nothing.
    """
    assert item.sweep is not None
    s = ctx.sizes
    points: list[dict[str, Any]] = []
    stopped: str | None = None
    n = ctx.device_count  # every point splits evenly over the devices
    while n <= s.sweep_max_agents:
        cached = (item.name, n) in ctx.points
        if stopped is not None and not cached:
            n *= 2
            continue
        elapsed = time.perf_counter() - ctx.start
        budget = s.time_budget_s
        if not points and not cached and budget is not None and elapsed > budget:
            # Nothing to predict from: stop if the budget is spent already.
            stopped = (
                f"the suite's {budget:g} s budget was spent ({elapsed:.0f} s) before {n} agent(s)"
            )
            continue
        if points and not cached:
            last = points[-1]
            # Compilation barely grows with the agent axis; the run time at most doubles.
            calls = len(last.get("times_s", ())) + 1
            predicted = last["wall_s"] + calls * last["median_s"]
            elapsed = time.perf_counter() - ctx.start
            if predicted > s.sweep_time_limit_s:
                stopped = (
                    f"{n} agents predicted to take {predicted:.0f} s > the "
                    f"{s.sweep_time_limit_s:g} s limit per point"
                )
            elif s.time_budget_s is not None and elapsed + predicted > s.time_budget_s:
                stopped = (
                    f"{n} agents predicted to take {predicted:.0f} s, past the suite's "
                    f"{s.time_budget_s:g} s budget ({elapsed:.0f} s spent)"
                )
            if stopped is not None:
                continue
        ctx.log(f"{item.name} sweep: {n} agent(s){' (measured already)' if cached else '…'}")
        try:
            point = item.sweep(ctx, n)
        except Exception as err:
            if not is_memory_error(err):
                raise
            stopped = f"out of memory at {n} agents: {str(err).splitlines()[0][:200]}"
            continue
        points.append({"num_agents": n, **point})
        if point["wall_s"] > s.sweep_time_limit_s and stopped is None:
            stopped = (
                f"{n} agents took {point['wall_s']:.0f} s > the {s.sweep_time_limit_s:g} s "
                "limit per point"
            )
        n *= 2
    if stopped is None:
        stopped = f"reached the maximum of {s.sweep_max_agents} agents"
    config = dict(points[0]["config"]) if points else asdict(ctx.meta_config())
    config.pop("num_agents", None)
    return {
        "item": item.name,
        "title": item.title,
        "config": config,
        "max_agents": s.sweep_max_agents,
        "time_limit_s": s.sweep_time_limit_s,
        "time_budget_s": s.time_budget_s,
        "points": points,
        "stopped": stopped,
    }
