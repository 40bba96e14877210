"""gymnax environments (MinAtar, classic control, bsuite…) behind lpgx's interfaces.

An optional extra: ``pip install "lpgx[gymnax]"``. `Gymnax` presents any discrete-action gymnax
environment as an `AbstractEnvironment`; gymnax's own ``step`` already resets automatically
(the observation and state it returns at ``done`` start the next episode), which is lpgx's
contract. The *level* is the environment's parameters (gymnax's ``EnvParams``, with every leaf
an array so that tasks stack), and observations are flattened to float vectors, so the agents
build an MLP over them (`lpgx.AgentConfig` chooses its widths; the LPG never sees
observations, only rewards, discounts, probabilities and predictions).
"""

import contextlib
import importlib.util
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from .._typing import BoolScalar, FloatScalar, IntScalar, PRNGKeyArray
from ._base import AbstractEnvironment, AbstractTaskDistribution, ObsSpec, Task

__all__ = ["Gymnax", "GymnaxTasks", "gymnax_available"]

_EXTRA = 'gymnax environments need the optional extra: pip install "lpgx[gymnax]"'


def gymnax_available() -> bool:
    """Whether the gymnax extra is installed."""
    return importlib.util.find_spec("gymnax") is not None


def _make(name: str) -> tuple[Any, Any]:
    if not gymnax_available():
        raise ValueError(f"{_EXTRA} (asked for gymnax:{name})")
    import gymnax

    if name not in gymnax.registered_envs:
        raise ValueError(
            f"unknown gymnax environment {name!r}; choose one of: "
            + ", ".join(gymnax.registered_envs)
        )
    return gymnax.make(name)


@contextlib.contextmanager
def _permissive() -> Iterator[None]:
    # gymnax mixes Python floats with int arrays and broadcasts ranks implicitly; lpgx's own
    # code runs under strict promotion (as its tests do), gymnax's under JAX's defaults.
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


def _as_arrays(tree: PyTree) -> PyTree:
    # gymnax's parameters hold Python scalars; as a level they must be arrays (tasks stack).
    return jax.tree.map(jnp.asarray, tree)


class Gymnax(AbstractEnvironment[PyTree, PyTree]):
    """The gymnax environment called ``name`` (e.g. ``"Breakout-MinAtar"``,
    ``"CartPole-v1"``), stepped with the level's parameters."""

    name: str = eqx.field(static=True)
    num_actions: int = eqx.field(static=True)  # pyright: ignore[reportIncompatibleVariableOverride]
    obs_shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, name: str):
        env, params = _make(name)
        space = env.action_space(params)
        if not hasattr(space, "n"):
            raise ValueError(
                f"gymnax:{name} has a continuous action space; lpgx's agents act in discrete "
                "action spaces (choose e.g. CartPole-v1 or a MinAtar game)"
            )
        self.name = name
        self.num_actions = int(space.n)
        self.obs_shape = tuple(int(d) for d in env.observation_space(params).shape)

    @property
    def _env(self) -> Any:
        return _make(self.name)[0]

    def default_level(self) -> PyTree:
        """The environment's default parameters, as a level."""
        return _as_arrays(_make(self.name)[1])

    @property
    def obs_spec(self) -> ObsSpec:
        return ObsSpec.vector(math.prod(self.obs_shape))

    def _flat(self, obs: Array) -> Float[Array, " obs"]:
        return jnp.reshape(obs, (-1,)).astype(jnp.float32)

    def reset(self, key: PRNGKeyArray, level: PyTree) -> tuple[PyTree, Array]:
        with _permissive():
            obs, state = self._env.reset(key, level)
        return state, self._flat(obs)

    def step(
        self, key: PRNGKeyArray, level: PyTree, state: PyTree, action: IntScalar
    ) -> tuple[PyTree, Array, FloatScalar, BoolScalar]:
        with _permissive():
            obs, state, reward, terminated, truncated, _ = self._env.step(key, state, action, level)
        # An episode cut by the time limit ends like any other (no bootstrap across it), as the
        # grid world's episodes and the reference's A2C (no "proper time limits") do.
        done = jnp.logical_or(terminated, truncated)
        return state, self._flat(obs), jnp.asarray(reward, jnp.float32), done


@dataclass(frozen=True)
class GymnaxTasks(AbstractTaskDistribution[PyTree]):
    """Tasks on one gymnax environment: its default parameters and a fixed lifetime.

    ``lifetime`` is the number of agent updates an agent lives; ``eval_steps`` the length of
    the rollout that measures returns (it must cover an episode; CartPole's last 500 steps,
    MinAtar games' are capped by lpgx at ``eval_steps``: the return of an episode still running
    then is the reward collected so far).
    """

    env_name: str
    lifetime: int = 500
    max_episode_steps: int = 1000
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if self.lifetime < 1 or self.max_episode_steps < 1:
            raise ValueError(
                f"gymnax:{self.env_name}: lifetime and max_episode_steps must be positive"
            )
        object.__setattr__(self, "name", f"gymnax:{self.env_name}")
        _make(self.env_name)  # fails here, before compiling, if the extra or name is missing

    @property
    def max_lifetime(self) -> int:
        return self.lifetime

    @property
    def eval_steps(self) -> int:
        return self.max_episode_steps

    def env(self) -> Gymnax:
        return Gymnax(self.env_name)

    def sample(self, key: PRNGKeyArray) -> Task[PyTree]:
        del key
        return Task(level=self.env().default_level(), lifetime=jnp.asarray(self.lifetime))
