"""The benchmark suite behind ``lpgx bench``: every timed item of lpgx in one run, and a
scaling sweep of the meta-gradient step over the number of agents.

Items (`ITEMS`, one entry each): environment stepping (`benchmarks.env_throughput`), one agent
update (`benchmarks.agent_throughput`), one meta-gradient step (`benchmarks.meta_step`), one
evolution strategies generation and a chunk of meta-steps with the PLR/GROOVE curriculum
(alg_regret) against the same with random levels (`benchmarks.es_plr`). An `Item` without a
``run`` is reported as "not yet available". Every item follows the protocol of
`benchmarks.common` (compiled ahead of time, compile time reported on its own, warm-up,
`block_until_ready`, repeats, median) and its record carries its config, the device and the
library versions.

The sweep runs the meta-gradient step for ``num_agents`` = 1, 2, 4, 8, … (one mini-batch)
until the suite's maximum, an out-of-memory error, or a point over the time limit (measured, or
predicted for the next point from the last one), or, where the suite has a time budget
(``quick``), before a point predicted to end past it.

Suites (`SUITES`): ``quick`` fits in about two minutes on a 2-core CPU; ``full`` uses the
reference sizes (the LPG with a GRU of 256, 64 workers × 20 steps) and sweeps up to 4096
agents. `TINY` holds the smallest sizes that exercise every item (tests).
"""

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax

from lpgx.sharding import agent_mesh, peak_memory_bytes

from . import agent_throughput, env_throughput, es_plr, meta_step
from .common import environment_info

__all__ = [
    "ITEMS",
    "SUITES",
    "TINY",
    "Context",
    "Item",
    "Sizes",
    "check_sizes",
    "device_info",
    "is_memory_error",
    "run_suite",
    "run_sweep",
    "scaling_figure",
    "validate_devices",
    "versions",
]


@dataclass(frozen=True)
class Sizes:
    """The sizes of one suite's items."""

    env_level_set: str = "all"
    """Level set of the environment-stepping item (random actions)."""
    env_num_envs: int = 64
    """Parallel (vmapped) environments."""
    env_steps: int = 200
    """Environment steps per timed call."""
    agent_level_set: str = "all_shortlife"
    """Level set of the agent-update item (A2C; the set's reference agent)."""
    agent_num_agents: int = 8
    agent_updates: int = 5
    """`agent_update` calls per timed call."""
    agent_workers: int = 64
    agent_rollout_len: int = 20
    meta: meta_step.Config = field(
        default_factory=lambda: meta_step.Config(lpg_gru_width=64, workers=16, repeats=3)
    )
    """The meta-gradient step item (its ``num_agents`` is the item's; the sweep varies it)."""
    sweep_max_agents: int = 8
    """Largest number of agents of the sweep."""
    sweep_time_limit_s: float = 60.0
    """A sweep point (compile + warm-up + repeats) may take this long; the sweep stops after
    one that took longer, or before one predicted to."""
    es: es_plr.ESBench = field(default_factory=lambda: es_plr.ESBench(num_updates=None))
    """The ES-generation item (``num_updates=None``: the level set's full lifetime)."""
    plr: es_plr.PLRBench = field(default_factory=lambda: es_plr.PLRBench(repeats=2))
    """The PLR/GROOVE item: a chunk of meta-steps with alg_regret, and with random."""
    time_budget_s: float | None = 110.0
    """The sweep starts no point predicted to end more than this many seconds after the suite
    started (``None``: no budget)."""
    repeats: int = 5
    """Timed calls of the environment and agent items."""


SUITES: dict[str, tuple[str, Sizes]] = {
    "quick": (
        "CPU-sized: 64 envs, 8 A2C agents, the quick preset's meta-step (GRU 64, 16 workers), "
        "sweep to 8 agents; about two minutes on 2 cores",
        Sizes(),
    ),
    "full": (
        "reference sizes: 4096 envs, 64 A2C agents, the acceptance meta-step (GRU 256, "
        "64 workers × 20 steps, K 5), sweep to 4096 agents",
        Sizes(
            env_num_envs=4096,
            env_steps=500,
            agent_num_agents=64,
            agent_updates=10,
            meta=meta_step.Config(repeats=5),
            es=es_plr.ESBench(
                pairs=64,
                workers=64,
                rollout_len=20,
                eval_episodes=64,
                lpg_gru_width=256,
                num_updates=None,
                repeats=3,
            ),
            plr=es_plr.PLRBench(
                num_agents=64,
                workers=64,
                lpg_gru_width=256,
                chunk_size=10,
                buffer_size=4000,
                score_episodes=64,
                repeats=3,
            ),
            sweep_max_agents=4096,
            sweep_time_limit_s=300.0,
            time_budget_s=None,
        ),
    ),
}

TINY = Sizes(
    env_level_set="sparse",  # one fixed layout: its sampler compiles in a fraction of `all`'s
    env_num_envs=2,
    env_steps=5,
    agent_level_set="sparse",
    agent_num_agents=2,
    agent_updates=2,
    agent_workers=2,
    agent_rollout_len=3,
    meta=meta_step.Config(
        level_set="sparse",
        num_agents=1,
        workers=2,
        rollout_len=3,
        num_agent_updates=1,
        lpg_gru_width=8,
        repeats=2,
        task_pool=2,
    ),
    es=es_plr.ESBench(
        level_set="sparse",
        pairs=1,
        workers=2,
        rollout_len=3,
        num_updates=2,
        eval_episodes=2,
        lpg_gru_width=8,
        lifetime_conditioning=False,
        repeats=2,
    ),
    plr=es_plr.PLRBench(
        level_set="sparse",
        num_agents=2,
        workers=2,
        rollout_len=3,
        num_agent_updates=1,
        lpg_gru_width=8,
        chunk_size=2,
        buffer_size=4,
        score_episodes=2,
        repeats=2,
    ),
    sweep_max_agents=2,
    sweep_time_limit_s=120.0,
    time_budget_s=None,
    repeats=2,
)
"""The smallest sizes that exercise every item and a two-point sweep (tests)."""


def versions() -> dict[str, str]:
    """Python and library versions."""
    info = environment_info()
    out = {k: str(info[k]) for k in ("python", "jax", "jaxlib", "equinox", "lpgx")}
    for name in ("optax", "numpy", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info(device_count: int) -> dict[str, Any]:
    """The devices, the number used (``--devices``), the host and its current load."""
    info = environment_info()
    return {
        "backend": info["backend"],
        "device_kind": info["device_kind"],
        "devices": info["devices"],
        "device_count": device_count,
        "devices_available": len(info["devices"]),
        "sharded": device_count > 1,  # agents / envs / candidates split over the devices
        "cpu_count": info["cpu_count"],
        "platform": info["platform"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "compilation_cache": getattr(jax.config, "jax_compilation_cache_dir", None),
    }


def validate_devices(devices: int | None) -> int:
    """The number of devices to use: all by default, else `devices` if there are that many
    (`lpgx.sharding.agent_mesh` raises a `ValueError` naming the fix otherwise)."""
    return int(agent_mesh(devices).devices.size)


def _largest_divisor(counts: Iterable[int], limit: int) -> int:
    return max(d for d in range(1, limit + 1) if all(c % d == 0 for c in counts))


def check_sizes(sizes: Sizes, device_count: int) -> None:
    """Raise `ValueError` (before anything compiles) unless every item's population splits
    evenly over `device_count` devices: the environments, the A2C agents, the agents of each
    meta-step mini-batch, the ES pairs and the PLR agents. The sweep uses multiples of the
    device count, so it always fits."""
    counts = {
        "environments (env_step)": sizes.env_num_envs,
        "A2C agents (agent_update)": sizes.agent_num_agents,
        "agents per mini-batch (meta_gradient_step)": sizes.meta.num_agents
        // sizes.meta.num_mini_batches,
        "antithetic pairs (es_generation)": sizes.es.pairs,
        "agents (plr_groove_step)": sizes.plr.num_agents,
    }
    bad = [f"{n} {what}" for what, n in counts.items() if n % device_count]
    if bad:
        best = _largest_divisor(counts.values(), device_count)
        raise ValueError(
            f"this suite cannot be split over {device_count} devices: {', '.join(bad)} "
            f"do not divide by {device_count}. Pass --devices {best} (the most devices every "
            "item divides over), or use a suite with larger populations (--suite full)."
        )


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


def _timing_fields(compile_s: float, median_s: float, min_s: float, max_s: float) -> dict:
    return {
        "compile_s": compile_s,
        "median_s": median_s,
        "min_s": min_s,
        "max_s": max_s,
        "spread": (max_s - min_s) / median_s if median_s > 0 else 0.0,
    }


def _env_step(ctx: Context) -> dict[str, Any]:
    s = ctx.sizes
    r = env_throughput.measure(
        s.env_level_set, s.env_num_envs, s.env_steps, s.repeats, ctx.seed, ctx.device_count
    )
    return {
        "config": {
            "level_set": r.level_set,
            "tabular": r.tabular,
            "num_envs": r.num_envs,
            "steps": r.steps,
            "repeats": s.repeats,
            "seed": ctx.seed,
            "devices": ctx.device_count,
        },
        **_timing_fields(r.compile_s, r.median_s, r.min_s, r.max_s),
        "env_steps_per_call": r.num_envs * r.steps,
        "env_steps_per_s": r.steps_per_s,
        "meta_steps_per_s": None,
    }


def _agent_update(ctx: Context) -> dict[str, Any]:
    s = ctx.sizes
    r = agent_throughput.measure(
        s.agent_level_set,
        s.agent_num_agents,
        updates=s.agent_updates,
        workers=s.agent_workers,
        rollout_len=s.agent_rollout_len,
        repeats=s.repeats,
        seed=ctx.seed,
        devices=ctx.device_count,
    )
    return {
        "config": {
            "level_set": r.level_set,
            "rule": "A2C",
            "agent": "tabular" if r.tabular else "MLP",
            "num_agents": r.num_agents,
            "updates": r.updates,
            "workers": r.workers,
            "rollout_len": r.rollout_len,
            "repeats": s.repeats,
            "seed": ctx.seed,
            "devices": ctx.device_count,
        },
        **_timing_fields(r.compile_s, r.median_s, r.min_s, r.max_s),
        "env_steps_per_call": r.env_steps,
        "env_steps_per_s": r.steps_per_s,
        "agent_updates_per_s": r.updates_per_s,
        "meta_steps_per_s": None,
    }


def _meta_point(ctx: Context, num_agents: int) -> dict[str, Any]:
    """One meta-gradient step measurement (cached: the item and the sweep share points)."""
    config = ctx.meta_config()
    cache_key = ("meta_gradient_step", num_agents)
    if cache_key not in ctx.points:
        start = time.perf_counter()
        if config not in ctx.prepared:
            ctx.prepared[config] = meta_step.Prepared(config)
        r = ctx.prepared[config].measure(num_agents)
        ctx.points[cache_key] = {
            **r.to_json(),
            "env_steps_per_call": r.env_steps_per_meta_step,
            "wall_s": time.perf_counter() - start,
        }
    return dict(ctx.points[cache_key])


def _meta_gradient_step(ctx: Context) -> dict[str, Any]:
    return _meta_point(ctx, ctx.meta_config().num_agents)


def _es_generation(ctx: Context) -> dict[str, Any]:
    return es_plr.measure_es(replace(ctx.sizes.es, devices=ctx.device_count), ctx.seed)


def _plr_groove_step(ctx: Context) -> dict[str, Any]:
    return es_plr.measure_plr(replace(ctx.sizes.plr, devices=ctx.device_count), ctx.seed)


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


ITEMS: tuple[Item, ...] = (
    Item(
        "env_step",
        "environment stepping",
        "lax.scan of vmapped GridWorld.step with random actions (benchmarks.env_throughput)",
        run=_env_step,
    ),
    Item(
        "agent_update",
        "agent update",
        "lax.scan of vmapped agent_update with A2C: one rollout of workers × rollout_len "
        "steps and one optimiser step per update (benchmarks.agent_throughput)",
        run=_agent_update,
    ),
    Item(
        "meta_gradient_step",
        "meta-gradient step",
        "MetaGradient.step: K unrolled LPG agent updates, the outer rollout, the meta-gradient, "
        "clipping and Adam, all agents in one mini-batch (benchmarks.meta_step)",
        run=_meta_gradient_step,
        sweep=_meta_point,
    ),
    Item(
        "es_generation",
        "ES generation",
        "EvolutionStrategy.step: one generation of antithetic candidates, each training an "
        "agent for num_updates updates (capped lifetime where the config says so) and scoring "
        "it on eval_episodes episodes; env steps = 2·pairs·(updates·workers·T + episodes·"
        "eval_steps) (benchmarks.es_plr)",
        run=_es_generation,
    ),
    Item(
        "plr_groove_step",
        "PLR/GROOVE step",
        "Trainer.run_chunk of chunk_size meta-steps (staggered lifetimes, some end) with the "
        "curriculum scored by alg_regret (cached A2C antagonists), and the same with random; "
        "timings are alg_regret's, plus both medians and their ratio (benchmarks.es_plr)",
        run=_plr_groove_step,
    ),
)


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


def run_suite(
    sizes: Sizes,
    *,
    suite: str = "custom",
    tiny: bool = False,
    seed: int = 0,
    device_count: int | None = None,
    items: Iterable[Item] = ITEMS,
    log: Callable[[str], None] | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Run every item and sweep; returns the JSON-serialisable report.

    An item that raises is recorded with ``status = "error"`` and the suite goes on.
    """
    start = time.perf_counter()
    count = validate_devices(device_count)
    check_sizes(sizes, count)
    ctx = Context(
        sizes=sizes, seed=seed, device_count=count, log=log or (lambda _: None), start=start
    )
    vers = versions()
    records = []
    sweeps = []
    items = tuple(items)
    for item in items:
        record: dict[str, Any] = {"name": item.name, "title": item.title, "what": item.what}
        if item.run is None:
            record.update(status="not yet available", reason=item.unavailable, config=None)
        else:
            ctx.log(f"{item.title}…")
            try:
                record.update(status="ok", **item.run(ctx))
                record.setdefault("peak_memory_bytes", peak_memory_bytes(count))
            except Exception as err:  # recorded, not fatal: the other items still run
                record.update(status="error", error=f"{type(err).__name__}: {err}")
        record.update(device=device_info(count), versions=vers)
        records.append(record)
    for item in items:
        if item.sweep is None or item.run is None:
            continue
        try:
            sweeps.append({"status": "ok", **run_sweep(item, ctx)})
        except Exception as err:
            sweeps.append({"item": item.name, "status": "error", "error": f"{err}", "points": []})
        sweeps[-1].update(device=device_info(count), versions=vers)
    env = environment_info()
    return {
        "suite": suite,
        "tiny": tiny,
        "command": command,
        "date": env["date"],
        "wall_s": time.perf_counter() - start,
        "seed": seed,
        "sizes": asdict(sizes),
        "device": device_info(count),
        "versions": vers,
        "items": records,
        "scaling": sweeps,
        "not_yet_available": [r["name"] for r in records if r["status"] == "not yet available"],
        "protocol": (
            "jax.jit(f).lower(*args).compile() timed on its own; one warm-up call; repeats "
            "each ended by jax.block_until_ready; median, min, max and (max-min)/median"
        ),
    }


def scaling_figure(report: dict[str, Any], path: Path) -> Path:
    """Write a PNG of the scaling sweeps of `report`: meta-steps/s and env-steps/s against
    ``num_agents`` (log-log; bars span the repeats' min–max)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_meta, ax_env = fig.subplots(1, 2)
    drawn = 0
    for sweep in report["scaling"]:
        points = sweep.get("points", [])
        if not points:
            continue
        drawn += 1
        n = [p["num_agents"] for p in points]
        meta = [p["meta_steps_per_s"] for p in points]
        meta_err = [
            [m - 1 / p["max_s"] for m, p in zip(meta, points, strict=True)],
            [1 / p["min_s"] - m for m, p in zip(meta, points, strict=True)],
        ]
        env = [p["env_steps_per_s"] for p in points]
        env_err = [
            [e - p["env_steps_per_call"] / p["max_s"] for e, p in zip(env, points, strict=True)],
            [p["env_steps_per_call"] / p["min_s"] - e for e, p in zip(env, points, strict=True)],
        ]
        label = sweep.get("title", sweep["item"])
        ax_meta.errorbar(n, meta, yerr=meta_err, marker="o", capsize=3, label=label)
        ax_env.errorbar(n, env, yerr=env_err, marker="o", capsize=3, label=label)
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:.2g}")
    for ax, ylabel in ((ax_meta, "meta-steps / s"), (ax_env, "env steps / s (incl. gradients)")):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("num_agents (one mini-batch)")
        ax.set_ylabel(ylabel)
        if drawn:
            ax.set_yscale("log")
            low, high = ax.get_ylim()
            # Tick labels at 1, 2, 5 × 10^k; at every digit when the range is narrow.
            subs = (1.0, 2.0, 5.0) if high > 5 * low else tuple(float(d) for d in range(1, 10))
            ax.yaxis.set_major_locator(LogLocator(subs=subs))
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no sweep points", ha="center", va="center", transform=ax.transAxes)
        ax.grid(alpha=0.3, which="both")
    device = report["device"]
    vers = report["versions"]
    fig.suptitle(
        f"lpgx bench --suite {report['suite']}{' (tiny)' if report['tiny'] else ''}: "
        f"{device['device_kind']} ×{device['device_count']} ({device['backend']}), "
        f"jax {vers['jax']}, lpgx {vers['lpgx']}, {report['date']}",
        fontsize=9,
    )
    fig.savefig(path, dpi=110)
    return path
