"""Policy-gradient surrogate estimators and the straight-through step of a sampled meta-gradient.

A public namespace (``lpgx.rules.estimators``, like ``optax.losses``). Every surrogate is a pure
function of a batch of ``N`` trajectories of length ``T``: the live log-probabilities
``log π(a_t|s_t)`` (differentiable), the rewards ``r_t`` and the baseline / bootstrap values
``V_b(s_0..s_T)`` (constants). Trajectories come from the behaviour policy μ = stop_gradient(π),
so the per-step ratio ``ρ_t = π(a_t|s_t)/μ(a_t|s_t) = magic_box(log π(a_t|s_t))`` is 1 in the
forward pass and carries the score function in the backward pass. With

    G_t = Σ_{j=t}^{T-1} γ^{j-t} r_j + γ^{T-t} V_b(s_T),    A_t = G_t − V_b(s_t),
    w_t = Π_{k≤t} ρ_k,  w_{-1} = 1,

the surrogates, averaged over the batch (or weighted by ``weights``), are

    maml   (the PG surrogate of MAML-RL)  Σ_t γ^t A_t log π(a_t|s_t)
    lvc    (low-variance curvature)       Σ_t γ^t A_t (ρ_t − 1)
    dice   (DiCE, no baseline)            Σ_t γ^t w_t r_t
    loaded (Loaded DiCE with baselines)   Σ_t γ^t A_t (w_t − w_{t-1})

maml, lvc and loaded share the first-order gradient (the policy gradient with a baseline); they
differ in their Hessians: maml keeps only ``A ∇² log π``, lvc adds ``A ∇log π ∇log π^T`` per step,
dice and loaded give the Hessian of the truncated objective without bias. The reference uses
``log(π + 1e-8)`` and ``π/(μ + 1e-8)``; here log-probabilities come from a log-softmax, so no
epsilon is needed and ρ is exactly 1 in the forward pass.

The straight-through step builds one inner update of a sampled meta-gradient from two independent
gradient estimates: the *inner* one sets where θ lands, the *Hessian* one sets the Jacobian that the
meta-gradient backpropagates through.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._typing import FloatScalar, IntScalar, PRNGKeyArray

__all__ = [
    "ESTIMATORS",
    "baseline_values",
    "batch_mean",
    "dice",
    "discounted_returns",
    "gae_advantages",
    "get_surrogate",
    "loaded",
    "log_probs",
    "lvc",
    "magic_box",
    "maml",
    "pg",
    "prefix_weights",
    "straight_through",
    "validate_estimator",
]

ESTIMATORS: tuple[str, ...] = ("maml", "lvc", "dice", "loaded")


def validate_estimator(name: str) -> str:
    """Return `name` if it is a known estimator, else raise a `ValueError` naming the choices."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")
    return name


def magic_box(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """DiCE's magic box ``exp(x − stop_gradient(x))``: 1 forward, ``∂x`` backward."""
    return jnp.exp(x - jax.lax.stop_gradient(x))


def log_probs(
    logits: Float[Array, "S A"], states: Int[Array, "N T"], actions: Int[Array, "N T"]
) -> Float[Array, "N T"]:
    """``log π(a_t|s_t)`` of a tabular softmax policy on a batch of trajectories."""
    return jax.nn.log_softmax(logits, axis=-1)[states, actions]


def batch_mean(
    per_trajectory: Float[Array, " N"], weights: Float[Array, " N"] | None = None
) -> FloatScalar:
    """The batch average, or ``Σ_n w_n x_n`` with `weights` (e.g. a mask over a padded batch)."""
    if weights is None:
        return jnp.mean(per_trajectory)
    return jnp.sum(weights.astype(per_trajectory.dtype) * per_trajectory)


def prefix_weights(size: int, num_used: int | IntScalar) -> Float[Array, " N"]:
    """Weights ``1/n`` on the first ``n = num_used`` of `size` trajectories, 0 on the rest.

    A batch of a traced size: draw `size` trajectories once and average the first ``n``, so one
    compiled function serves every ``n ≤ size``.
    """
    mask = jnp.arange(size, dtype=jnp.int32) < num_used
    return mask.astype(jnp.float32) / jnp.asarray(num_used, jnp.float32)


def _discounts(gamma: float | FloatScalar, length: int, like: Array) -> Float[Array, " T"]:
    return jnp.power(gamma, jnp.arange(length, dtype=like.dtype))


def discounted_returns(
    rewards: Float[Array, "N T"], bootstrap: Float[Array, " N"], gamma: float | FloatScalar
) -> Float[Array, "N T"]:
    """``G_t = Σ_{j≥t} γ^{j-t} r_j + γ^{T-t} V(s_T)`` for every ``t``."""

    def body(g: Float[Array, " N"], r: Float[Array, " N"]) -> tuple[Array, Array]:
        g = r + gamma * g
        return g, g

    _, returns = jax.lax.scan(body, bootstrap, rewards.T, reverse=True)
    return returns.T


def gae_advantages(
    td: Float[Array, "N T"], gamma: float | FloatScalar, lam: float | FloatScalar
) -> Float[Array, "N T"]:
    """``A_t = Σ_l (γλ)^l δ_{t+l}``, truncated at the end of the trajectory."""

    def body(a: Float[Array, " N"], d: Float[Array, " N"]) -> tuple[Array, Array]:
        a = d + gamma * lam * a
        return a, a

    _, adv = jax.lax.scan(body, jnp.zeros_like(td[:, 0]), td.T, reverse=True)
    return adv.T


def _advantages(
    rewards: Float[Array, "N T"], values: Float[Array, "N T+1"], gamma: float | FloatScalar
) -> Float[Array, "N T"]:
    returns = discounted_returns(rewards, values[:, -1], gamma)
    return jax.lax.stop_gradient(returns - values[:, :-1])


def maml(
    log_probs: Float[Array, "N T"],
    rewards: Float[Array, "N T"],
    values: Float[Array, "N T+1"],
    gamma: float | FloatScalar,
    weights: Float[Array, " N"] | None = None,
) -> FloatScalar:
    """The PG surrogate ``mean_n Σ_t γ^t A_t log π(a_t|s_t)`` (biased Hessian)."""
    adv = _advantages(rewards, values, gamma)
    disc = _discounts(gamma, rewards.shape[1], rewards)
    return batch_mean(jnp.sum(disc[None, :] * adv * log_probs, axis=1), weights)


pg = maml


def lvc(
    log_probs: Float[Array, "N T"],
    rewards: Float[Array, "N T"],
    values: Float[Array, "N T+1"],
    gamma: float | FloatScalar,
    weights: Float[Array, " N"] | None = None,
) -> FloatScalar:
    """The low-variance-curvature surrogate ``mean_n Σ_t γ^t A_t (ρ_t − 1)``."""
    adv = _advantages(rewards, values, gamma)
    disc = _discounts(gamma, rewards.shape[1], rewards)
    return batch_mean(jnp.sum(disc[None, :] * adv * (magic_box(log_probs) - 1.0), axis=1), weights)


def dice(
    log_probs: Float[Array, "N T"],
    rewards: Float[Array, "N T"],
    values: Float[Array, "N T+1"] | None,
    gamma: float | FloatScalar,
    weights: Float[Array, " N"] | None = None,
) -> FloatScalar:
    """DiCE without baseline ``mean_n Σ_t γ^t w_t r_t``; `values` is ignored (V_b = 0)."""
    del values
    disc = _discounts(gamma, rewards.shape[1], rewards)
    w = magic_box(jnp.cumsum(log_probs, axis=1))
    return batch_mean(jnp.sum(disc[None, :] * w * rewards, axis=1), weights)


def loaded(
    log_probs: Float[Array, "N T"],
    rewards: Float[Array, "N T"],
    values: Float[Array, "N T+1"],
    gamma: float | FloatScalar,
    weights: Float[Array, " N"] | None = None,
) -> FloatScalar:
    """Loaded DiCE ``mean_n Σ_t γ^t A_t (w_t − w_{t-1})``; its forward value is 0."""
    adv = _advantages(rewards, values, gamma)
    disc = _discounts(gamma, rewards.shape[1], rewards)
    cum = jnp.cumsum(log_probs, axis=1)
    prev = jnp.concatenate([jnp.zeros_like(cum[:, :1]), cum[:, :-1]], axis=1)
    return batch_mean(
        jnp.sum(disc[None, :] * adv * (magic_box(cum) - magic_box(prev)), axis=1), weights
    )


Surrogate = Callable[..., FloatScalar]
_SURROGATES: dict[str, Surrogate] = {"maml": maml, "lvc": lvc, "dice": dice, "loaded": loaded}


def get_surrogate(name: str) -> Surrogate:
    """The surrogate function called `name` (one of `ESTIMATORS`)."""
    return _SURROGATES[validate_estimator(name)]


def baseline_values(
    key: PRNGKeyArray, values: Float[Array, " S"], noise: float | FloatScalar
) -> Float[Array, " S"]:
    """Noisy baseline / bootstrap values ``V + ε · noise · ‖V‖₂ / S`` with ``ε ~ N(0, I)``.

    One ε per call: the reference draws it once per batch and shares it by all trajectories of
    that batch, so the noise biases a batch's baseline rather than averaging out within it.
    """
    eps = jax.random.normal(key, values.shape, values.dtype)
    scale = noise * jnp.linalg.norm(values) / values.shape[0]
    return values + eps * scale


def straight_through(
    theta: Float[Array, "*shape"],
    g_inner: Float[Array, "*shape"],
    g_hessian: Float[Array, "*shape"],
    alpha: float | FloatScalar,
) -> Float[Array, "*shape"]:
    """One gradient-ascent step whose value uses `g_inner` and whose derivative uses `g_hessian`.

    ``stop_gradient(θ + α g_in) + θ_h − stop_gradient(θ_h)`` with ``θ_h = θ + α g_hess``: the
    forward value is ``θ + α g_in``, the Jacobian is ``I + α ∂g_hess/∂θ`` (and ``α ∂g_hess/∂η``
    for any meta-parameter η that `g_hessian` depends on).
    """
    th_h = theta + alpha * g_hessian
    return jax.lax.stop_gradient(theta + alpha * g_inner) + (th_h - jax.lax.stop_gradient(th_h))
