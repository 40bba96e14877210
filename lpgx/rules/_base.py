"""The update-rule interface: how an agent turns experience into a loss."""

import abc
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Int

from .._typing import Scalar
from ..agents import Agent, Trajectory
from .estimators import magic_box

__all__ = ["DIFFERENTIATIONS", "AbstractUpdateRule", "Differentiation", "LifetimeContext"]

Differentiation = Literal["exact", "stop_gradient", "lvc"]
"""How a meta-gradient differentiates through an agent's update: ``"exact"``, the true
derivative; ``"stop_gradient"``, the reference's, which cuts the path through the rule's inputs
(the current policy, y); ``"lvc"``, log π(a|s) written as π / stop_gradient(π) (a lower-bias
Hessian, `LifetimeContext.log_prob`)."""
DIFFERENTIATIONS: tuple[str, ...] = ("exact", "stop_gradient", "lvc")


class LifetimeContext(eqx.Module):
    """What a rule may know besides the parameters it differentiates.

    ``step`` updates done out of ``lifetime``; ``agent`` holds the *current* parameters for
    the rule's own inputs and targets (the LPG's π(a|s) and y, A2C's value baseline). The
    agent's gradient is taken with respect to the `agent_loss` argument only, so these inputs
    act as constants for the agent, while a meta-gradient still flows through them (through
    the earlier updates that produced them): no `stop_gradient` that would cut that path.
    """

    step: Int[Array, ""]
    lifetime: Int[Array, ""]
    agent: Agent
    log_prob: Literal["log", "lvc"] = eqx.field(static=True, default="log")
    """How the rule's loss should write log π(a|s) of the parameters it differentiates:
    ``"log"`` as it is, ``"lvc"`` as ``π / stop_gradient(π)`` (`log_prob_term`): the same
    value's gradient, a lower-bias Hessian for a meta-gradient through the update."""

    def log_prob_term(self, logp: Array) -> Array:
        """`logp` as the rule's loss should use it (see ``log_prob``)."""
        if self.log_prob == "lvc":
            return magic_box(logp)
        return logp


class AbstractUpdateRule(eqx.Module):
    """An update rule tells an agent how to change θ from a trajectory.

    Its inexact arrays are the meta-parameters η (``eqx.partition(rule, eqx.is_inexact_array)``);
    `agent_loss` must be differentiable in both the agent's parameters and those arrays.
    ``aux_size`` is the width of the agent's auxiliary head the rule needs.
    """

    aux_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def agent_loss(
        self, agent: Agent, traj: Trajectory, ctx: LifetimeContext
    ) -> tuple[Scalar, dict[str, Scalar]]:
        """The loss the agent minimises on `traj`, and named scalar diagnostics."""

    def meta_regulariser(
        self, agent: Agent, traj: Trajectory, diagnostics: dict[str, Scalar]
    ) -> Scalar:
        """A term a meta-gradient adds to its outer loss after each agent update (the LPG's
        entropy and L2 regularisers), given the updated `agent`, the update's `traj` and the
        `agent_loss` `diagnostics` of that update. The default adds nothing."""
        del agent, traj, diagnostics
        return jnp.zeros(())
