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

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from typing import Any

from lpgx.sharding import peak_memory_bytes

from . import agent_throughput, env_throughput, es_plr, meta_step
from .common import environment_info
from .report import device_info as device_info
from .report import scaling_figure as scaling_figure
from .report import versions as versions
from .sizes import SUITES as SUITES
from .sizes import TINY as TINY
from .sizes import Sizes as Sizes
from .sizes import check_sizes as check_sizes
from .sizes import validate_devices as validate_devices
from .sweep import Context as Context
from .sweep import Item as Item
from .sweep import is_memory_error as is_memory_error
from .sweep import run_sweep as run_sweep

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
