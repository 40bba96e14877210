"""The meta-optimiser interface."""

import abc
from typing import Generic, TypeVar

import equinox as eqx
from jaxtyping import Array, Int, PyTree

from .._typing import PRNGKeyArray, Scalar
from ..envs import Task
from ..lifetime import Learner
from ..rules import AbstractUpdateRule

__all__ = ["AbstractMetaOptimiser", "MetaState"]

AgentsT = TypeVar("AgentsT")


class MetaState(eqx.Module):
    """The rule being meta-learned (its inexact arrays are η), its optimiser state and the
    number of meta-steps taken."""

    rule: AbstractUpdateRule
    opt_state: PyTree
    step: Int[Array, ""]


class AbstractMetaOptimiser(eqx.Module, Generic[AgentsT]):
    """Changes η so that agents trained by the rule end their lifetimes with high return.

    A meta-optimiser owns the population of agents it trains (``AgentsT``, stacked along a
    leading agent axis); the training loop hands ended agents new tasks via `init_agents`.
    ``learner`` says how the agents are built and trained.
    """

    learner: eqx.AbstractVar[Learner]

    @abc.abstractmethod
    def init(self, rule: AbstractUpdateRule, key: PRNGKeyArray) -> MetaState:
        """Optimiser state for `rule`."""

    @abc.abstractmethod
    def init_agents(self, key: PRNGKeyArray, tasks: Task, rule: AbstractUpdateRule) -> AgentsT:
        """Fresh agents, one per task (`tasks` is stacked along the agent axis)."""

    @abc.abstractmethod
    def ended(self, agents: AgentsT) -> Array:
        """Which agents have finished their lifetime (a bool per agent)."""

    @abc.abstractmethod
    def tasks(self, agents: AgentsT) -> Task:
        """The agents' tasks (stacked)."""

    @abc.abstractmethod
    def step(
        self, state: MetaState, agents: AgentsT, key: PRNGKeyArray
    ) -> tuple[MetaState, AgentsT, dict[str, Scalar]]:
        """One meta-step: update η from the agents' experience; the agents move on."""
