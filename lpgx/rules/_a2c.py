"""A2C: the hand-designed baseline rule and GROOVE's antagonist."""

from dataclasses import dataclass
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._typing import Scalar
from ..agents import Agent, Trajectory
from ._base import AbstractUpdateRule, LifetimeContext
from ._returns import entropy, gae, normalise

__all__ = ["A2C", "A2CConfig"]


@dataclass(frozen=True)
class A2CConfig:
    """The hand-designed A2C rule (GROOVE's antagonist and baseline)."""

    gamma: float = 0.99
    gae_lambda: float = 0.95
    entropy_coeff: float = 0.01
    value_coeff: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.gae_lambda <= 1.0):
            raise ValueError(
                f"A2C's gamma and gae_lambda must lie in [0, 1], got {self.gamma} and "
                f"{self.gae_lambda}"
            )


class A2C(AbstractUpdateRule):
    """Advantage actor-critic with GAE; the agent's ``aux`` head is its value critic.

    Loss = −mean(log π(a|s) · Â) − c_H · H(π) + c_V · mean((V − V_target)²), with Â the GAE
    advantage (γ 0.99, λ 0.95 by default) normalised over the whole ``T × W`` batch.
    """

    config: A2CConfig = eqx.field(static=True, default=A2CConfig())
    aux_size: ClassVar[int] = 1  # pyright: ignore[reportIncompatibleVariableOverride]

    def agent_loss(
        self, agent: Agent, traj: Trajectory, ctx: LifetimeContext
    ) -> tuple[Scalar, dict[str, Scalar]]:
        cfg = self.config
        obs = traj.all_obs()
        logits, value = jax.vmap(jax.vmap(agent))(obs)
        value = value[..., 0]
        logits = logits[:-1]
        # Advantages and targets from the current parameters (constants for the agent).
        _, ref_value = jax.vmap(jax.vmap(ctx.agent))(obs)
        adv, target = gae(traj.reward, ref_value[..., 0], traj.done, cfg.gamma, cfg.gae_lambda)
        adv = normalise(adv)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), traj.action[..., None], axis=-1)
        policy_loss = -jnp.mean(ctx.log_prob_term(logp[..., 0]) * adv)
        ent = jnp.mean(entropy(logits))
        value_loss = jnp.mean((value[:-1] - target) ** 2)
        loss = policy_loss - cfg.entropy_coeff * ent + cfg.value_coeff * value_loss
        return loss, {"policy_loss": policy_loss, "entropy": ent, "value_loss": value_loss}
