"""DiCE surrogate losses of the iterated prisoner's dilemma, for LOLA-DiCE.

DiCE (Foerster et al. 2018, DiCE: The Infinitely Differentiable Monte-Carlo Estimator) writes a
player's discounted return over a batch of trajectories with the magic box □ (`magic_box`), so that
every derivative of any order w.r.t. either player's parameters is an unbiased estimate of the
derivative of the expected (truncated) return. `dice_objective` is the on-policy loss,
`off_policy_dice_objective` its form on trajectories from older (behaviour) policies, with
cumulative importance weights in place of the magic box; both have an optional baseline term whose
value table `value_loss` trains. All are written for player 0 on trajectories in player 0's frame
(row 0 of the parameters is player 0).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._typing import FloatScalar
from ..envs import IPDTrajectory
from ..rules.estimators import magic_box

__all__ = ["dice_objective", "off_policy_dice_objective", "value_loss"]

# log(p + 1e-6) for the current policy's probabilities in off-policy DiCE, as the reference.
_OFF_POLICY_EPS = 1e-6


def _discounts(length: int, gamma: float) -> Float[Array, " T"]:
    return gamma ** jnp.arange(length, dtype=jnp.float32)


def _cumsum_time(x: Float[Array, "*batch T"]) -> Float[Array, "*batch T"]:
    """``cumsum`` over the last (time) axis as a product with a triangle of ones.

    XLA lowers ``jnp.cumsum`` to a ``reduce_window``; the matrix product is as fast or faster on
    CPU, derivatives included. On CPU the default precision already multiplies in float32, and
    asking for ``HIGHEST`` there takes a slower path to the same results; elsewhere ``HIGHEST``
    keeps accelerators from summing log-probs in reduced precision (TF32).
    """
    steps = jnp.arange(x.shape[-1], dtype=jnp.int32)
    upper = (steps[:, None] <= steps[None, :]).astype(x.dtype)
    precision = None if jax.default_backend() == "cpu" else jax.lax.Precision.HIGHEST
    return jnp.einsum("...k,kt->...t", x, upper, precision=precision)


def _policy_log_probs(
    thetas: Float[Array, "2 5"], traj: IPDTrajectory, eps: float | None
) -> Float[Array, "*batch T 2"]:
    """Both players' log-probs of the trajectory's actions under `thetas`, differentiably.

    ``eps=None`` gives the exact ``log π``; otherwise ``log(π + eps)`` (off-policy DiCE).
    """
    logits = jnp.stack([thetas[0][traj.states[..., 0]], thetas[1][traj.states[..., 1]]], -1)
    # π(a|s) = sigmoid(±θ_s): + for action 0 (defect), − for action 1 (cooperate).
    signed = jnp.where(traj.actions == 0, logits, -logits)
    if eps is None:
        return jax.nn.log_sigmoid(signed)
    return jnp.log(jax.nn.sigmoid(signed) + eps)


def _dice_terms(
    traj: IPDTrajectory,
    values: Float[Array, "5"],
    gamma: float,
    baseline: bool,
    cumulative_weight: Float[Array, "*batch T"],
    step_weight: Float[Array, "*batch T"],
) -> FloatScalar:
    """``−mean_b[Σ_t w_{≤t} γᵗ r_t + Σ_t (1 − w_t) γᵗ v(s_t)]`` for player 0 (baseline optional)."""
    # γᵗ, broadcast explicitly over the batch dimensions (rank promotion is an error here).
    discount = jnp.broadcast_to(_discounts(traj.rewards.shape[-2], gamma), step_weight.shape)
    objective = jnp.mean(jnp.sum(cumulative_weight * traj.rewards[..., 0] * discount, axis=-1))
    if baseline:
        baseline_values = values[traj.states[..., 0]] * discount
        objective = objective + jnp.mean(jnp.sum((1.0 - step_weight) * baseline_values, axis=-1))
    return -objective


def dice_objective(
    traj: IPDTrajectory,
    thetas: Float[Array, "2 5"],
    values: Float[Array, "5"],
    gamma: float,
    baseline: bool = True,
) -> FloatScalar:
    """The DiCE loss of player 0 (a quantity to *minimise*), averaged over the batch.

    ``L = −mean_b[Σ_t □(Σ_{k≤t} log π₀ + log π₁) γᵗ r_t + Σ_t (1 − □(log π₀ + log π₁)) γᵗ v(s_t)]``
    with the magic box □; the second (baseline) term only with `baseline`. The log-probs are
    recomputed from `thetas` (row 0 player 0, row 1 its opponent), so every derivative of any
    order w.r.t. either player's parameters is DiCE's estimate of the true one.

    **Arguments:**

    - `traj`: on-policy rollouts in player 0's frame (``[batch, T, 2]``).
    - `thetas`: both players' parameters, player 0 first.
    - `values`: player 0's value table (the baseline).
    - `gamma`: discount.
    - `baseline`: include the baseline term.
    """
    log_probs = jnp.sum(_policy_log_probs(thetas, traj, None), axis=-1)
    dependencies = _cumsum_time(log_probs)
    return _dice_terms(traj, values, gamma, baseline, magic_box(dependencies), magic_box(log_probs))


def off_policy_dice_objective(
    traj: IPDTrajectory,
    thetas: Float[Array, "2 5"],
    values: Float[Array, "5"],
    gamma: float,
    baseline: bool = True,
) -> FloatScalar:
    """Off-policy DiCE: `dice_objective` on trajectories from older (behaviour) policies.

    The magic box becomes the cumulative importance weight
    ``exp(Σ_{k≤t} log π_k − stop_gradient(Σ_{k≤t} log μ_k))`` (both players), with the
    behaviour log-probs ``log μ`` stored in ``traj.log_probs`` and the current ones computed as
    ``log(π + 1e-6)`` as in the reference; the baseline term uses the per-step ratio.
    """
    current = jnp.sum(_policy_log_probs(thetas, traj, _OFF_POLICY_EPS), axis=-1)
    behaviour = jax.lax.stop_gradient(jnp.sum(traj.log_probs, axis=-1))
    cumulative = jnp.exp(_cumsum_time(current) - _cumsum_time(behaviour))
    return _dice_terms(traj, values, gamma, baseline, cumulative, jnp.exp(current - behaviour))


def value_loss(values: Float[Array, "5"], traj: IPDTrajectory) -> FloatScalar:
    """Mean squared error of player 0's value table against the *immediate* reward.

    This regresses ``r_t`` rather than a return: a quirk of the LOLA_DiCE code that the
    gradient-bias reference inherits and that lpgx reproduces (the baseline it yields is the
    expected one-step payoff of a state, not its value).
    """
    return jnp.mean((traj.rewards[..., 0] - values[traj.states[..., 0]]) ** 2)
