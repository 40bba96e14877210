"""`MetaHyperparams`: A2C whose γ, λ, value and entropy coefficients are meta-learned.

The meta-parameters are four logits; the hyperparameters are their sigmoids (initially 0.99,
0.95, 0.5 and 0.01, the reference's). The inner (agent) loss on a batch is

    c_V · mean((R − V_θ(s; sg γ))²) − mean((R − V(s)) · log π_θ(a|s)) − c_H · mean(H(π_θ))

with ``R`` the GAE(γ, λ) returns of the meta γ, λ (differentiable in them: the meta-gradient
flows through R), the values ``V`` behind R and the advantage coming from the *current*
parameters (constants for the agent's gradient). With the LVC option the loss writes log π as
``π / stop_gradient(π)`` (`lpgx.rules.estimators.magic_box`): the same value and first-order
gradient, a lower-bias Hessian for the meta-gradient through the update.

The outer loss is the A2C policy-gradient loss with fixed γ 0.99, λ 0.95 and the critic
conditioned on 0.99 (the reference's README runs weight its critic, entropy and KL terms 0).
"""

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, Float

from .._typing import FloatScalar, Scalar
from ..agents import Trajectory
from ..rules import entropy, gae
from ..rules.estimators import magic_box
from ._networks import ActorCritic

__all__ = [
    "HYPERPARAMETER_NAMES",
    "MetaHyperparams",
    "inner_loss",
    "outer_advantages",
    "outer_loss",
]

HYPERPARAMETER_NAMES: tuple[str, ...] = ("gamma", "lambda", "value_coeff", "entropy_coeff")
_INITIAL = (0.99, 0.95, 0.5, 0.01)
Surrogate = Literal["log", "lvc"]


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


class MetaHyperparams(eqx.Module):
    """The meta-parameters of MGRL: logits of γ, λ, the value and the entropy coefficients.

    ``MetaHyperparams()`` starts at the reference's values (sigmoids 0.99, 0.95, 0.5, 0.01);
    ``dtype`` float64 serves gradient checks.
    """

    logits: Float[Array, " 4"]

    def __init__(self, logits: Float[Array, " 4"] | None = None, dtype: DTypeLike = jnp.float32):
        if logits is None:
            logits = jnp.asarray([_logit(p) for p in _INITIAL], dtype)
        self.logits = logits

    @property
    def values(self) -> Float[Array, " 4"]:
        """``sigmoid(logits)``: γ, λ, c_V, c_H."""
        return jax.nn.sigmoid(self.logits)

    @property
    def gamma(self) -> FloatScalar:
        return self.values[0]

    @property
    def gae_lambda(self) -> FloatScalar:
        return self.values[1]

    @property
    def value_coeff(self) -> FloatScalar:
        return self.values[2]

    @property
    def entropy_coeff(self) -> FloatScalar:
        return self.values[3]


def _log_pi(logits: Float[Array, "T W A"], action: Array) -> Float[Array, "T W"]:
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, action[..., None], axis=-1)[..., 0]


def _apply(net: ActorCritic, obs: Array, gamma: FloatScalar) -> tuple[Array, Array]:
    return jax.vmap(jax.vmap(net, in_axes=(0, None)), in_axes=(0, None))(obs, gamma)


def inner_loss(
    net: ActorCritic,
    current: ActorCritic,
    rule: MetaHyperparams,
    traj: Trajectory,
    surrogate: Surrogate = "log",
    detach_gamma: bool = False,
) -> tuple[Scalar, dict[str, Scalar]]:
    """The agent's loss on `traj` under the meta-hyperparameters of `rule`.

    **Arguments:** ``net`` — the parameters the agent differentiates; ``current`` — the same
    parameters as the source of the values behind the returns and the advantage (constants for
    the agent's gradient, a path for the meta-gradient unless the caller stops it);
    ``surrogate`` — ``"log"`` (log π) or ``"lvc"`` (π / stop_gradient(π)); ``detach_gamma``
    — condition the critic on stop_gradient(γ) (the reference's), so that the meta-gradient
    reaches γ through the returns only.
    """
    dtype = traj.reward.dtype
    gamma, lam = rule.gamma.astype(dtype), rule.gae_lambda.astype(dtype)
    obs = traj.all_obs()
    critic_gamma = jax.lax.stop_gradient(gamma) if detach_gamma else gamma
    _, ref_values = _apply(current, obs, critic_gamma)
    adv, returns = gae(traj.reward, ref_values, traj.done, gamma, lam)
    logits, values = _apply(net, obs[:-1], critic_gamma)
    logp = _log_pi(logits, traj.action)
    term = magic_box(logp) if surrogate == "lvc" else logp
    policy_loss = -jnp.mean(adv * term)
    value_loss = jnp.mean((returns - values) ** 2)
    ent = jnp.mean(entropy(logits))
    loss = (
        rule.value_coeff.astype(dtype) * value_loss
        + policy_loss
        - rule.entropy_coeff.astype(dtype) * ent
    )
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "policy_entropy": ent}


def outer_advantages(
    net: ActorCritic, traj: Trajectory, gamma: float = 0.99, gae_lambda: float = 0.95
) -> Float[Array, "T W"]:
    """GAE advantages of the outer loss: fixed γ, λ and the critic conditioned on that γ."""
    g = jnp.asarray(gamma, traj.reward.dtype)
    _, values = _apply(net, traj.all_obs(), g)
    adv, _ = gae(traj.reward, values, traj.done, g, jnp.asarray(gae_lambda, traj.reward.dtype))
    return adv


def outer_loss(
    net: ActorCritic, traj: Trajectory, advantages: Float[Array, "T W"]
) -> tuple[Scalar, dict[str, Scalar]]:
    """The outer policy-gradient loss ``−mean(A · log π_θ(a|s))`` with `advantages` as data
    (`outer_advantages`): its gradient in θ is the A2C policy gradient."""
    logits = jax.vmap(jax.vmap(net.logits))(traj.obs)
    logp = _log_pi(logits, traj.action)
    loss = -jnp.mean(jax.lax.stop_gradient(advantages) * logp)
    return loss, {"outer_entropy": jnp.mean(entropy(logits))}
