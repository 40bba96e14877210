"""The interfaces every lpgx environment and task distribution implements.

An *environment* holds only static shape information and steps any of its levels; a *level*
fixes everything about a task that does not change within a lifetime; a `Task` pairs a level
with a lifetime (number of agent updates); a *task distribution* samples tasks whose arrays all
have one shape, so they stack, vmap and scatter into buffers under `jit`.

Agents, rollouts, lifetimes, curricula and evaluation are typed by these interfaces only: a new
environment is one module implementing `AbstractEnvironment` and `AbstractTaskDistribution`.
"""

import abc
import math
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import equinox as eqx
from jaxtyping import Array, Int, PyTree

from .._typing import BoolScalar, FloatScalar, IntScalar, PRNGKeyArray

__all__ = ["AbstractEnvironment", "AbstractTaskDistribution", "InputLayout", "ObsSpec", "Task"]

LevelT = TypeVar("LevelT")
StateT = TypeVar("StateT")


@dataclass(frozen=True)
class ObsSpec:
    """What one observation looks like, so that agents can build their networks from it.

    An *index* observation is an ``int32`` scalar in ``[0, num_indices)`` (a tabular state,
    looked up in a table); any other observation is a float array of ``shape``. ``size`` is the
    input width a network sees: ``num_indices`` for an index, the number of entries otherwise.
    """

    shape: tuple[int, ...]
    dtype: Literal["int32", "float32"] = "float32"
    num_indices: int | None = None

    def __post_init__(self) -> None:
        if self.num_indices is not None:
            if self.shape != () or self.dtype != "int32" or self.num_indices < 1:
                raise ValueError(
                    "an index observation is an int32 scalar with num_indices >= 1; got "
                    f"shape={self.shape}, dtype={self.dtype}, num_indices={self.num_indices}"
                )
        elif self.dtype != "float32" or any(n < 1 for n in self.shape):
            raise ValueError(
                f"a vector observation is float32 with positive dimensions; got {self}"
            )

    @staticmethod
    def index(num_indices: int) -> "ObsSpec":
        """An ``int32`` index into ``num_indices`` tabular states."""
        return ObsSpec(shape=(), dtype="int32", num_indices=num_indices)

    @staticmethod
    def vector(size: int) -> "ObsSpec":
        """A float vector of length `size`."""
        return ObsSpec(shape=(size,))

    @property
    def is_index(self) -> bool:
        return self.num_indices is not None

    @property
    def size(self) -> int:
        """Input width of a network: table rows for an index, entries of the array otherwise."""
        return self.num_indices if self.num_indices is not None else math.prod(self.shape)


class Task(eqx.Module, Generic[LevelT]):
    """What a curriculum hands an agent: a level and a lifetime (number of agent updates)."""

    level: LevelT
    lifetime: Int[Array, ""]


class InputLayout(eqx.Module):
    """Names of a network's inputs that do not depend on how a level is padded.

    A task distribution pads its levels to common maxima, so the same state of one level can
    be a different table row (or vector entry) in a different set, and a table's size sets the
    scale of its initial weights. An environment that knows which inputs are "the same" across
    paddings names each input by two integers (`ids`: e.g. an object-existence code and a cell)
    and gives the number of inputs the level would have unpadded (`fan_in`); agents then draw
    each input's initial weights from the key folded with its name, scaled by that fan-in, so a
    level starts every agent from the same policy whatever set it is in.
    """

    ids: Int[Array, "inputs 2"]
    fan_in: Int[Array, ""]


class AbstractEnvironment(eqx.Module, Generic[LevelT, StateT]):
    """A pure-functional environment with automatic reset.

    A *level* fixes everything about a task that does not change within a lifetime (layout,
    probabilities, episode length); the environment object itself only holds static shape
    information, so one environment serves every level of a task distribution.
    """

    num_actions: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def obs_spec(self) -> ObsSpec:
        """The shape and kind of one observation (agents choose their network from it)."""

    def check_level(self, level: LevelT) -> None:
        """Raise a `ValueError` naming the fix if `level` cannot run in this environment
        (called on concrete levels before compiling; the default accepts every level)."""
        del level

    def input_layout(self, level: LevelT) -> InputLayout | None:
        """Padding-independent names of the network inputs for `level` (see `InputLayout`), or
        ``None`` (the default) where inputs do not depend on padding: agents then initialise
        their first layer over its whole width as usual."""
        del level
        return None

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


class AbstractTaskDistribution(abc.ABC, Generic[LevelT]):
    """A named, samplable distribution of tasks of one fixed shape (hashable: it is a static
    part of every compiled function that uses it).

    ``max_lifetime`` is the longest lifetime it draws (a lifetime-long loop runs that many
    masked updates); ``eval_steps`` a rollout length that ends every first episode (returns
    are measured over it).
    """

    name: str
    """The name a user selects it by (``--env-mode``)."""

    @property
    @abc.abstractmethod
    def max_lifetime(self) -> int: ...

    @property
    @abc.abstractmethod
    def eval_steps(self) -> int: ...

    @abc.abstractmethod
    def env(self) -> AbstractEnvironment[LevelT, PyTree]:
        """The environment every sampled level runs in."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray) -> Task[LevelT]:
        """Draw one task (jit- and vmap-able)."""
