"""Curricula: which task an agent gets when its lifetime ends."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, PyTree

from .._typing import PRNGKeyArray
from ..envs import LevelSet, Task

__all__ = ["AbstractCurriculum", "DomainRandomisation", "stagger_lifetimes"]


class AbstractCurriculum(eqx.Module):
    """Hands out tasks. Its state (a pytree, possibly empty) is threaded through training."""

    @abc.abstractmethod
    def init(self, key: PRNGKeyArray, num_agents: int) -> tuple[PyTree, Task]:
        """Initial curriculum state and the first ``num_agents`` tasks."""

    @abc.abstractmethod
    def next_tasks(
        self, state: PyTree, key: PRNGKeyArray, tasks: Task, ended: Bool[Array, " agents"]
    ) -> tuple[PyTree, Task]:
        """New tasks for the agents whose lifetime `ended`; the others keep theirs."""


class DomainRandomisation(AbstractCurriculum):
    """Every ended agent gets a fresh task sampled from the level set."""

    levels: LevelSet = eqx.field(static=True)

    def init(self, key: PRNGKeyArray, num_agents: int) -> tuple[PyTree, Task]:
        return None, jax.vmap(self.levels.sample)(jax.random.split(key, num_agents))

    def next_tasks(
        self, state: PyTree, key: PRNGKeyArray, tasks: Task, ended: Bool[Array, " agents"]
    ) -> tuple[PyTree, Task]:
        fresh = jax.vmap(self.levels.sample)(jax.random.split(key, ended.shape[0]))
        return state, jax.tree.map(
            lambda new, old: jnp.where(ended.reshape(-1, *([1] * (new.ndim - 1))), new, old),
            fresh,
            tasks,
        )


def stagger_lifetimes(key: PRNGKeyArray, tasks: Task) -> Task:
    """Draw each first-generation lifetime uniformly in ``[1, N]`` (decision 11), so a
    population started together does not reset together."""
    lifetime = tasks.lifetime
    u = jax.random.uniform(key, lifetime.shape)
    staggered = 1 + jnp.floor(u * lifetime.astype(jnp.float32)).astype(jnp.int32)
    return eqx.tree_at(lambda t: t.lifetime, tasks, jnp.minimum(staggered, lifetime))
