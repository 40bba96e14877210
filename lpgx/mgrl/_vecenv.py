"""Vectorised environments for online training: ``W`` environments stepped together, with the
raw score of every finished game reported beside the reward the agent learns from.

`GymnaxVec` vmaps any lpgx `AbstractEnvironment` (MinAtar through the gymnax adapter);
`AtariVec` drives the Arcade Learning Environment's own vector environment (``ale-py``, an
optional extra) through its XLA interface, so the whole loop stays one compiled function.
"""

import abc
import importlib.util
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._typing import PRNGKeyArray
from ..envs import AbstractEnvironment

__all__ = ["ATARI_EXTRA", "AbstractVecEnv", "AtariVec", "GymnaxVec", "StepOut", "ale_available"]

ATARI_EXTRA = 'Atari games need the optional extra: pip install "lpgx[atari]"'


def ale_available() -> bool:
    """Whether the Atari extra (``ale-py`` with its XLA interface) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("ale_py", "chex"))


class StepOut(eqx.Module):
    """What one step of ``W`` environments returns besides the new state."""

    obs: Array
    reward: Float[Array, " W"]
    """The reward the agent learns from (sign-clipped for Atari)."""
    done: Bool[Array, " W"]
    """Where bootstrapping stops (a lost life counts for Atari); `obs` then starts anew."""
    ended: Bool[Array, " W"]
    """Where a whole game ended (the score below is its raw return)."""
    score: Float[Array, " W"]
    """Raw return of the game that ended (0 elsewhere)."""


class AbstractVecEnv(eqx.Module):
    """``num_envs`` environments stepped together; state is data, returned, never mutated."""

    num_envs: eqx.AbstractVar[int]
    num_actions: eqx.AbstractVar[int]
    obs_shape: eqx.AbstractVar[tuple[int, ...]]

    @property
    def vmappable(self) -> bool:
        """Whether independent runs (``--seeds``) may vmap over this environment."""
        return True

    @abc.abstractmethod
    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Array]:
        """``(state, obs [W, ...])``."""

    @abc.abstractmethod
    def step(
        self, state: PyTree, key: PRNGKeyArray, action: Int[Array, " W"]
    ) -> tuple[PyTree, StepOut]:
        """Advance every environment one step (resetting where a game ended)."""


class GymnaxVec(AbstractVecEnv):
    """``num_envs`` copies of an lpgx environment on one level (e.g. a MinAtar game through
    `lpgx.envs.Gymnax`); rewards are raw, so the agent learns from the game score."""

    env: AbstractEnvironment
    level: PyTree
    num_envs: int = eqx.field(static=True)  # pyright: ignore[reportIncompatibleVariableOverride]
    num_actions: int = eqx.field(static=True)  # pyright: ignore[reportIncompatibleVariableOverride]
    obs_shape: tuple[int, ...] = eqx.field(static=True)  # pyright: ignore[reportIncompatibleVariableOverride]

    def __init__(
        self, env: AbstractEnvironment, level: PyTree, num_envs: int, obs_shape: tuple[int, ...]
    ):
        self.env = env
        self.level = level
        self.num_envs = num_envs
        self.num_actions = env.num_actions
        self.obs_shape = obs_shape

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Array]:
        keys = jax.random.split(key, self.num_envs)
        states, obs = jax.vmap(self.env.reset, in_axes=(0, None))(keys, self.level)
        return (states, jnp.zeros(self.num_envs, jnp.float32)), obs

    def step(
        self, state: PyTree, key: PRNGKeyArray, action: Int[Array, " W"]
    ) -> tuple[PyTree, StepOut]:
        env_states, running = state
        keys = jax.random.split(key, self.num_envs)
        step = jax.vmap(self.env.step, in_axes=(0, None, 0, 0))
        env_states, obs, reward, done = step(keys, self.level, env_states, action)
        total = running + reward
        out = StepOut(
            obs=obs,
            reward=reward,
            done=done,
            ended=done,
            score=jnp.where(done, total, jnp.zeros_like(total)),
        )
        return (env_states, jnp.where(done, jnp.zeros_like(total), total)), out


class AtariVec(AbstractVecEnv):
    """An Atari game through ``ale_py.AtariVectorEnv`` with the paper's preprocessing.

    The ALE does no-op resets (up to 30), frame skip 4 with max-pooling over the last two
    frames, 84×84 grey frames, 4 stacked frames and FIRE on reset; lpgx adds what the ALE's
    vector environment does differently from the reference's wrappers:

    - *episodic life*: a lost life ends the agent's episode (``done``) while the game goes
      on (ale-py 0.12's own ``episodic_life`` restarts the whole game at every lost life, so
      it is off and the lives are compared here);
    - *sign-clipped rewards* for learning, raw rewards summed into the game's score (what the
      paper reports);
    - the ALE resets a finished game on the *next* step, ignoring that step's action and
      returning the new game's first frames with reward 0: that step is reported ``done``, a
      one-step episode through an absorbing terminal frame, so nothing leaks across games.

    The environment lives in the host process (a C++ vector environment): runs on it are not
    vmapped (one ``--seeds`` at a time) and a resumed run restarts its games.
    """

    game: str = eqx.field(static=True)
    num_envs: int = eqx.field(static=True)  # pyright: ignore[reportIncompatibleVariableOverride]
    num_actions: int = eqx.field(static=True)  # pyright: ignore[reportIncompatibleVariableOverride]
    obs_shape: tuple[int, ...] = eqx.field(static=True)  # pyright: ignore[reportIncompatibleVariableOverride]
    _ale: Any = eqx.field(static=True)

    def __init__(self, game: str, num_envs: int, seed: int = 0, num_threads: int = 0):
        if not ale_available():
            raise ValueError(f"{ATARI_EXTRA} (asked for atari:{game})")
        from ale_py import AtariVectorEnv, roms

        rom = _rom_name(game)
        if rom not in roms.get_all_rom_ids():
            raise ValueError(
                f"unknown Atari game {game!r}; e.g. Breakout, Qbert, Pong, SpaceInvaders "
                "(ale-py's roms.get_all_rom_ids() lists every one)"
            )
        env = AtariVectorEnv(
            rom,
            num_envs,
            num_threads=num_threads,
            episodic_life=False,
            reward_clipping=False,
            use_fire_reset=True,
            noop_max=30,
            frameskip=4,
            maxpool=True,
            stack_num=4,
            img_height=84,
            img_width=84,
            grayscale=True,
        )
        self.game = game
        self.num_envs = num_envs
        self.num_actions = int(env.single_action_space.n)
        self.obs_shape = tuple(int(d) for d in env.single_observation_space.shape)
        self._ale = _AleHandle(env, seed)

    @property
    def vmappable(self) -> bool:
        return False

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Array]:
        del key  # the games were seeded when the environment was made
        w = self.num_envs
        state = (
            jnp.full(w, self._ale.lives, jnp.int32),
            jnp.zeros(w, jnp.bool_),
            jnp.zeros(w, jnp.float32),
        )
        return state, jnp.asarray(self._ale.first_obs)

    def step(
        self, state: PyTree, key: PRNGKeyArray, action: Int[Array, " W"]
    ) -> tuple[PyTree, StepOut]:
        del key
        lives, pending, running = state
        _, (obs, raw, terminated, truncated, info) = self._ale.step(self._ale.handle, action)
        raw = raw.astype(jnp.float32)
        game_over = jnp.logical_or(terminated, truncated)
        life_lost = jnp.logical_and(info["lives"] < lives, jnp.logical_not(pending))
        done = jnp.logical_or(jnp.logical_or(life_lost, game_over), pending)
        total = running + raw
        out = StepOut(
            obs=obs,
            reward=jnp.sign(raw),
            done=done,
            ended=game_over,
            score=jnp.where(game_over, total, jnp.zeros_like(total)),
        )
        new_state = (info["lives"], game_over, jnp.where(game_over, jnp.zeros_like(total), total))
        return new_state, out


def _rom_name(game: str) -> str:
    # "Breakout", "SpaceInvaders" -> ale-py's ROM ids "breakout", "space_invaders".
    out = []
    for i, ch in enumerate(game):
        if ch.isupper() and i > 0 and not game[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class _AleHandle:
    """The host-side ALE vector environment and its XLA functions (hashable by identity, so
    it is a static part of the compiled loop)."""

    def __init__(self, env: Any, seed: int):
        self.env = env
        handle, reset, step = env.xla()
        handle, (obs, info) = reset(handle, seed=seed)
        self.handle = np.asarray(handle)
        self.step = step
        self.first_obs = np.asarray(obs)
        self.lives = int(np.asarray(info["lives"])[0])
