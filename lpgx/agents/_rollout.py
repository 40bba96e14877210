"""Rollouts: ``W`` workers stepping one level for ``T`` steps with a policy network.

Arrays are time-major (``[T, W, ...]``) because every consumer scans over time. The observation
that follows step ``t`` is ``obs[t + 1]`` (or ``last_obs`` after the final step); where
``done[t]`` is true that observation already starts the next episode, so consumers mask with
``done`` — no separate next-observation array is stored.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._typing import PRNGKeyArray
from ..envs import AbstractEnvironment

__all__ = ["Trajectory", "first_episode_returns", "reset_workers", "rollout"]


class Trajectory(eqx.Module):
    """A batch of experience, time-major: ``[T, W]`` (observations ``[T, W, *obs]``)."""

    obs: Array
    action: Int[Array, "T W"]
    reward: Float[Array, "T W"]
    done: Bool[Array, "T W"]
    logp: Float[Array, "T W"]
    last_obs: Array

    def all_obs(self) -> Array:
        """Observations at ``t = 0 … T`` (``[T + 1, W, *obs]``), for bootstrapping."""
        return jnp.concatenate([self.obs, self.last_obs[None]], axis=0)


def reset_workers(
    env: AbstractEnvironment, level: PyTree, key: PRNGKeyArray, num_workers: int
) -> tuple[PyTree, Array]:
    """Reset ``num_workers`` copies of `level`: ``(env_state [W], obs [W])``."""
    return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_workers), level)


_Step = Callable[[PyTree, Array, PRNGKeyArray], tuple[PyTree, Array, tuple[Array, ...]]]


def _stepper(
    env: AbstractEnvironment, level: PyTree, policy: Callable[[Array], Float[Array, " actions"]]
) -> _Step:
    """One step of every worker with `policy` (see `rollout`): ``(env_state, obs, key) ->
    (env_state, next_obs, (action, reward, done, logp))``."""
    policy = jax.lax.stop_gradient(policy)
    step_env = jax.vmap(env.step, in_axes=(0, None, 0, 0))

    def act_and_step(
        env_state: PyTree, obs: Array, key: PRNGKeyArray
    ) -> tuple[PyTree, Array, tuple[Array, ...]]:
        k_act, k_env = jax.random.split(key)
        logits = jax.vmap(policy)(obs)
        action = jax.random.categorical(k_act, logits).astype(jnp.int32)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
        env_state, next_obs, reward, done = step_env(
            jax.random.split(k_env, obs.shape[0]), level, env_state, action
        )
        return env_state, next_obs, (action, reward, done, logp)

    return act_and_step


def rollout(
    env: AbstractEnvironment,
    level: PyTree,
    policy: Callable[[Array], Float[Array, " actions"]],
    env_state: PyTree,
    obs: Array,
    key: PRNGKeyArray,
    length: int,
) -> tuple[PyTree, Array, Trajectory]:
    """Act with `policy` in every worker for `length` steps (a `lax.scan`, vmapped workers).

    Step ``t`` uses ``k_act, k_env = split(keys[t])`` with ``keys = split(key, length)``:
    actions are ``categorical(k_act, logits)`` over the worker batch, and worker ``w`` steps the
    environment with ``split(k_env, W)[w]``.

    **Returns:** ``(env_state, obs, trajectory)`` with the state and observation after the last
    step, so the next rollout continues the same episodes.
    """
    act_and_step = _stepper(env, level, policy)

    def step(
        carry: tuple[PyTree, Array], k: PRNGKeyArray
    ) -> tuple[tuple[PyTree, Array], tuple[Array, ...]]:
        env_state, obs = carry
        env_state, next_obs, out = act_and_step(env_state, obs, k)
        return (env_state, next_obs), (obs, *out)

    (env_state, last_obs), (obs_t, action, reward, done, logp) = jax.lax.scan(
        step, (env_state, obs), jax.random.split(key, length)
    )
    traj = Trajectory(
        obs=obs_t, action=action, reward=reward, done=done, logp=logp, last_obs=last_obs
    )
    return env_state, last_obs, traj


_Carry = tuple[Int[Array, ""], PyTree, Array, Bool[Array, " W"], Float[Array, " W"]]


def first_episode_returns(
    env: AbstractEnvironment,
    level: PyTree,
    policy: Callable[[Array], Float[Array, " actions"]],
    env_state: PyTree,
    obs: Array,
    key: PRNGKeyArray,
    max_steps: int,
) -> Float[Array, " W"]:
    """Undiscounted return of every worker's current episode: `rollout` for `max_steps`
    steps, its rewards summed up to and including each worker's first ``done``, in a
    `lax.while_loop` that stops as soon as every worker's episode has ended.

    The same steps and keys as `rollout`, the rewards added in time order; only the steps
    after the last episode's end are skipped. (Summing a whole trajectory's masked rewards
    gives the same returns up to the order of float additions, which XLA may choose.) Under
    `vmap` the loop runs until every batch member's episodes have ended, carrying a few values
    per worker, not a trajectory.
    """
    if max_steps < 1:
        raise ValueError(
            f"max_steps must be at least 1 (the longest episode: a level set's eval_steps), "
            f"got {max_steps}"
        )
    act_and_step = _stepper(env, level, policy)
    keys = jax.random.split(key, max_steps)

    def running(carry: _Carry) -> Bool[Array, ""]:
        t, _, _, ended, _ = carry
        return (t < max_steps) & ~jnp.all(ended)

    def step(carry: _Carry) -> _Carry:
        t, env_state, obs, ended, total = carry
        env_state, obs, (_, reward, done, _) = act_and_step(env_state, obs, keys[t])
        return t + 1, env_state, obs, ended | done, total + jnp.where(ended, 0.0, reward)

    num_workers = obs.shape[0]
    start = (
        jnp.zeros((), jnp.int32),
        env_state,
        obs,
        jnp.zeros((num_workers,), bool),
        jnp.zeros((num_workers,), jnp.float32),
    )
    return jax.lax.while_loop(running, step, start)[4]
