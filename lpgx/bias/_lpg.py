"""LPG's own meta-gradient under the microscope: how each way of differentiating through the
agent updates compares with a large-sample reference, and what it costs.

`MetaGradient` can go through the K agent updates in three ways
(`lpgx.MetaGradientConfig.differentiation`): ``exact`` (the true derivative of the sampled
outer loss: the LPG's inputs are functions of the current parameters), ``stop_gradient`` (the
GROOVE reference's: the inputs are constants, which cuts the path through earlier updates) and
``lvc`` (log π written as π / stop_gradient(π) in the agent's loss: the first-order update is
the same, its Hessian gains the ∇log π ∇log πᵀ term). DiCE does not apply: the LPG's loss is not
a policy-gradient surrogate, and a magic box over it would change the agent's update itself.

`run_lpg_bias` fixes a rule and a population of agents on a small grid world and draws
``repeats`` meta-gradients per method, each from its own rollouts; the reference is the mean of
``reference_repeats`` exact meta-gradients from other rollouts. Per method: the Pearson
correlation of each sample with the reference (mean ± s.e.), the cosine of the method's mean with
the reference (its bias, free of sampling noise as the repeats grow), the relative distance to
the exact meta-gradient of the *same* rollouts (the method's own deviation, free of sampling
noise), the spread (sum over parameters of the standard deviation across samples) and the
compiled time of one meta-gradient.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Key

from ..envs import AbstractTaskDistribution
from ..lifetime import AgentConfig, Learner
from ..meta import MetaGradient, MetaGradientConfig
from ..rules import DIFFERENTIATIONS, LPGConfig
from ._tabular import correlation, spread

__all__ = ["LPGBiasConfig", "run_lpg_bias"]


@dataclass(frozen=True)
class LPGBiasConfig:
    """Sizes of `run_lpg_bias` (the defaults are small enough for a CPU)."""

    num_agents: int = 8
    workers: int = 16
    rollout_len: int = 20
    num_agent_updates: int = 5
    lpg_hidden: int = 32
    repeats: int = 16
    reference_repeats: int = 128
    differentiations: tuple[str, ...] = DIFFERENTIATIONS
    seed: int = 0

    def __post_init__(self) -> None:
        small = {k: v for k, v in asdict(self).items() if isinstance(v, int) and k != "seed"}
        bad = [f"{k} must be at least 1" for k, v in small.items() if v < 1]
        if self.repeats < 2:
            bad.append("repeats must be at least 2 (a spread needs two samples)")
        unknown = [d for d in self.differentiations if d not in DIFFERENTIATIONS]
        if unknown:
            bad.append(f"unknown differentiations {unknown}; choose from {DIFFERENTIATIONS}")
        if bad:
            raise ValueError("invalid LPG bias config: " + "; ".join(bad))

    @staticmethod
    def quick() -> "LPGBiasConfig":
        return LPGBiasConfig(
            num_agents=2, workers=4, rollout_len=10, num_agent_updates=3, lpg_hidden=16,
            repeats=4, reference_repeats=16,
        )  # fmt: skip


def _flat(tree: Any) -> Float[Array, " params"]:
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


def run_lpg_bias(
    tasks: AbstractTaskDistribution,
    config: LPGBiasConfig,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure every differentiation of `config` against the reference (see the module
    docstring); returns a JSON-ready record."""
    say = progress or (lambda _: None)
    learner = Learner(
        tasks.env(), AgentConfig(num_workers=config.workers, rollout_len=config.rollout_len)
    )
    k_rule, k_tasks, k_agents, k_ref, k_samples = jax.random.split(jax.random.key(config.seed), 5)
    rule = LPGConfig(hidden=config.lpg_hidden).build(k_rule)
    batch = jax.vmap(tasks.sample)(jax.random.split(k_tasks, config.num_agents))

    def optimiser(differentiation: str) -> MetaGradient:
        settings = MetaGradientConfig(
            num_agent_updates=config.num_agent_updates,
            differentiation=differentiation,  # pyright: ignore[reportArgumentType]
        )
        return MetaGradient(learner, settings)

    agents = eqx.filter_jit(optimiser("exact").init_agents)(k_agents, batch, rule)

    def sampler(differentiation: str) -> Callable[[Array], Array]:
        mg = optimiser(differentiation)

        @eqx.filter_jit
        def draw(keys: Key[Array, " samples"]) -> Array:
            return jax.vmap(lambda k: _flat(mg.meta_gradient(rule, agents, k)[0]))(keys)

        return draw

    say("reference: exact meta-gradients")
    draw_exact = sampler("exact")
    # In chunks of `repeats` keys: one compiled shape, bounded memory.
    ref_keys = jax.random.split(k_ref, config.reference_repeats)
    starts = range(0, config.reference_repeats - config.repeats + 1, config.repeats)
    chunks = [draw_exact(ref_keys[i : i + config.repeats]) for i in starts]
    reference = jnp.mean(jnp.concatenate(chunks), axis=0)

    records: dict[str, Any] = {}
    sample_keys = jax.random.split(k_samples, config.repeats)
    exact_grads = draw_exact(sample_keys)
    for differentiation in config.differentiations:
        say(differentiation)
        draw = draw_exact if differentiation == "exact" else sampler(differentiation)
        grads = exact_grads if differentiation == "exact" else draw(sample_keys)
        # The same rollouts as the exact samples: the gap is the method's own, not noise.
        gap = jnp.linalg.norm(grads - exact_grads, axis=-1) / jnp.linalg.norm(exact_grads, axis=-1)
        corr = np.asarray(correlation(grads[:, None, :], jnp.broadcast_to(reference, grads.shape)))
        mean = jnp.mean(grads, axis=0)
        cosine = float(mean @ reference / (jnp.linalg.norm(mean) * jnp.linalg.norm(reference)))
        records[differentiation] = {
            "corr_mean": float(corr.mean()),
            "corr_se": float(corr.std(ddof=1) / np.sqrt(corr.size)),
            "mean_cosine": cosine,
            "spread": float(spread(grads)),
            "relative_gap_to_exact": float(jnp.mean(gap)),
            "seconds_per_meta_gradient": _time_one(optimiser(differentiation), rule, agents),
        }
    return {
        "tasks": tasks.name,
        "config": asdict(config),
        "parameters": int(reference.size),
        "reference_norm": float(jnp.linalg.norm(reference)),
        "methods": records,
    }


def _time_one(mg: MetaGradient, rule: Any, agents: Any) -> float:
    """Median of 3 compiled calls of one meta-gradient (compiled and warmed up first)."""
    fn = eqx.filter_jit(lambda k: mg.meta_gradient(rule, agents, k)[0])
    jax.block_until_ready(fn(jax.random.key(0)))
    times = []
    for i in range(3):
        start = time.perf_counter()
        jax.block_until_ready(fn(jax.random.key(i + 1)))
        times.append(time.perf_counter() - start)
    return float(np.median(times))
