"""MAML-RL on a tabular MDP: the meta-parameter η is the initial policy logits θ_0.

The inner loop is ``K`` steps of gradient ascent ``θ_{k+1} = θ_k + α ∇J(θ_k)``, the outer
objective is ``J(θ_K)``, and the meta-gradient is ``dJ(θ_K)/dθ_0``. `exact_meta_gradient`
differentiates through the exact objective (the oracle); `sampled_meta_gradient` replaces any of
the three pieces of a meta-gradient (Liu, Feng et al. 2022, A Theoretical Understanding of
Gradient Bias in Meta-Reinforcement Learning) — inner (where each update lands), Hessian (the
Jacobian of each update) and outer (the gradient at θ_K) — by a sampled estimate with its own
batch of trajectories, built with `estimators.straight_through`.

`MAMLInit` is not an `AbstractUpdateRule`: that interface trains a network `Agent` on rollouts
of a level set, while here the "agent" is a bare logits table whose objective has a closed form.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .._typing import FloatScalar, IntScalar, PRNGKeyArray
from ..envs._tabular_mdp import MDP, TabularMDP
from . import estimators as est

__all__ = [
    "HESSIAN_ERROR_STD",
    "PATTERNS",
    "MAMLInit",
    "pattern_flags",
    "sampled_gradient",
]

# Which pieces are sampled, as letters (inner, Hessian, outer): l = sampled, e = exact.
PATTERNS: tuple[str, ...] = ("eel", "lee", "ele", "ell", "lle", "lel", "lll")
# The per-step injected Hessian error of Theoretical-GMRL's run_hessian_bias.sh:
# E = c + 0.3 N(0, 1).
HESSIAN_ERROR_STD = 0.3


def pattern_flags(pattern: str) -> Bool[Array, "3"]:
    """``[inner, hessian, outer]`` sampled flags of a pattern such as ``"lee"`` (or ``"eee"``)."""
    if len(pattern) != 3 or any(c not in "el" for c in pattern):
        raise ValueError(
            f"unknown pattern {pattern!r}; use three letters e (exact) / l (sampled) for the "
            f"inner, Hessian and outer pieces, e.g. {', '.join(PATTERNS)} or 'eee'"
        )
    return jnp.asarray([c == "l" for c in pattern])


def sampled_gradient(
    env: TabularMDP,
    level: MDP,
    key: PRNGKeyArray,
    theta: Float[Array, "S A"],
    estimator: str,
    num_samples: int | IntScalar,
    noise: float | FloatScalar = 1.0,
    max_samples: int | None = None,
) -> Float[Array, "S A"]:
    """The gradient of one estimator's surrogate on a fresh batch drawn at θ.

    The batch comes from μ = stop_gradient(π_θ) with the reference's noisy baseline
    (`estimators.baseline_values`, drawn once for the batch; V_b = 0 for dice). The result is
    differentiable in θ: its Jacobian is the estimator's Hessian estimate.

    **Arguments:** `estimator` is one of `estimators.ESTIMATORS`; `num_samples` may be traced
    when `max_samples` (the static batch drawn, of which the first `num_samples` are averaged)
    is given.
    """
    size = _static_size(num_samples, max_samples, "num_samples", "max_samples")
    weights = None if max_samples is None else est.prefix_weights(size, num_samples)
    k_traj, k_noise = jax.random.split(key)
    mu = jax.lax.stop_gradient(theta)
    traj = env.sample_trajectories(k_traj, level, mu, size)
    baseline = est.baseline_values(k_noise, env.values(level, mu), noise)[traj.states]

    def gradient(name: str) -> Callable[[Float[Array, "S A"]], Float[Array, "S A"]]:
        surrogate = est.get_surrogate(name)
        values = jnp.zeros_like(baseline) if name == "dice" else baseline

        def objective(th: Float[Array, "S A"]) -> FloatScalar:
            lp = est.log_probs(th, traj.states[:, :-1], traj.actions)
            return surrogate(lp, traj.rewards, values, env.gamma, weights)

        return jax.grad(objective)

    return gradient(estimator)(theta)


class MAMLInit(eqx.Module):
    """MAML-RL's meta-parameter: the initial logits θ_0 of a tabular softmax policy."""

    logits: Float[Array, "S A"]

    def __init__(
        self, num_states: int = 20, num_actions: int = 5, logits: Float[Array, "S A"] | None = None
    ):
        """**Arguments:** sizes of the table, or `logits` (default zeros: the uniform policy)."""
        self.logits = jnp.zeros((num_states, num_actions)) if logits is None else logits

    def inner_loop(
        self,
        env: TabularMDP,
        level: MDP,
        alpha: float | FloatScalar,
        num_steps: int | IntScalar,
        max_steps: int | None = None,
    ) -> Float[Array, "S A"]:
        """The exact θ_K after `num_steps` steps of ``θ ← θ + α ∇J(θ)`` (differentiable in θ_0).

        `num_steps` may be traced when `max_steps` (the static scan length) is given.
        """
        length = _scan_length(num_steps, max_steps)
        grad_j = jax.grad(lambda th: env.objective(level, th))

        def step(theta: Float[Array, "S A"], k: IntScalar) -> tuple[Array, None]:
            return jnp.where(k < num_steps, theta + alpha * grad_j(theta), theta), None

        theta, _ = jax.lax.scan(step, self.logits, jnp.arange(length, dtype=jnp.int32))
        return theta

    def exact_meta_gradient(
        self,
        env: TabularMDP,
        level: MDP,
        alpha: float | FloatScalar,
        num_steps: int | IntScalar,
        max_steps: int | None = None,
    ) -> Float[Array, "S A"]:
        """The oracle ``d J(θ_K) / d θ_0`` with every piece exact."""

        def outer(theta0: Float[Array, "S A"]) -> FloatScalar:
            rule = MAMLInit(logits=theta0)
            return env.objective(level, rule.inner_loop(env, level, alpha, num_steps, max_steps))

        return jax.grad(outer)(self.logits)

    def sampled_meta_gradient(
        self,
        env: TabularMDP,
        level: MDP,
        key: PRNGKeyArray,
        *,
        estimator: str,
        sampled: Bool[Array, "3"],
        num_samples: int | IntScalar,
        alpha: float | FloatScalar,
        num_steps: int | IntScalar,
        max_steps: int | None = None,
        noise: float | FloatScalar = 1.0,
        hessian_error: FloatScalar | None = None,
        max_samples: int | None = None,
    ) -> Float[Array, "S A"]:
        """A stochastic meta-gradient whose pieces are exact or sampled as `sampled` says.

        **Arguments:**

        - `estimator`: the surrogate of every sampled piece (one of `estimators.ESTIMATORS`).
        - `sampled`: ``[inner, hessian, outer]`` flags (`pattern_flags`); may be traced, so one
          compiled function serves every pattern. Each piece at each step draws its own batch of
          `num_samples` trajectories; batches do not depend on the estimator or the pattern.
        - `num_samples`, `max_samples`: trajectories per batch; `num_samples` may be traced when
          `max_samples` (the static batch drawn) is given, as in `sampled_gradient`.
        - `num_steps`, `max_steps`: as in `inner_loop`.
        - `noise`: scale of the baseline noise (`estimators.baseline_values`).
        - `hessian_error`: the coefficient ``c`` of the reference's injected Hessian error
          ``J_hess += mean(θ² E)``, ``E = c + 0.3 N(0, 1)`` redrawn every step; `None` for none.

        **Returns:** the estimate of ``d J(θ_K) / d θ_0``.
        """
        est.validate_estimator(estimator)
        _static_size(num_samples, max_samples, "num_samples", "max_samples")
        length = _scan_length(num_steps, max_steps)
        grad_j = jax.grad(lambda th: env.objective(level, th))

        def sampled_grad(k: PRNGKeyArray, theta: Float[Array, "S A"]) -> Float[Array, "S A"]:
            return sampled_gradient(
                env, level, k, theta, estimator, num_samples, noise, max_samples
            )

        def outer(theta0: Float[Array, "S A"]) -> FloatScalar:
            def step(theta: Float[Array, "S A"], k: IntScalar) -> tuple[Array, None]:
                k_in, k_hess, k_err = jax.random.split(jax.random.fold_in(key, k), 3)
                g_exact = grad_j(theta)
                g_in = jnp.where(sampled[0], sampled_grad(k_in, theta), g_exact)
                g_hess = jnp.where(sampled[1], sampled_grad(k_hess, theta), g_exact)
                if hessian_error is not None:
                    err = hessian_error + HESSIAN_ERROR_STD * jax.random.normal(
                        k_err, theta.shape, theta.dtype
                    )
                    g_hess = g_hess + jax.grad(lambda th: jnp.mean(th**2 * err))(theta)
                new = est.straight_through(theta, g_in, g_hess, alpha)
                return jnp.where(k < num_steps, new, theta), None

            theta, _ = jax.lax.scan(step, theta0, jnp.arange(length, dtype=jnp.int32))
            k_out = jax.random.fold_in(key, length)
            # Only the first derivative of the outer piece enters the meta-gradient, so the
            # surrogate's gradient stands in for ∇J(θ_K) (its value is irrelevant).
            g_out = jnp.where(sampled[2], sampled_grad(k_out, theta), grad_j(theta))
            return jnp.sum(jax.lax.stop_gradient(g_out) * theta)

        return jax.grad(outer)(self.logits)


def _static_size(value: int | IntScalar, maximum: int | None, name: str, max_name: str) -> int:
    """The static size behind a possibly traced `value`: `maximum` if given, else `value`."""
    if maximum is not None:
        if maximum < 1:
            raise ValueError(f"{max_name} must be at least 1, got {maximum}")
        return maximum
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
        return value
    raise ValueError(f"a traced {name} needs a static {max_name}")


def _scan_length(num_steps: int | IntScalar, max_steps: int | None) -> int:
    return _static_size(num_steps, max_steps, "num_steps", "max_steps")
