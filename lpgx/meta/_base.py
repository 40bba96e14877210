"""The meta-optimiser interface."""

import abc
from typing import ClassVar, Generic, TypeVar

import equinox as eqx
from jaxtyping import Array, Int, PyTree

from .._typing import PRNGKeyArray, Scalar
from ..agents import MLPNet, TabularNet
from ..envs import Task
from ..lifetime import AgentState, Learner
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

    Everything a training loop needs to know about a meta-optimiser is asked here, never
    branched on: how big its population is, how many environment steps a step takes, whether
    it trains value critics (curricula that read them need it), and whether a population
    started together may have its first lifetimes staggered.
    """

    learner: eqx.AbstractVar[Learner]
    trains_critics: ClassVar[bool] = False
    """Whether `critics` returns the agents' value critics (else ``None``)."""
    staggers_lifetimes: ClassVar[bool] = True
    """Whether agents live across steps, so that first lifetimes may be staggered."""

    def mini_batch_count(self) -> int:
        """In how many sequential groups a step processes the population (it must divide
        `population_size`)."""
        return 1

    def population_size(self, num_agents: int) -> int:
        """How many agents (or candidates) a step trains for ``num_agents`` tasks."""
        return num_agents

    @abc.abstractmethod
    def env_steps_per_step(self, num_agents: int) -> int:
        """Environment steps one `step` takes with ``num_agents`` agents."""

    @abc.abstractmethod
    def agent_states(self, agents: AgentsT) -> AgentState:
        """The agents' lifetime states (stacked), for curricula that score them."""

    def critics(self, agents: AgentsT) -> TabularNet | MLPNet | None:
        """The agents' value critics (stacked), if the meta-optimiser trains any."""
        del agents
        return None

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
