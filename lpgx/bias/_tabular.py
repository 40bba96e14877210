"""The tabular meta-gradient bias experiments of Theoretical-GMRL (MAML-RL and LIRPG), vectorised.

Every experiment is a sweep over ``estimator × N × α × K × c`` (some of them singletons) with the
sampled-piece patterns, MDPs and repeats vectorised inside one call per sweep point. The
compiled function is keyed only by what fixes shapes or code (rule, the largest N and K, MDPs,
repeats, patterns, estimator): N (a prefix of a batch of the largest N), K (masked steps of a
scan of the largest K), α and c are traced values, so a sweep compiles once per estimator.

Metrics per MDP, over the repeats ``r`` of a ``D = 100``-dimensional estimate ``ĝ_r`` against the
exact meta-gradient ``g`` (as the reference defines them):

- ``corr``: Pearson correlation (mean-centred cosine) of ``ĝ_r`` and ``g``, averaged over ``r``;
- ``var``: ``Σ_d std_r(ĝ_{r,d})`` (a sum of standard deviations, population std);
- ``grad_mse``: ``mean_d (mean_r ĝ_{r,d} − g_d)²`` — squared bias plus variance / repeats;
- ``sq_bias``: ``grad_mse`` minus the unbiased estimate of that variance term, i.e. an unbiased
  estimate of the pure squared bias (it can be slightly negative when the bias is tiny).

Random streams: MDPs and trajectories use separate keys; the estimation keys depend only on the
MDP and the repeat, so every sweep point, estimator and pattern sees the same batches (common
random numbers: ``eel``/``lee`` agree exactly between estimators with the same first-order
gradient).
"""

import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Key
from numpy.typing import ArrayLike

from .._typing import FloatScalar, IntScalar, PRNGKeyArray
from ..envs._tabular_mdp import MDP, TabularMDP
from ..rules._lirpg import LIRPG_ESTIMATORS, IntrinsicReward
from ..rules._maml import PATTERNS, MAMLInit, pattern_flags
from ..rules.estimators import ESTIMATORS

__all__ = [
    "EXPERIMENTS",
    "TabularBiasConfig",
    "correlation",
    "experiment_config",
    "grad_mse",
    "loglog_slope",
    "run_tabular",
    "spread",
    "squared_bias",
    "summary_rows",
]

EXPERIMENTS: tuple[str, ...] = (
    "decompose",
    "lr",
    "steps",
    "comp-lr",
    "comp-sample",
    "comp-steps",
    "hessian",
    "lirpg",
)
_RULES = ("maml", "lirpg")
_ALPHAS = (1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0)
_SIZES = (2, 4, 8, 16, 32, 64, 128, 256)


@dataclasses.dataclass(frozen=True)
class TabularBiasConfig:
    """One tabular bias experiment: the sweep and its sizes.

    The sweep is the product ``estimators × num_samples × alphas × steps × hessian_errors``; the
    `patterns` (``inner/Hessian/outer`` letters, e = exact, l = sampled) are vectorised within
    each point. ``hessian_errors`` empty means no injected Hessian error. ``rule`` is ``maml``
    (η = θ_0) or ``lirpg`` (η = intrinsic reward; only the Hessian piece is sampled, so its
    pattern must be ``ele``).
    """

    experiment: str
    rule: str = "maml"
    estimators: tuple[str, ...] = ("maml",)
    patterns: tuple[str, ...] = PATTERNS
    num_samples: tuple[int, ...] = (32,)
    alphas: tuple[float, ...] = (10.0,)
    steps: tuple[int, ...] = (1,)
    hessian_errors: tuple[float, ...] = ()
    num_mdps: int = 10
    num_repeats: int = 20
    noise: float = 1.0
    gae_lambda: float = 0.9
    seed: int = 42

    def validate(self) -> "TabularBiasConfig":
        """Raise a `ValueError` naming the fix for any bad setting; return self."""
        if self.rule not in _RULES:
            raise ValueError(f"unknown rule {self.rule!r}; choose one of {', '.join(_RULES)}")
        allowed = LIRPG_ESTIMATORS if self.rule == "lirpg" else ESTIMATORS
        for name in self.estimators:
            if name not in allowed:
                raise ValueError(
                    f"unknown estimator {name!r} for rule {self.rule}; choose from "
                    f"{', '.join(allowed)}"
                )
        for pattern in self.patterns:
            pattern_flags(pattern)
        if self.rule == "lirpg" and tuple(self.patterns) != ("ele",):
            raise ValueError("LIRPG samples only the Hessian piece: use patterns ('ele',)")
        for field, values in (
            ("estimators", self.estimators),
            ("patterns", self.patterns),
            ("num_samples", self.num_samples),
            ("alphas", self.alphas),
            ("steps", self.steps),
        ):
            if len(values) == 0:
                raise ValueError(f"{field} is empty; give at least one value")
        if min(self.num_samples) < 1:
            raise ValueError(f"num_samples must all be >= 1, got {self.num_samples}")
        if min(self.steps) < 1:
            raise ValueError(f"steps must all be >= 1, got {self.steps}")
        if self.num_mdps < 1:
            raise ValueError(f"num_mdps must be >= 1, got {self.num_mdps}")
        if self.num_repeats < 2:
            raise ValueError(
                f"num_repeats must be >= 2 (spread and bias need repeats), got {self.num_repeats}"
            )
        return self

    @property
    def num_points(self) -> int:
        """Number of compiled calls (sweep points) the experiment makes."""
        return (
            len(self.estimators)
            * len(self.num_samples)
            * len(self.alphas)
            * len(self.steps)
            * max(1, len(self.hessian_errors))
        )


def experiment_config(name: str, quick: bool = False, **overrides: Any) -> TabularBiasConfig:
    """The reference's configuration of experiment `name` (its ``run_*.sh`` scripts), or a
    reduced `quick` one.

    `overrides` replace fields (e.g. ``num_mdps=3``); the result is validated.
    """
    full: dict[str, TabularBiasConfig] = {
        "decompose": TabularBiasConfig(
            "decompose", estimators=("loaded", "dice", "lvc", "maml"), num_samples=_SIZES
        ),
        "lr": TabularBiasConfig("lr", alphas=_ALPHAS, steps=(5,)),
        "steps": TabularBiasConfig("steps", steps=(1, 2, 3, 4, 5, 6)),
        "comp-lr": TabularBiasConfig(
            "comp-lr",
            estimators=("maml", "dice"),
            patterns=("lee",),
            alphas=_ALPHAS,
            steps=(6,),
            num_repeats=10,
        ),
        "comp-sample": TabularBiasConfig(
            "comp-sample",
            estimators=("maml", "dice"),
            patterns=("lee",),
            num_samples=_SIZES,
            alphas=(3.0,),
            steps=(2,),
            num_repeats=10,
        ),
        "comp-steps": TabularBiasConfig(
            "comp-steps",
            estimators=("maml", "lvc", "loaded", "dice"),
            patterns=("lee",),
            alphas=(3.0,),
            steps=(1, 2, 3, 4, 5, 6),
            num_repeats=10,
        ),
        "hessian": TabularBiasConfig(
            "hessian",
            patterns=("eee",),
            num_samples=(1,),
            alphas=(3.0, 3.5, 4.0, 4.5),
            steps=(2,),
            hessian_errors=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0),
            num_repeats=10,
        ),
        "lirpg": TabularBiasConfig(
            "lirpg",
            rule="lirpg",
            estimators=("maml", "lvc"),
            patterns=("ele",),
            num_samples=(16, 32, 64, 128, 256),
            steps=(1, 2, 3, 4, 5),
        ),
    }
    if name not in full:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    config = full[name]
    if quick:
        # Small enough for a test, large enough to show each experiment's shape (the tests
        # assert those shapes on these sizes). Quick lr/steps and comp-lr/comp-steps have equal
        # static sizes, so each pair compiles once in one process.
        small: dict[str, Any] = {"num_mdps": 3, "num_repeats": 5}
        comp: dict[str, Any] = {"estimators": ("maml",), "num_mdps": 10, "num_repeats": 10}
        reduced: dict[str, Any] = {
            "decompose": {
                "estimators": ("maml", "loaded"),
                "num_samples": (8, 128),
                "num_mdps": 5,
                "num_repeats": 10,
            },
            "lr": small | {"alphas": (1.0, 9.0), "steps": (3,), "patterns": ("lee", "ele", "lll")},
            "steps": small | {"steps": (1, 3), "patterns": ("lee", "ele", "lll")},
            "comp-lr": comp | {"alphas": (1.0, 3.0, 5.0)},
            "comp-sample": comp | {"num_samples": (16, 64, 256)},
            "comp-steps": comp | {"steps": (1, 3, 6)},
            "hessian": small | {"alphas": (3.0, 4.5), "hessian_errors": (0.5, 4.0)},
            "lirpg": small | {"num_samples": (16,), "steps": (1, 3)},
        }[name]
        config = dataclasses.replace(config, **reduced)
    return dataclasses.replace(config, **overrides).validate()


# --- metrics ---------------------------------------------------------------------------------


def correlation(
    estimates: Float[Array, "*batch R D"], oracle: Float[Array, "*batch D"]
) -> Float[Array, "*batch"]:
    """Pearson correlation of each repeat with the oracle, averaged over repeats."""
    e = estimates - jnp.mean(estimates, axis=-1, keepdims=True)
    o = oracle - jnp.mean(oracle, axis=-1, keepdims=True)
    o = jnp.expand_dims(o, -2)
    num = jnp.sum(e * o, axis=-1)
    den = jnp.linalg.norm(e, axis=-1) * jnp.linalg.norm(o, axis=-1)
    return jnp.mean(num / den, axis=-1)


def spread(estimates: Float[Array, "*batch R D"]) -> Float[Array, "*batch"]:
    """``Σ_d std_r`` (population standard deviation over repeats, summed over dimensions)."""
    return jnp.sum(jnp.std(estimates, axis=-2), axis=-1)


def grad_mse(
    estimates: Float[Array, "*batch R D"], oracle: Float[Array, "*batch D"]
) -> Float[Array, "*batch"]:
    """``mean_d (mean_r ĝ − g)²`` as the reference defines its compositional-bias metric."""
    return jnp.mean((jnp.mean(estimates, axis=-2) - oracle) ** 2, axis=-1)


def squared_bias(
    estimates: Float[Array, "*batch R D"], oracle: Float[Array, "*batch D"]
) -> Float[Array, "*batch"]:
    """Unbiased estimate of ``mean_d (E ĝ − g)²``: `grad_mse` less ``var_r(ĝ) / R``."""
    r = estimates.shape[-2]
    var = jnp.var(estimates, axis=-2, ddof=1)
    return jnp.mean((jnp.mean(estimates, axis=-2) - oracle) ** 2 - var / r, axis=-1)


def loglog_slope(xs: ArrayLike, ys: ArrayLike) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    lx, ly = np.log(np.asarray(xs, np.float64)), np.log(np.asarray(ys, np.float64))
    return float(np.polyfit(lx, ly, 1)[0])


# --- one compiled sweep point ------------------------------------------------------------------


@eqx.filter_jit
def _sweep_point(
    env: TabularMDP,
    mdps: MDP,
    keys: Key[Array, "M R"],
    flags: Bool[Array, "P 3"],
    num_samples: IntScalar,
    alpha: FloatScalar,
    num_steps: IntScalar,
    hessian_error: FloatScalar | None,
    *,
    rule: str,
    estimator: str,
    max_samples: int,
    max_steps: int,
    noise: float,
    gae_lambda: float,
) -> dict[str, Float[Array, "M P"]]:
    """Metrics of every (MDP, pattern) at one sweep point; patterns × repeats are vmapped."""
    maml = MAMLInit(env.num_states, env.num_actions)
    lirpg = IntrinsicReward(env.num_states, env.num_actions)

    def oracle(mdp: MDP) -> Float[Array, "S A"]:
        if rule == "lirpg":
            return lirpg.exact_meta_gradient(env, mdp, alpha, num_steps, max_steps)
        return maml.exact_meta_gradient(env, mdp, alpha, num_steps, max_steps)

    def estimate(mdp: MDP, flag: Bool[Array, "3"], key: PRNGKeyArray) -> Float[Array, "S A"]:
        if rule == "lirpg":
            return lirpg.sampled_meta_gradient(
                env,
                mdp,
                key,
                estimator=estimator,
                num_samples=num_samples,
                alpha=alpha,
                num_steps=num_steps,
                max_steps=max_steps,
                noise=noise,
                gae_lambda=gae_lambda,
                max_samples=max_samples,
            )
        return maml.sampled_meta_gradient(
            env,
            mdp,
            key,
            estimator=estimator,
            sampled=flag,
            num_samples=num_samples,
            alpha=alpha,
            num_steps=num_steps,
            max_steps=max_steps,
            noise=noise,
            hessian_error=hessian_error,
            max_samples=max_samples,
        )

    def per_mdp(args: tuple[MDP, Key[Array, " R"]]) -> dict[str, Float[Array, " P"]]:
        mdp, mdp_keys = args
        exact = oracle(mdp).reshape(-1)
        grads = jax.vmap(
            lambda flag: jax.vmap(lambda k: estimate(mdp, flag, k).reshape(-1))(mdp_keys)
        )(flags)
        exact_p = jnp.broadcast_to(exact[None, :], (flags.shape[0], exact.shape[0]))
        return {
            "corr": correlation(grads, exact_p),
            "var": spread(grads),
            "grad_mse": grad_mse(grads, exact_p),
            "sq_bias": squared_bias(grads, exact_p),
        }

    # Sequential over MDPs bounds memory; the vmapped patterns × repeats fill the cores.
    return jax.lax.map(per_mdp, (mdps, keys))


# --- the sweep -------------------------------------------------------------------------------

ProgressFn = Callable[[int, int, dict[str, Any]], None]


def run_tabular(config: TabularBiasConfig, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run one experiment's sweep; return a JSON-serialisable result.

    **Arguments:**

    - `config`: the experiment (`experiment_config`).
    - `progress`: called as ``progress(done, total, point)`` after each sweep point.

    **Returns:** ``{"experiment", "config", "records", "seconds", "slopes"}``; each record holds
    one (estimator, pattern, N, α, K, c) point with per-MDP lists ``corr``, ``var``,
    ``grad_mse``, ``sq_bias``. ``slopes`` (only for sweeps over N) holds the log-log slope of
    the MDP-mean ``grad_mse`` against N per estimator and pattern.
    """
    config.validate()
    env = TabularMDP()
    k_mdp, k_est = jax.random.split(jax.random.key(config.seed))
    mdps = jax.vmap(env.sample_level)(jax.random.split(k_mdp, config.num_mdps))
    keys = jax.random.split(k_est, (config.num_mdps, config.num_repeats))
    flags = jnp.stack([pattern_flags(p) for p in config.patterns])
    # Static sizes: the largest N and K of the sweep. Smaller values are traced (a prefix of the
    # batch, masked steps), so the whole sweep compiles once; batches of different N are nested.
    max_samples, max_steps = max(config.num_samples), max(config.steps)
    errors: tuple[float | None, ...] = config.hessian_errors or (None,)

    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    total, done = config.num_points, 0
    for estimator, n in itertools.product(config.estimators, config.num_samples):
        for alpha, k, c in itertools.product(config.alphas, config.steps, errors):
            out = _sweep_point(
                env,
                mdps,
                keys,
                flags,
                jnp.asarray(n, jnp.int32),
                jnp.asarray(alpha, jnp.float32),
                jnp.asarray(k, jnp.int32),
                None if c is None else jnp.asarray(c, jnp.float32),
                rule=config.rule,
                estimator=estimator,
                max_samples=max_samples,
                max_steps=max_steps,
                noise=config.noise,
                gae_lambda=config.gae_lambda,
            )
            host = {name: np.asarray(v) for name, v in out.items()}
            for j, pattern in enumerate(config.patterns):
                record: dict[str, Any] = {
                    "estimator": estimator,
                    "pattern": pattern,
                    "num_samples": n,
                    "alpha": alpha,
                    "steps": k,
                    "hessian_error": c,
                }
                record.update({name: v[:, j].tolist() for name, v in host.items()})
                records.append(record)
            done += 1
            if progress is not None:
                point = {"estimator": estimator, "num_samples": n, "alpha": alpha, "steps": k}
                if c is not None:
                    point["hessian_error"] = c
                progress(done, total, point)
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "experiment": config.experiment,
        "config": dataclasses.asdict(config),
        "records": records,
        "seconds": seconds,
        "slopes": _slopes(config, records),
        "versions": {"jax": jax.__version__, "equinox": eqx.__version__},
    }
    return result


def _slopes(config: TabularBiasConfig, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(config.num_samples) < 2:
        return []
    slopes = []
    for estimator, pattern, alpha, k in itertools.product(
        config.estimators, config.patterns, config.alphas, config.steps
    ):
        rows = [
            r
            for r in records
            if (r["estimator"], r["pattern"], r["alpha"], r["steps"])
            == (estimator, pattern, alpha, k)
            and r["hessian_error"] is None
        ]
        if len(rows) < 2:
            continue
        xs = [r["num_samples"] for r in rows]
        ys = [float(np.mean(r["grad_mse"])) for r in rows]
        if min(ys) <= 0.0 or not all(math.isfinite(y) for y in ys):
            continue
        slopes.append(
            {
                "estimator": estimator,
                "pattern": pattern,
                "alpha": alpha,
                "steps": k,
                "grad_mse_slope": loglog_slope(xs, ys),
            }
        )
    return slopes


def summary_rows(result: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Per record: the sweep coordinates and mean ± standard error over MDPs of `metric`."""
    rows = []
    for r in result["records"]:
        values = np.asarray(r[metric], np.float64)
        se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
        rows.append(
            {key: r[key] for key in ("estimator", "pattern", "num_samples", "alpha", "steps")}
            | {"hessian_error": r["hessian_error"], "mean": float(values.mean()), "se": se}
        )
    return rows
