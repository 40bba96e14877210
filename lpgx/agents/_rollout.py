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

__all__ = ["Trajectory", "reset_workers", "rollout"]


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
    num_workers = obs.shape[0]
    policy = jax.lax.stop_gradient(policy)
    step_env = jax.vmap(env.step, in_axes=(0, None, 0, 0))

    def step(
        carry: tuple[PyTree, Array], k: PRNGKeyArray
    ) -> tuple[tuple[PyTree, Array], tuple[Array, ...]]:
        env_state, obs = carry
        k_act, k_env = jax.random.split(k)
        logits = jax.vmap(policy)(obs)
        action = jax.random.categorical(k_act, logits).astype(jnp.int32)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
        env_state, next_obs, reward, done = step_env(
            jax.random.split(k_env, num_workers), level, env_state, action
        )
        return (env_state, next_obs), (obs, action, reward, done, logp)

    (env_state, last_obs), (obs_t, action, reward, done, logp) = jax.lax.scan(
        step, (env_state, obs), jax.random.split(key, length)
    )
    traj = Trajectory(
        obs=obs_t, action=action, reward=reward, done=done, logp=logp, last_obs=last_obs
    )
    return env_state, last_obs, traj
