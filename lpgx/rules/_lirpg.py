"""LIRPG on a tabular MDP: the meta-parameter η is an intrinsic reward table.

The inner loop is ``K`` steps of ``θ ← θ + α ∇_θ J_in(θ, η)`` with ``J_in`` the exact value of
the start state under reward ``R + η``; the outer objective is the exact value under the
extrinsic reward ``R`` alone; the meta-gradient is ``dJ_out(θ_K)/dη`` from ``θ_0 = 0``.

In the sampled meta-gradient (as in Theoretical-GMRL's ``tabular/lirpg``) the inner and outer
pieces are exact and only the Hessian / mixed-derivative piece is sampled: its surrogate
``Σ_t γ^t A_t log π(a_t|s_t)`` (maml) or ``Σ_t γ^t A_t ρ_t`` (lvc) uses GAE(λ) advantages of the
TD errors ``δ_t = r_t + η(s_t, a_t) + γ V(s_{t+1}) − V(s_t)``, where V is the exact value under
``R + η`` (differentiable in η, constant in θ) plus the reference's baseline noise
(`estimators.baseline_values`). The mixed derivative ``∂²/∂θ∂η`` flows through ``A_t``.

`IntrinsicReward` is not an `AbstractUpdateRule` for the same reason as `MAMLInit`.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._typing import FloatScalar, IntScalar, PRNGKeyArray
from ..envs._tabular_mdp import MDP, MDPTrajectory, TabularMDP
from . import estimators as est
from ._maml import _scan_length, _static_size

__all__ = ["LIRPG_ESTIMATORS", "IntrinsicReward", "lirpg_surrogate"]

# The reference's dice and loaded surrogates ignore η, so only these two apply to LIRPG.
LIRPG_ESTIMATORS: tuple[str, ...] = ("maml", "lvc")


def lirpg_surrogate(
    estimator: str,
    log_probs: Float[Array, "N T"],
    rewards: Float[Array, "N T"],
    intrinsic: Float[Array, "N T"],
    values: Float[Array, "N T+1"],
    gamma: float | FloatScalar,
    gae_lambda: float | FloatScalar,
    weights: Float[Array, " N"] | None = None,
) -> FloatScalar:
    """``mean_n Σ_t γ^t A_t f(log π_t)`` with GAE advantages of ``r + η`` (f = id or magic box).

    `estimator` is ``maml`` (f = id) or ``lvc`` (f = magic box); `weights` as in
    `estimators.batch_mean`.
    """
    td = rewards + intrinsic + gamma * values[:, 1:] - values[:, :-1]
    adv = est.gae_advantages(td, gamma, gae_lambda)
    disc = jnp.power(gamma, jnp.arange(rewards.shape[1], dtype=rewards.dtype))
    score = log_probs if estimator == "maml" else est.magic_box(log_probs)
    return est.batch_mean(jnp.sum(disc[None, :] * adv * score, axis=1), weights)


def _validate(estimator: str) -> None:
    if estimator not in LIRPG_ESTIMATORS:
        raise ValueError(
            f"estimator {estimator!r} does not apply to LIRPG; choose one of "
            f"{', '.join(LIRPG_ESTIMATORS)}"
        )


class IntrinsicReward(eqx.Module):
    """LIRPG's meta-parameter: an intrinsic reward ``η(s, a)`` added to the inner objective."""

    reward: Float[Array, "S A"]

    def __init__(
        self, num_states: int = 20, num_actions: int = 5, reward: Float[Array, "S A"] | None = None
    ):
        """**Arguments:** sizes of the table, or `reward` (default zeros)."""
        self.reward = jnp.zeros((num_states, num_actions)) if reward is None else reward

    def exact_meta_gradient(
        self,
        env: TabularMDP,
        level: MDP,
        alpha: float | FloatScalar,
        num_steps: int | IntScalar,
        max_steps: int | None = None,
        initial_logits: Float[Array, "S A"] | None = None,
    ) -> Float[Array, "S A"]:
        """The oracle ``d J_out(θ_K) / d η`` with every piece exact."""
        length = _scan_length(num_steps, max_steps)
        theta0 = jnp.zeros_like(self.reward) if initial_logits is None else initial_logits

        def outer(eta: Float[Array, "S A"]) -> FloatScalar:
            grad_in = jax.grad(lambda th: env.objective(level, th, level.rewards + eta))

            def step(theta: Float[Array, "S A"], k: IntScalar) -> tuple[Array, None]:
                return jnp.where(k < num_steps, theta + alpha * grad_in(theta), theta), None

            theta, _ = jax.lax.scan(step, theta0, jnp.arange(length, dtype=jnp.int32))
            return env.objective(level, theta)

        return jax.grad(outer)(self.reward)

    def sampled_meta_gradient(
        self,
        env: TabularMDP,
        level: MDP,
        key: PRNGKeyArray,
        *,
        estimator: str,
        num_samples: int | IntScalar,
        alpha: float | FloatScalar,
        num_steps: int | IntScalar,
        max_steps: int | None = None,
        noise: float | FloatScalar = 1.0,
        gae_lambda: float | FloatScalar = 0.9,
        initial_logits: Float[Array, "S A"] | None = None,
        max_samples: int | None = None,
    ) -> Float[Array, "S A"]:
        """The meta-gradient with the Hessian piece of every step sampled (`num_samples` each).

        **Arguments:** `estimator` is ``maml`` or ``lvc``; `num_samples`/`max_samples` as in
        `MAMLInit.sampled_meta_gradient`; `num_steps`/`max_steps` as in `MAMLInit.inner_loop`;
        `noise` the baseline noise scale; `gae_lambda` GAE's λ.
        """
        _validate(estimator)
        size = _static_size(num_samples, max_samples, "num_samples", "max_samples")
        weights = None if max_samples is None else est.prefix_weights(size, num_samples)
        length = _scan_length(num_steps, max_steps)
        theta0 = jnp.zeros_like(self.reward) if initial_logits is None else initial_logits

        def outer(eta: Float[Array, "S A"]) -> FloatScalar:
            reward_in = level.rewards + eta
            grad_in = jax.grad(lambda th: env.objective(level, th, reward_in))

            def hessian_grad(k: PRNGKeyArray, theta: Float[Array, "S A"]) -> Float[Array, "S A"]:
                k_traj, k_noise = jax.random.split(k)
                mu = jax.lax.stop_gradient(theta)
                traj: MDPTrajectory = env.sample_trajectories(k_traj, level, mu, size)
                v_b = est.baseline_values(k_noise, env.values(level, mu, reward_in), noise)
                intrinsic = eta[traj.states[:, :-1], traj.actions]

                def gradient(name: str) -> Callable[[Float[Array, "S A"]], Array]:
                    def surrogate(th: Float[Array, "S A"]) -> FloatScalar:
                        lp = est.log_probs(th, traj.states[:, :-1], traj.actions)
                        return lirpg_surrogate(
                            name,
                            lp,
                            traj.rewards,
                            intrinsic,
                            v_b[traj.states],
                            env.gamma,
                            gae_lambda,
                            weights,
                        )

                    return jax.grad(surrogate)

                return gradient(estimator)(theta)

            def step(theta: Float[Array, "S A"], k: IntScalar) -> tuple[Array, None]:
                g_hess = hessian_grad(jax.random.fold_in(key, k), theta)
                new = est.straight_through(theta, grad_in(theta), g_hess, alpha)
                return jnp.where(k < num_steps, new, theta), None

            theta, _ = jax.lax.scan(step, theta0, jnp.arange(length, dtype=jnp.int32))
            return env.objective(level, theta)

        return jax.grad(outer)(self.reward)
