"""The environment interface every lpgx environment implements."""

import abc
from typing import Generic, TypeVar

import equinox as eqx
from jaxtyping import Array, PyTree

from .._typing import BoolScalar, FloatScalar, IntScalar, PRNGKeyArray

LevelT = TypeVar("LevelT")
StateT = TypeVar("StateT")


class AbstractEnvironment(eqx.Module, Generic[LevelT, StateT]):
    """A pure-functional environment with automatic reset.

    A *level* fixes everything about a task that does not change within a lifetime (layout,
    probabilities, episode length); the environment object itself only holds static shape
    information, so one environment serves every level of a level set.
    """

    num_actions: eqx.AbstractVar[int]

    @abc.abstractmethod
    def reset(self, key: PRNGKeyArray, level: LevelT) -> tuple[StateT, PyTree[Array]]:
        """Start a new episode on `level`.

        **Returns:** `(state, obs)`.
        """

    @abc.abstractmethod
    def step(
        self, key: PRNGKeyArray, level: LevelT, state: StateT, action: IntScalar
    ) -> tuple[StateT, PyTree[Array], FloatScalar, BoolScalar]:
        """Advance one step, resetting automatically when the episode ends.

        **Returns:** `(state, obs, reward, done)`. When `done` is true, `state` and `obs` already
        belong to the next episode; bootstrapping must use `done`.
        """
