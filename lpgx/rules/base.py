"""The update-rule interface: how an agent turns experience into a loss."""

import abc

import equinox as eqx
from jaxtyping import Array, Int

from .._typing import Scalar
from ..agents import Agent, Trajectory

__all__ = ["AbstractUpdateRule", "LifetimeContext"]


class LifetimeContext(eqx.Module):
    """Where the agent is in its lifetime: ``step`` updates done out of ``lifetime``."""

    step: Int[Array, ""]
    lifetime: Int[Array, ""]


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
