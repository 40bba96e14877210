"""Meta-gradient training of an update rule (LPG's original algorithm, with lpgx's fixes).

Per meta-step and agent: K agent updates by the rule, differentiable in η; one more rollout
with the updated policy scored by an A2C-style loss whose advantages come from a value critic
that is trained on the same experience (the GROOVE reference discards the critic's update);
plus the regularisers −β₀H(π) − β₁H(y) + β₂·mean(π̂²) + β₃·mean(Σŷ²) averaged over the K
updates. The gradient is averaged over agents (vmapped within a mini-batch, mini-batches
scanned), clipped to a global norm (the reference applies Adam unclipped) and applied with
Adam.
"""

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, PyTree

from .._tree import strided_merge, strided_split
from .._typing import PRNGKeyArray, Scalar
from ..agents import MLPNet, TabularNet, Trajectory, make_net
from ..envs import Task
from ..lifetime import AgentState, Learner, agent_rollout, update_from_rollout
from ..rules import DIFFERENTIATIONS, AbstractUpdateRule, Differentiation, gae, normalise
from ._base import AbstractMetaOptimiser, MetaState

__all__ = ["MetaAgent", "MetaGradient", "MetaGradientConfig"]


@dataclass(frozen=True)
class MetaGradientConfig:
    """Meta-gradient training of a rule: K differentiable agent updates, then an A2C-style
    outer loss on a fresh rollout with a trained value critic, the rule's own regularisers,
    global-norm clipping and Adam."""

    num_agent_updates: int = 5
    """K: differentiable agent updates per meta-step."""
    learning_rate: float = 1e-4
    """Adam learning rate on the rule's parameters."""
    max_grad_norm: float = 0.5
    """Global-norm clip of the meta-gradient."""
    gamma: float = 0.99
    """Discount of the value critic's GAE (outer advantages and critic targets)."""
    gae_lambda: float = 0.95
    """λ of the value critic's GAE."""
    differentiation: Differentiation = "exact"
    """How the meta-gradient goes through the agent updates: exact (the true derivative),
    stop_gradient (the reference: no path through the rule's inputs), lvc (log π as π/sg(π) in
    the agent's loss: a lower-bias Hessian). `lpgx bias lpg` measures them."""

    def __post_init__(self) -> None:
        problems = []
        if self.differentiation not in DIFFERENTIATIONS:
            problems.append(
                f"differentiation must be one of {', '.join(DIFFERENTIATIONS)}, got "
                f"{self.differentiation!r}"
            )
        if self.num_agent_updates < 1:
            problems.append(f"num_agent_updates must be at least 1, got {self.num_agent_updates}")
        if not self.learning_rate > 0 or not self.max_grad_norm > 0:
            problems.append("learning_rate and max_grad_norm must be positive")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.gae_lambda <= 1.0):
            problems.append(f"gamma and gae_lambda must lie in [0, 1]; got {self}")
        if problems:
            raise ValueError("invalid meta-gradient config: " + "; ".join(problems))


class MetaAgent(eqx.Module):
    """An agent as the meta-gradient trains it: the agent and its own value critic."""

    agent: AgentState
    critic: TabularNet | MLPNet
    critic_opt: PyTree


def _adam_update(
    tx: optax.GradientTransformation, grads: PyTree, opt_state: PyTree, params: PyTree
) -> tuple[PyTree, PyTree]:
    # optax's Adam bias correction raises an int count to a float power (strict promotion).
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


class MetaGradient(AbstractMetaOptimiser[MetaAgent]):
    """Meta-gradient descent on η through ``K`` unrolled agent updates.

    **Arguments:** ``learner`` — how agents are built and trained; ``config`` — the meta
    hyperparameters; ``num_mini_batches`` — agents are processed in this many sequential
    vmapped groups (memory), which must divide the number of agents.
    """

    learner: Learner
    config: MetaGradientConfig = eqx.field(static=True)
    num_mini_batches: int = eqx.field(static=True, default=1)
    trains_critics: ClassVar[bool] = True

    def __check_init__(self) -> None:
        if self.num_mini_batches < 1:
            raise ValueError(f"num_mini_batches must be at least 1, got {self.num_mini_batches}")

    def mini_batch_count(self) -> int:
        return self.num_mini_batches

    def env_steps_per_step(self, num_agents: int) -> int:
        cfg = self.learner.config
        return num_agents * (self.config.num_agent_updates + 1) * cfg.num_workers * cfg.rollout_len

    def agent_states(self, agents: MetaAgent) -> AgentState:
        return agents.agent

    def critics(self, agents: MetaAgent) -> TabularNet | MLPNet:
        return agents.critic

    def _optimiser(self) -> optax.GradientTransformation:
        return optax.chain(
            optax.clip_by_global_norm(self.config.max_grad_norm),
            optax.adam(self.config.learning_rate),
        )

    def _critic_optimiser(self) -> optax.GradientTransformation:
        cfg = self.learner.config
        assert cfg.aux_lr is not None  # the Learner resolved it
        if cfg.optimiser == "sgd":
            return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.sgd(cfg.aux_lr))
        return optax.adam(cfg.aux_lr)

    def init(self, rule: AbstractUpdateRule, key: PRNGKeyArray) -> MetaState:
        del key
        params = eqx.filter(rule, eqx.is_inexact_array)
        return MetaState(
            rule=rule,
            opt_state=self._optimiser().init(cast(optax.Params, params)),
            step=jnp.zeros((), jnp.int32),
        )

    def init_agents(self, key: PRNGKeyArray, tasks: Task, rule: AbstractUpdateRule) -> MetaAgent:
        def one(k: PRNGKeyArray, task: Task) -> MetaAgent:
            k_agent, k_critic = jax.random.split(k)
            agent = self.learner.init(k_agent, task, rule)
            critic = make_net(self.learner.obs_size, 1, self.learner.hidden, key=k_critic)
            return MetaAgent(
                agent=agent,
                critic=critic,
                critic_opt=self._critic_optimiser().init(cast(optax.Params, critic)),
            )

        n = tasks.lifetime.shape[0]
        return jax.vmap(one)(jax.random.split(key, n), tasks)

    def ended(self, agents: MetaAgent) -> Bool[Array, " agents"]:
        return agents.agent.step >= agents.agent.task.lifetime

    def tasks(self, agents: MetaAgent) -> Task:
        return agents.agent.task

    def _critic_step(
        self, critic: TabularNet | MLPNet, opt_state: PyTree, traj: Trajectory
    ) -> tuple[TabularNet | MLPNet, PyTree, Scalar]:
        cfg = self.config

        def loss(c: TabularNet | MLPNet) -> Scalar:
            v = jax.vmap(jax.vmap(c))(traj.all_obs())[..., 0]
            _, target = gae(
                traj.reward, jax.lax.stop_gradient(v), traj.done, cfg.gamma, cfg.gae_lambda
            )
            return jnp.mean((v[:-1] - jax.lax.stop_gradient(target)) ** 2)

        value, grads = jax.value_and_grad(loss)(critic)
        critic, opt_state = _adam_update(self._critic_optimiser(), grads, opt_state, critic)
        return critic, opt_state, value

    def agent_meta_loss(
        self, rule: AbstractUpdateRule, agent: MetaAgent, key: PRNGKeyArray
    ) -> tuple[Scalar, tuple[MetaAgent, dict[str, Scalar]]]:
        """One agent's outer loss after K updates by `rule`, and the agent it leaves behind."""
        cfg = self.config
        sg = jax.lax.stop_gradient
        keys = jax.random.split(key, cfg.num_agent_updates + 1)

        def inner(
            carry: tuple[AgentState, Any, Any], k: PRNGKeyArray
        ) -> tuple[tuple[AgentState, Any, Any], dict[str, Scalar]]:
            a, critic, critic_opt = carry
            env_state, obs, traj = agent_rollout(self.learner, a, k)
            a, m = update_from_rollout(
                self.learner, rule, a, traj, env_state, obs, cfg.differentiation
            )
            reg = rule.meta_regulariser(a.params, traj, m)
            critic, critic_opt, value_loss = self._critic_step(critic, critic_opt, sg(traj))
            m = {**m, "regulariser": reg, "value_loss": value_loss}
            return (a, critic, critic_opt), m

        (a, critic, critic_opt), inner_metrics = jax.lax.scan(
            inner, (agent.agent, agent.critic, agent.critic_opt), keys[:-1]
        )
        env_state, obs, traj = agent_rollout(self.learner, a, keys[-1])
        traj = sg(traj)
        value = jax.vmap(jax.vmap(critic))(traj.all_obs())[..., 0]
        adv, _ = gae(traj.reward, value, traj.done, cfg.gamma, cfg.gae_lambda)
        adv = sg(normalise(adv))
        critic, critic_opt, _ = self._critic_step(critic, critic_opt, traj)

        logits = jax.vmap(jax.vmap(a.params.policy))(traj.obs)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), traj.action[..., None], axis=-1)
        pg_loss = -jnp.mean(logp[..., 0] * adv)
        reg = jnp.mean(inner_metrics["regulariser"])
        loss = pg_loss + reg

        a = eqx.tree_at(lambda s: (s.env_state, s.obs), a, (env_state, obs))
        metrics = {f"agent/{k}": jnp.mean(v) for k, v in inner_metrics.items()}
        metrics.update(
            {
                "outer_pg_loss": pg_loss,
                "outer_loss": loss,
                "eval_rollout_reward": jnp.mean(traj.reward),
            }
        )
        return loss, (MetaAgent(agent=a, critic=critic, critic_opt=critic_opt), metrics)

    def meta_gradient(
        self, rule: AbstractUpdateRule, agents: MetaAgent, key: PRNGKeyArray
    ) -> tuple[PyTree, MetaAgent, dict[str, Scalar]]:
        """The mean over agents of ∂(outer loss)/∂η, the agents after their K updates, and
        the metrics averaged over agents."""
        num_agents = agents.agent.step.shape[0]
        m = self.num_mini_batches
        if num_agents % m:
            raise ValueError(
                f"num_agents={num_agents} is not divisible by num_mini_batches={m}; choose a "
                "number of mini-batches that divides the number of agents."
            )
        params, static = eqx.partition(rule, eqx.is_inexact_array)

        def batch_loss(
            p: PyTree, batch: MetaAgent, keys: Array
        ) -> tuple[Scalar, tuple[MetaAgent, dict[str, Array]]]:
            r = eqx.combine(p, static)
            losses, (new, metrics) = jax.vmap(self.agent_meta_loss, in_axes=(None, 0, 0))(
                r, batch, keys
            )
            return jnp.sum(losses), (new, metrics)

        def mini_batch(
            acc: PyTree, inp: tuple[MetaAgent, Array]
        ) -> tuple[PyTree, tuple[MetaAgent, dict[str, Array]]]:
            (_, out), grads = eqx.filter_value_and_grad(batch_loss, has_aux=True)(params, *inp)
            return jax.tree.map(jnp.add, acc, grads), out

        zeros = jax.tree.map(jnp.zeros_like, params)
        grads, (new_agents, metrics) = jax.lax.scan(
            mini_batch,
            zeros,
            # Mini-batch j holds agents j, j + m, j + 2m, … (strided: when the agent axis is
            # sharded in contiguous blocks every mini-batch spans every device).
            strided_split((agents, jax.random.split(key, num_agents)), m),
        )
        grads = jax.tree.map(lambda g: g / num_agents, grads)
        new_agents = strided_merge(new_agents)
        return grads, new_agents, {k: jnp.mean(v) for k, v in metrics.items()}

    def step(
        self, state: MetaState, agents: MetaAgent, key: PRNGKeyArray
    ) -> tuple[MetaState, MetaAgent, dict[str, Scalar]]:
        grads, agents, metrics = self.meta_gradient(state.rule, agents, key)
        params, static = eqx.partition(state.rule, eqx.is_inexact_array)
        new_params, opt_state = _adam_update(self._optimiser(), grads, state.opt_state, params)
        metrics = {**metrics, "meta_grad_norm": optax.tree.norm(grads)}
        state = MetaState(
            rule=eqx.combine(new_params, static), opt_state=opt_state, step=state.step + 1
        )
        return state, agents, metrics
