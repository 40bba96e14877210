"""The evolution-strategies generation and the PLR/GROOVE curriculum step, timed with the
protocol of `benchmarks.common` (compiled ahead of time, compile time on its own, warm-up,
`block_until_ready`, repeats, median). Used by `benchmarks.suite` (``lpgx bench``).

- `measure_es`: one ES generation, `EvolutionStrategy.step` (ask, every candidate trains its
  agent for ``num_updates`` updates and is evaluated, tell). The generation's cost grows
  linearly with the lifetime, so CPU suites cap ``num_updates`` below the level set's
  ``max_lifetime``; the record says so.
- `measure_plr`: a chunk of ``chunk_size`` meta-gradient steps (`Trainer.run_chunk`, lifetimes
  staggered so that some end within it) with the curriculum scored by ``alg_regret`` (GROOVE:
  ended levels scored against cached A2C antagonists), and the same chunk with ``random``
  (domain randomisation); reports both medians and their ratio.
"""

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from lpgx.compose import TrainConfig
from lpgx.sharding import replicate, shard_agents

from .common import Timing, time_compiled

__all__ = ["ESBench", "PLRBench", "measure_es", "measure_plr"]


@dataclass(frozen=True)
class ESBench:
    """Sizes of the ES-generation item."""

    level_set: str = "all_vrandlife"
    pairs: int = 4
    """Antithetic pairs (the population is twice this)."""
    workers: int = 8
    rollout_len: int = 10
    num_updates: int | None = 50
    """Agent updates per candidate (its lifetime); ``None``: the level set's ``max_lifetime``;
    smaller values are capped lifetimes (the cost is linear in it)."""
    eval_episodes: int = 16
    lpg_gru_width: int = 64
    lifetime_conditioning: bool = True
    repeats: int = 3
    devices: int = 1
    """Devices the pairs (and candidates) are split over; ``pairs`` must divide by it."""
    mini_batches: int = 1
    """Mini-batches the ``2 · pairs`` candidates train in, one after another (strided, each
    until its longest lifetime ends); it must divide ``2 · pairs``."""

    def train_config(self, seed: int) -> TrainConfig:
        return TrainConfig(
            env_mode=self.level_set,
            seed=seed,
            use_es=True,
            lifetime_conditioning=self.lifetime_conditioning,
            num_agents=self.pairs,
            num_mini_batches=self.mini_batches,
            env_workers=self.workers,
            train_rollout_len=self.rollout_len,
            lpg_gru_width=self.lpg_gru_width,
            es_num_eval_episodes=self.eval_episodes,
            stagger=False,
            devices=self.devices,
        )


@dataclass(frozen=True)
class PLRBench:
    """Sizes of the PLR/GROOVE item (a chunk of meta-gradient steps, two curricula)."""

    level_set: str = "all_vrandlife"
    num_agents: int = 8
    workers: int = 16
    rollout_len: int = 20
    num_agent_updates: int = 5
    lpg_gru_width: int = 64
    chunk_size: int = 4
    """Meta-steps per timed call (`Trainer.run_chunk`)."""
    buffer_size: int = 256
    score_episodes: int = 16
    repeats: int = 3
    devices: int = 1
    """Devices the agents are split over; ``num_agents`` must divide by it."""

    def train_config(self, seed: int, score_function: str) -> TrainConfig:
        return TrainConfig(
            env_mode=self.level_set,
            seed=seed,
            num_agents=self.num_agents,
            num_mini_batches=1,
            env_workers=self.workers,
            train_rollout_len=self.rollout_len,
            num_agent_updates=self.num_agent_updates,
            lpg_gru_width=self.lpg_gru_width,
            chunk_size=self.chunk_size,
            train_steps=10**9,  # never skip a step of the chunk
            stagger=True,
            score_function=score_function,  # type: ignore[arg-type]
            buffer_size=self.buffer_size,
            score_episodes=self.score_episodes,
            devices=self.devices,
        )


def _timing(t: Timing) -> dict[str, Any]:
    return {
        "compile_s": t.compile_s,
        "median_s": t.median_s,
        "min_s": t.min_s,
        "max_s": t.max_s,
        "spread": t.spread,
        "times_s": list(t.times_s),
    }


def _finite(metrics: dict[str, Any], what: str) -> dict[str, float]:
    host = {k: float(v) for k, v in metrics.items()}
    bad = sorted(k for k, v in host.items() if not math.isfinite(v))
    if bad:
        raise FloatingPointError(f"non-finite {what} metrics: {', '.join(bad)}")
    return host


def measure_es(c: ESBench, seed: int = 0) -> dict[str, Any]:
    """Compile one ES generation (`EvolutionStrategy.step`) and time it; returns the record."""
    from lpgx.compose import build_trainer  # deferred: `--help` stays fast
    from lpgx.meta import EvolutionStrategy

    start = time.perf_counter()
    config = c.train_config(seed)
    trainer = build_trainer(config)
    mesh = trainer.mesh(config.devices)  # the pairs and each mini-batch divide by the devices
    levels = trainer.tasks
    num_updates = levels.max_lifetime if c.num_updates is None else c.num_updates
    if num_updates < 1:
        raise ValueError(f"num_updates must be at least 1, got {num_updates}")
    num_updates = min(num_updates, levels.max_lifetime)
    assert isinstance(trainer.meta_opt, EvolutionStrategy)
    es = dataclasses.replace(trainer.meta_opt, num_updates=num_updates)
    k_rule, k_meta, k_tasks, k_agents, k_step = jax.random.split(jax.random.key(seed), 5)

    @eqx.filter_jit
    def prepare(key_rule: jax.Array, key_meta: jax.Array, key_tasks: jax.Array) -> Any:
        rule = trainer.init_rule(key_rule)
        tasks = jax.vmap(levels.sample)(jax.random.split(key_tasks, c.pairs))
        return es.init(rule, key_meta), es.init_agents(k_agents, tasks, rule)

    meta, agents = prepare(k_rule, k_meta, k_tasks)
    meta, agents = replicate(meta, mesh), shard_agents(agents, mesh)
    jax.block_until_ready((meta, agents))
    init_s = time.perf_counter() - start
    dynamic, static = eqx.partition((meta, agents), eqx.is_array)

    def step(d: Any, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        meta, agents = eqx.combine(d, static)
        meta, agents, metrics = es.step(meta, agents, key)
        return eqx.filter((meta, agents), eqx.is_array), metrics

    timing, (_, metrics) = time_compiled(step, dynamic, k_step, repeats=c.repeats)
    env_steps = es.env_steps_per_step(c.pairs)
    return {
        "config": {
            **asdict(c),
            "num_updates": num_updates,
            "max_lifetime": levels.max_lifetime,
            "lifetime_capped": num_updates < levels.max_lifetime,
            "population": 2 * c.pairs,
            "eval_steps": es.eval_steps,
            "seed": seed,
        },
        **_timing(timing),
        "init_s": init_s,
        "env_steps_per_call": env_steps,
        "env_steps_per_s": env_steps / timing.median_s,
        "generations_per_s": 1.0 / timing.median_s,
        "meta_steps_per_s": 1.0 / timing.median_s,
        "metrics": _finite(metrics, "ES generation"),
    }


def _time_chunk(c: PLRBench, seed: int, score_function: str) -> dict[str, Any]:
    from lpgx.compose import build_trainer

    config = c.train_config(seed, score_function)
    trainer = build_trainer(config)
    mesh = trainer.mesh(config.devices)
    state = trainer.shard(eqx.filter_jit(trainer.init)(), mesh)
    jax.block_until_ready(state)
    dynamic, static = eqx.partition(state, eqx.is_array)

    def chunk(d: Any) -> tuple[Any, dict[str, jax.Array]]:
        s, m = trainer.run_chunk(eqx.combine(d, static))
        return eqx.filter(s, eqx.is_array), m

    timing, (_, metrics) = time_compiled(chunk, dynamic, repeats=c.repeats)
    ended = int(jnp.sum(metrics["ended_lifetimes"]))
    host = _finite({k: jnp.mean(v) for k, v in metrics.items()}, f"{score_function} chunk")
    return {**_timing(timing), "ended_lifetimes": ended, "metrics": host}


def measure_plr(c: PLRBench, seed: int = 0) -> dict[str, Any]:
    """Time a chunk of meta-steps with ``alg_regret`` and with ``random``; returns the record
    (its top-level timings are alg_regret's)."""
    regret = _time_chunk(c, seed, "alg_regret")
    random = _time_chunk(c, seed, "random")
    env_steps = c.chunk_size * c.num_agents * (c.num_agent_updates + 1) * c.workers * c.rollout_len
    ratio = regret["median_s"] / random["median_s"]
    extra = regret["median_s"] - random["median_s"]
    return {
        "config": {
            **asdict(c),
            "score_functions": ["alg_regret", "random"],
            "stagger": True,
            "seed": seed,
        },
        **{k: regret[k] for k in ("compile_s", "median_s", "min_s", "max_s", "spread")},
        "times_s": regret["times_s"],
        "env_steps_per_call": env_steps,
        "env_steps_per_s": env_steps / regret["median_s"],
        "meta_steps_per_s": c.chunk_size / regret["median_s"],
        "alg_regret": regret,
        "random": random,
        "alg_regret_median_s": regret["median_s"],
        "random_median_s": random["median_s"],
        "ratio_alg_regret_to_random": ratio,
        "ended_lifetimes_per_chunk": regret["ended_lifetimes"],
        "extra_s_per_ended_lifetime": (
            extra / regret["ended_lifetimes"] if regret["ended_lifetimes"] else None
        ),
    }
