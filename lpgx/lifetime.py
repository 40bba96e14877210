"""Agent lifetimes (layer 4): agent state, one gated update, whole lifetimes, evaluation.

A `Learner` holds what is fixed while agents live: the environment and the `AgentConfig`.
Everything here is a pure function of explicit keys, so it jits, vmaps over agents, and is
differentiable in the update rule's arrays (the meta-gradient unrolls `agent_update`).
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, Key, PyTree

from ._tree import tree_select
from ._typing import PRNGKeyArray, Scalar
from .agents import Agent, Trajectory, first_episode_returns, reset_workers, rollout
from .envs import AbstractEnvironment, AbstractTaskDistribution, ObsSpec, Task
from .rules import DIFFERENTIATIONS, AbstractUpdateRule, Differentiation, LifetimeContext

__all__ = [
    "DIFFERENTIATIONS",
    "AgentConfig",
    "AgentState",
    "Differentiation",
    "Learner",
    "agent_rollout",
    "agent_update",
    "evaluate_return",
    "train_lifetime",
    "train_until_ended",
    "update_from_rollout",
]


Optimiser = Literal["sgd", "adam"]


@dataclass(frozen=True)
class AgentConfig:
    """How an agent is built, how it acts and how it is optimised.

    ``None`` settings take the reference's defaults for the environment's observations
    (`resolve`): an index observation gets the tabular agent (``hidden=()``, a table lookup)
    trained by SGD with learning rates 40 (policy) / 4 (auxiliary head); a vector observation
    an MLP with one hidden layer of 32 trained by Adam 1e-3. ``aux_lr`` is the learning rate of
    the agent's second head (LPG's prediction vector, A2C's critic). "sgd" clips each head's
    gradient to ``max_grad_norm`` separately; "adam" ignores it (as the reference does).
    """

    num_workers: int = 64
    """Parallel environments per agent."""
    rollout_len: int = 20
    """Steps per rollout (one agent update per rollout)."""
    hidden: tuple[int, ...] | None = None
    """Hidden widths of the agent's networks; () is the tabular agent (default: by observation)."""
    optimiser: Optimiser | None = None
    """The agent's optimiser, sgd or adam (default: sgd for the tabular agent, else adam)."""
    policy_lr: float | None = None
    """Learning rate of the policy head (default: 40 with sgd, 1e-3 with adam)."""
    aux_lr: float | None = None
    """Learning rate of the auxiliary head (default: 4 with sgd, 1e-3 with adam)."""
    max_grad_norm: float = 0.5
    """Per-head global-norm clip of the sgd agent's gradients."""

    def __post_init__(self) -> None:
        problems = []
        if self.num_workers < 1 or self.rollout_len < 1:
            problems.append(
                f"num_workers and rollout_len must be positive, got {self.num_workers} and "
                f"{self.rollout_len}"
            )
        if self.optimiser not in (None, "sgd", "adam"):
            problems.append(f"optimiser must be 'sgd' or 'adam', got {self.optimiser!r}")
        if self.hidden is not None and any(h < 1 for h in self.hidden):
            problems.append(f"hidden widths must be positive, got {self.hidden}")
        for name in ("policy_lr", "aux_lr", "max_grad_norm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                problems.append(f"{name} must be positive, got {value}")
        if problems:
            raise ValueError("invalid agent config: " + "; ".join(problems))

    def resolve(self, obs: ObsSpec) -> "AgentConfig":
        """This config with every ``None`` replaced by the reference's default for `obs`."""
        hidden = self.hidden if self.hidden is not None else (() if obs.is_index else (32,))
        optimiser = self.optimiser or ("adam" if hidden else "sgd")
        sgd = optimiser == "sgd"
        return dataclasses.replace(
            self,
            hidden=hidden,
            optimiser=optimiser,
            policy_lr=self.policy_lr if self.policy_lr is not None else (40.0 if sgd else 1e-3),
            aux_lr=self.aux_lr if self.aux_lr is not None else (4.0 if sgd else 1e-3),
        )


class AgentState(eqx.Module):
    """One agent during its lifetime: parameters, optimiser state, its workers' env states,
    its task and the number of updates made so far."""

    params: Agent
    opt_state: PyTree
    env_state: PyTree
    obs: Array
    task: Task
    step: Int[Array, ""]


def _head_optimiser(config: AgentConfig, lr: float | None) -> optax.GradientTransformation:
    assert lr is not None, "resolve the AgentConfig first (Learner does)"
    if config.optimiser == "sgd":
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.scale(-lr))
    # The reference ignores max_grad_norm for Adam; lpgx keeps that behaviour. A meta-gradient
    # differentiates through this update: eps_root keeps d√v/dv finite where a parameter's
    # gradient is exactly zero (e.g. an MLP weight of an input that is always 0), which would
    # otherwise turn the whole meta-gradient into NaN (optax's advice for meta-learning).
    return optax.chain(optax.scale_by_adam(eps_root=1e-8), optax.scale(-lr))


class Learner(eqx.Module):
    """How agents are built and trained in one environment.

    **Arguments:** ``env`` — any `AbstractEnvironment`; ``config`` — an `AgentConfig`, whose
    ``None`` settings are resolved from ``env.obs_spec`` (the network follows the observation).
    """

    env: AbstractEnvironment
    config: AgentConfig = eqx.field(static=True)

    def __init__(self, env: AbstractEnvironment, config: AgentConfig | None = None):
        self.env = env
        self.config = (AgentConfig() if config is None else config).resolve(env.obs_spec)

    @staticmethod
    def for_tasks(tasks: AbstractTaskDistribution, **overrides: object) -> "Learner":
        """The reference's agent for `tasks`' environment, with `AgentConfig` `overrides`."""
        return Learner(tasks.env(), AgentConfig(**overrides))  # pyright: ignore[reportArgumentType]

    @property
    def obs_size(self) -> int:
        """Input width of the agent's networks (table rows or vector length)."""
        return self.env.obs_spec.size

    @property
    def hidden(self) -> tuple[int, ...]:
        """The resolved hidden widths (``()``: the tabular agent)."""
        return self.config.hidden or ()

    def _optimisers(self) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
        return (
            _head_optimiser(self.config, self.config.policy_lr),
            _head_optimiser(self.config, self.config.aux_lr),
        )

    def init_params(self, key: PRNGKeyArray, aux_size: int, level: Any = None) -> Agent:
        """Fresh agent parameters; given the `level` the agent will live on, initialised by
        the environment's padding-independent `InputLayout` where it has one."""
        layout = None if level is None else self.env.input_layout(level)
        return Agent.create(
            self.obs_size, self.env.num_actions, aux_size, self.hidden, key=key, layout=layout
        )

    def init(self, key: PRNGKeyArray, task: Task, rule: AbstractUpdateRule) -> AgentState:
        """A fresh agent on `task`: new parameters, optimiser state and reset workers."""
        self.env.check_level(task.level)
        k_params, k_env = jax.random.split(key)
        params = self.init_params(k_params, rule.aux_size, task.level)
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
) -> tuple[PyTree, Array, Trajectory]:
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
    env_state: PyTree,
    obs: Array,
    differentiation: Differentiation = "exact",
) -> tuple[AgentState, dict[str, Scalar]]:
    """One optimiser step on `traj`, gated by the agent's lifetime; the workers move on to
    ``(env_state, obs)`` either way.

    ``differentiation`` says how a meta-gradient sees this update (`AgentState` is unchanged
    in value): ``"exact"``, the true derivative; ``"stop_gradient"``, the reference's, which
    cuts the path through the rule's inputs (the current policy, y); ``"lvc"``, the rule's
    log π(a|s) written as π / stop_gradient(π) (a lower-bias Hessian).
    """
    params = agent.params
    ctx = LifetimeContext(
        step=agent.step,
        lifetime=agent.task.lifetime,
        agent=jax.lax.stop_gradient(params) if differentiation == "stop_gradient" else params,
        log_prob="lvc" if differentiation == "lvc" else "log",
    )
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


_Carry = tuple[Int[Array, ""], "AgentState", dict[str, Array]]


def train_until_ended(
    learner: Learner,
    rules: AbstractUpdateRule,
    agents: AgentState,
    keys: Key[Array, " agents"],
    num_updates: int,
    stacked_rules: bool = False,
) -> tuple[AgentState, dict[str, Float[Array, "agents updates"]]]:
    """`train_lifetime` for a batch of agents (leading axis, one key each) in a
    `lax.while_loop` that stops once every agent's lifetime has ended, instead of a scan of
    `num_updates` updates whose late ones are all masked. With ``stacked_rules``, the inexact
    arrays of `rules` have the agents' axis too (agent ``i`` learns with rule ``i``: ES
    candidates); otherwise every agent learns with the one rule.

    Each update is `agent_update` vmapped over the batch, as `train_lifetime` vmapped would
    make it, so parameters, optimiser states, steps and the history of updates are those of
    `train_lifetime` bit for bit up to where the loop stops (the history is zero after it,
    where ``active`` is 0 in both); the workers' states (``env_state``, ``obs``) stop there too
    instead of stepping on to `num_updates`. With lifetimes drawn log-uniformly in [10, 250]
    (`all_vrandlife`), the longest of four ES pairs averages ~150 updates instead of 250.
    """
    update_keys = jax.vmap(lambda k: jax.random.split(jax.random.split(k)[1], num_updates))(keys)
    params, static = eqx.partition(rules, eqx.is_inexact_array)

    def update(
        agents: AgentState, ks: Key[Array, " agents"]
    ) -> tuple[AgentState, dict[str, Array]]:
        if not stacked_rules:
            return jax.vmap(lambda a, k: agent_update(learner, rules, a, k))(agents, ks)

        def one(p: PyTree, a: AgentState, k: PRNGKeyArray) -> tuple[AgentState, dict[str, Array]]:
            return agent_update(learner, eqx.combine(p, static), a, k)

        return jax.vmap(one)(params, agents, ks)

    shapes = jax.eval_shape(update, agents, update_keys[:, 0])[1]
    history = jax.tree.map(lambda s: jnp.zeros((s.shape[0], num_updates), s.dtype), shapes)

    def running(carry: _Carry) -> Array:
        i, agents, _ = carry
        return (i < num_updates) & jnp.any(agents.step < agents.task.lifetime)

    def body(carry: _Carry) -> _Carry:
        i, agents, history = carry
        agents, metrics = update(agents, update_keys[:, i])
        history = jax.tree.map(lambda h, m: h.at[:, i].set(m), history, metrics)
        return i + 1, agents, history

    first = (jnp.zeros((), jnp.int32), agents, history)
    _, agents, history = jax.lax.while_loop(running, body, first)
    return agents, history


def evaluate_return(
    learner: Learner,
    params: Agent,
    level: PyTree,
    key: PRNGKeyArray,
    episodes: int,
    max_steps: int,
) -> Float[Array, " episodes"]:
    """Undiscounted return of the first episode of each of `episodes` fresh workers.

    Actions are sampled from the policy. `max_steps` must be at least the level's episode
    length (use the level set's ``eval_steps``) so every first episode ends; the loop stops
    when the last of them has (`first_episode_returns`).
    """
    k_reset, k_roll = jax.random.split(key)
    env_state, obs = reset_workers(learner.env, level, k_reset, episodes)
    return first_episode_returns(
        learner.env, level, params.policy, env_state, obs, k_roll, max_steps
    )
