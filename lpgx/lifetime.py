"""Agent lifetimes (layer 4): agent state, one gated update, whole lifetimes, evaluation.

A `Learner` holds what is fixed while agents live: the environment and the `AgentConfig`.
Everything here is a pure function of explicit keys, so it jits, vmaps over agents, and is
differentiable in the update rule's arrays (the meta-gradient unrolls `agent_update`).
"""

import dataclasses
from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PyTree

from ._tree import tree_select
from ._typing import PRNGKeyArray, Scalar
from .agents import Agent, Trajectory, reset_workers, rollout
from .config import AgentConfig
from .envs import EnvState, GridWorld, Level, LevelSet, Task
from .rules import AbstractUpdateRule, LifetimeContext

__all__ = [
    "AgentState",
    "Learner",
    "agent_rollout",
    "agent_update",
    "evaluate_return",
    "train_lifetime",
    "update_from_rollout",
]


class AgentState(eqx.Module):
    """One agent during its lifetime: parameters, optimiser state, its workers' env states,
    its task and the number of updates made so far."""

    params: Agent
    opt_state: PyTree
    env_state: EnvState
    obs: Array
    task: Task
    step: Int[Array, ""]


def _head_optimiser(config: AgentConfig, lr: float) -> optax.GradientTransformation:
    if config.optimiser == "sgd":
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.scale(-lr))
    # The reference ignores max_grad_norm for Adam; lpgx keeps that behaviour.
    return optax.chain(optax.scale_by_adam(), optax.scale(-lr))


class Learner(eqx.Module):
    """How agents are built and trained on one level set's environment."""

    env: GridWorld
    config: AgentConfig = eqx.field(static=True)

    @staticmethod
    def for_level_set(levels: LevelSet, **overrides: object) -> "Learner":
        """The reference's agent for `levels` (tabular SGD or MLP Adam), with `overrides`."""
        config = AgentConfig.for_hidden(levels.agent_hidden)
        if overrides:
            config = dataclasses.replace(config, **overrides)  # pyright: ignore[reportArgumentType]
        return Learner(env=levels.env(), config=config)

    def _optimisers(self) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
        return (
            _head_optimiser(self.config, self.config.policy_lr),
            _head_optimiser(self.config, self.config.aux_lr),
        )

    def init_params(self, key: PRNGKeyArray, aux_size: int) -> Agent:
        return Agent.create(
            self.env.obs_size, self.env.num_actions, aux_size, self.config.hidden, key=key
        )

    def init(self, key: PRNGKeyArray, task: Task, rule: AbstractUpdateRule) -> AgentState:
        """A fresh agent on `task`: new parameters, optimiser state and reset workers."""
        self.env.check_level(task.level)
        k_params, k_env = jax.random.split(key)
        params = self.init_params(k_params, rule.aux_size)
        opt_policy, opt_aux = self._optimisers()
        env_state, obs = reset_workers(self.env, task.level, k_env, self.config.num_workers)
        return AgentState(
            params=params,
            opt_state=(
                opt_policy.init(cast(optax.Params, params.policy)),
                opt_aux.init(cast(optax.Params, params.aux)),
            ),
            env_state=env_state,
            obs=obs,
            task=task,
            step=jnp.zeros((), jnp.int32),
        )

    def apply_gradients(
        self, params: Agent, grads: Agent, opt_state: PyTree
    ) -> tuple[Agent, PyTree]:
        """One optimiser step on each head (each with its own optimiser state)."""
        heads = zip(
            self._optimisers(),
            (params.policy, params.aux),
            (grads.policy, grads.aux),
            opt_state,
            strict=True,
        )
        new_heads: list[Any] = []
        new_states = []
        for tx, p, g, s in heads:
            # optax's Adam bias correction raises an int count to a float power, which strict
            # dtype promotion rejects; the promotion is intended there.
            with jax.numpy_dtype_promotion("standard"):
                updates, s = tx.update(cast(optax.Updates, g), s, cast(optax.Params, p))
            new_heads.append(optax.apply_updates(cast(optax.Params, p), updates))
            new_states.append(s)
        return Agent(policy=new_heads[0], aux=new_heads[1]), tuple(new_states)


def agent_rollout(
    learner: Learner, agent: AgentState, key: PRNGKeyArray
) -> tuple[EnvState, Array, Trajectory]:
    """One ``W × T`` rollout of the agent's current policy on its task, continuing its workers.

    **Returns:** ``(env_state, obs, trajectory)`` to hand to `update_from_rollout`.
    """
    return rollout(
        learner.env,
        agent.task.level,
        agent.params.policy,
        agent.env_state,
        agent.obs,
        key,
        learner.config.rollout_len,
    )


def update_from_rollout(
    learner: Learner,
    rule: AbstractUpdateRule,
    agent: AgentState,
    traj: Trajectory,
    env_state: EnvState,
    obs: Array,
) -> tuple[AgentState, dict[str, Scalar]]:
    """One optimiser step on `traj`, gated by the agent's lifetime; the workers move on to
    ``(env_state, obs)`` either way."""
    ctx = LifetimeContext(step=agent.step, lifetime=agent.task.lifetime, agent=agent.params)
    (loss, metrics), grads = eqx.filter_value_and_grad(rule.agent_loss, has_aux=True)(
        agent.params, traj, ctx
    )
    params, opt_state = learner.apply_gradients(agent.params, grads, agent.opt_state)
    active = agent.step < agent.task.lifetime
    new_agent = AgentState(
        params=tree_select(active, params, agent.params),
        opt_state=tree_select(active, opt_state, agent.opt_state),
        env_state=env_state,
        obs=obs,
        task=agent.task,
        step=agent.step + active.astype(jnp.int32),
    )
    metrics = {
        **metrics,
        "loss": loss,
        "rollout_reward": jnp.mean(traj.reward),
        "active": active.astype(jnp.float32),
    }
    return new_agent, metrics


def agent_update(
    learner: Learner, rule: AbstractUpdateRule, agent: AgentState, key: PRNGKeyArray
) -> tuple[AgentState, dict[str, Scalar]]:
    """One rollout of ``W × T`` steps and one optimiser step, gated by the agent's lifetime.

    Once ``agent.step`` reaches ``agent.task.lifetime`` the parameters, optimiser state and
    step counter freeze (the workers keep stepping), so an agent makes exactly ``lifetime``
    updates however often this is called. Differentiable in `rule`'s arrays.

    **Returns:** ``(agent, metrics)``; metrics include the rule's diagnostics, the rollout's mean
    reward and whether the update was applied (``active``).
    """
    env_state, obs, traj = agent_rollout(learner, agent, key)
    return update_from_rollout(learner, rule, agent, traj, env_state, obs)


def train_lifetime(
    learner: Learner,
    rule: AbstractUpdateRule,
    task: Task,
    key: PRNGKeyArray,
    num_updates: int,
    agent: AgentState | None = None,
) -> tuple[AgentState, dict[str, Float[Array, " updates"]]]:
    """Train a fresh agent (or `agent`) on `task` for `num_updates` gated updates (a scan).

    Pass the level set's ``max_lifetime`` as `num_updates`: updates past the task's own
    lifetime are masked, so tasks with different lifetimes share one compiled function.
    """
    k_init, k_updates = jax.random.split(key)
    if agent is None:
        agent = learner.init(k_init, task, rule)

    def body(agent: AgentState, k: PRNGKeyArray) -> tuple[AgentState, dict[str, Scalar]]:
        return agent_update(learner, rule, agent, k)

    return jax.lax.scan(body, agent, jax.random.split(k_updates, num_updates))


def evaluate_return(
    learner: Learner,
    params: Agent,
    level: Level,
    key: PRNGKeyArray,
    episodes: int,
    max_steps: int,
) -> Float[Array, " episodes"]:
    """Undiscounted return of the first episode of each of `episodes` fresh workers.

    Actions are sampled from the policy. `max_steps` must be at least the level's episode
    length (use the level set's ``eval_steps``) so every first episode ends.
    """
    k_reset, k_roll = jax.random.split(key)
    env_state, obs = reset_workers(learner.env, level, k_reset, episodes)
    _, _, traj = rollout(learner.env, level, params.policy, env_state, obs, k_roll, max_steps)
    # Count rewards up to and including each worker's first `done`.
    ended_before = jnp.cumsum(traj.done.astype(jnp.int32), axis=0) - traj.done.astype(jnp.int32)
    return jnp.sum(jnp.where(ended_before == 0, traj.reward, 0.0), axis=0)
