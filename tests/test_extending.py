"""lpgx is open for extension: an environment, an update rule and a PLR score, each defined
here alone (nothing under ``lpgx/`` knows them), run through `lpgx.Trainer`.

The README's "Extending lpgx" section shows these same definitions (``tests/test_readme.py``
checks that every block there appears verbatim in this file).
"""

from dataclasses import dataclass
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

import lpgx
from lpgx.curriculum import PLR, AbstractScore
from lpgx.rules import gae

# --- A new environment ------------------------------------------------------------------------


class ChainLevel(eqx.Module):
    goal_reward: Float[Array, ""]
    max_steps: Int[Array, ""]


class ChainState(eqx.Module):
    pos: Int[Array, ""]
    time: Int[Array, ""]


class Chain(lpgx.AbstractEnvironment[ChainLevel, ChainState]):
    """Cells 0 … length−1; step left (0) or right (1); the right end pays the level's reward
    and ends the episode, as does running out of time."""

    length: int = eqx.field(static=True)
    num_actions: ClassVar[int] = 2

    @property
    def obs_spec(self) -> lpgx.ObsSpec:
        return lpgx.ObsSpec.index(self.length)  # the cell: a tabular agent looks it up

    def reset(self, key, level):
        state = ChainState(pos=jnp.zeros((), jnp.int32), time=jnp.zeros((), jnp.int32))
        return state, state.pos

    def step(self, key, level, state, action):
        pos = jnp.clip(state.pos + 2 * action - 1, 0, self.length - 1)
        time = state.time + 1
        at_goal = pos == self.length - 1
        done = at_goal | (time >= level.max_steps)
        reward = jnp.where(at_goal, level.goal_reward, 0.0)
        state = ChainState(pos=jnp.where(done, 0, pos), time=jnp.where(done, 0, time))
        return state, state.pos, reward, done


@dataclass(frozen=True)
class ChainTasks(lpgx.AbstractTaskDistribution[ChainLevel]):
    name: str = "chain"
    length: int = 5
    lifetime: int = 4

    @property
    def max_lifetime(self) -> int:
        return self.lifetime

    @property
    def eval_steps(self) -> int:
        return 4 * self.length

    def env(self) -> Chain:
        return Chain(self.length)

    def sample(self, key):
        reward = jax.random.uniform(key, (), minval=0.5, maxval=1.0)
        level = ChainLevel(goal_reward=reward, max_steps=jnp.asarray(4 * self.length))
        return lpgx.Task(level=level, lifetime=jnp.asarray(self.lifetime))


# --- A new update rule ------------------------------------------------------------------------


class ScaledA2C(lpgx.AbstractUpdateRule):
    """A2C whose policy-gradient term is scaled by exp(η): η is meta-learned."""

    log_scale: Float[Array, ""]
    aux_size: ClassVar[int] = 1  # the agent's second head is its critic

    def agent_loss(self, agent, traj, ctx):
        obs = traj.all_obs()
        logits, value = jax.vmap(jax.vmap(agent))(obs)
        _, ref_value = jax.vmap(jax.vmap(ctx.agent))(obs)  # constants for the agent
        adv, target = gae(traj.reward, ref_value[..., 0], traj.done, 0.99, 0.95)
        logp = jax.nn.log_softmax(logits[:-1])
        logp = jnp.take_along_axis(logp, traj.action[..., None], axis=-1)[..., 0]
        pg = -jnp.exp(self.log_scale) * jnp.mean(logp * adv)
        value_loss = jnp.mean((value[:-1, :, 0] - target) ** 2)
        return pg + value_loss, {"scale": jnp.exp(self.log_scale)}


def init_scaled_a2c(key):
    return ScaledA2C(log_scale=jnp.zeros(()))


# --- A new PLR score with a cache of its own --------------------------------------------------


class Novelty(AbstractScore):
    """Prefers levels scored less often; the cache counts how often a level was scored."""

    name: ClassVar[str] = "novelty"

    def init_cache(self):
        return jnp.zeros((), jnp.int32)

    def __call__(self, learner, agent, critic, cache, key):
        return 1.0 / (1.0 + cache.astype(jnp.float32)), cache + 1


# --- The tests --------------------------------------------------------------------------------


def _run(trainer: lpgx.Trainer, chunks: int) -> tuple[lpgx.TrainState, list[dict[str, np.ndarray]]]:
    state, history = trainer.init(), []
    run_chunk = eqx.filter_jit(trainer.run_chunk)
    for _ in range(chunks):
        state, metrics = run_chunk(state)
        history.append({k: np.asarray(v) for k, v in metrics.items()})
    return state, history


def _rule_changed(trainer: lpgx.Trainer, state: lpgx.TrainState) -> bool:
    before = eqx.filter(trainer.initial_rule(), eqx.is_inexact_array)
    after = eqx.filter(state.meta.rule, eqx.is_inexact_array)
    return any(
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True)
    )


def _chain_trainer(meta_opt_name: str) -> lpgx.Trainer:
    tasks = ChainTasks()
    learner = lpgx.Learner(tasks.env(), lpgx.AgentConfig(num_workers=4, rollout_len=8))
    if meta_opt_name == "meta_gradient":
        config = lpgx.MetaGradientConfig(num_agent_updates=2, learning_rate=1e-3)
        meta_opt = lpgx.MetaGradient(learner, config)
    else:
        meta_opt = lpgx.EvolutionStrategy.for_tasks(
            learner, tasks, lpgx.ESConfig(num_eval_episodes=4)
        )
    return lpgx.Trainer(
        tasks=tasks,
        init_rule=lpgx.LPGConfig(hidden=8, y_size=4).build,
        meta_opt=meta_opt,
        curriculum=lpgx.DomainRandomisation(tasks),
        num_agents=2,
        train_steps=4,
        chunk_size=2,
    )


def test_a_new_environment_is_meta_trained_by_meta_gradient_and_by_es() -> None:
    for name in ("meta_gradient", "es"):
        trainer = _chain_trainer(name)
        state, history = _run(trainer, chunks=2)
        assert int(state.step) == 4
        for metrics in history:
            assert all(np.isfinite(v).all() for v in metrics.values()), name
        assert _rule_changed(trainer, state), name
        # Lifetimes of 4 updates end within 4 meta-steps (K = 2; ES: every generation).
        assert sum(float(m["ended_lifetimes"].sum()) for m in history) >= 2, name
    # The chain pays only at its right end: a trained agent's return lies in [0, 1].
    tasks = ChainTasks()
    learner = lpgx.Learner(tasks.env(), lpgx.AgentConfig(num_workers=4, rollout_len=8))
    returns = lpgx.evaluate_return(
        learner,
        learner.init(jax.random.key(0), tasks.sample(jax.random.key(1)), lpgx.A2C()).params,
        tasks.sample(jax.random.key(1)).level,
        jax.random.key(2),
        episodes=8,
        max_steps=tasks.eval_steps,
    )
    assert np.all((np.asarray(returns) >= 0.0) & (np.asarray(returns) <= 1.0))


def test_a_new_update_rule_is_meta_trained_through_the_trainer() -> None:
    tasks = lpgx.get_level_set("dense")
    learner = lpgx.Learner(tasks.env(), lpgx.AgentConfig(num_workers=4, rollout_len=8))
    trainer = lpgx.Trainer(
        tasks=tasks,
        init_rule=init_scaled_a2c,
        meta_opt=lpgx.MetaGradient(learner, lpgx.MetaGradientConfig(num_agent_updates=1)),
        curriculum=lpgx.DomainRandomisation(tasks),
        num_agents=2,
        train_steps=2,
        chunk_size=2,
    )
    state, (metrics,) = _run(trainer, chunks=1)
    # The rule's own diagnostic reaches the metrics, and η moved (dense pays often, so the
    # meta-gradient through one A2C update is not zero).
    np.testing.assert_allclose(metrics["agent/scale"][0], 1.0, rtol=1e-6)
    assert float(state.meta.rule.log_scale) != 0.0
    assert np.all(metrics["meta_grad_norm"] > 0.0)


def test_a_new_score_with_its_own_cache_drives_plr() -> None:
    tasks = ChainTasks(lifetime=2)
    learner = lpgx.Learner(tasks.env(), lpgx.AgentConfig(num_workers=2, rollout_len=4))
    meta_opt = lpgx.MetaGradient(learner, lpgx.MetaGradientConfig(num_agent_updates=2))
    # Every lifetime (2 updates) ends at every meta-step, and every ended agent replays a
    # scored level (p_replay = 1): after 3 steps each of the 4 levels was scored 3 times.
    plr = PLR(tasks, Novelty(), buffer_size=16, p_replay=1.0)
    trainer = lpgx.Trainer(
        tasks=tasks,
        init_rule=lpgx.LPGConfig(hidden=8, y_size=4).build,
        meta_opt=meta_opt,
        curriculum=plr,
        num_agents=4,
        train_steps=3,
        chunk_size=3,
        stagger=False,
    )
    state, (metrics,) = _run(trainer, chunks=1)
    buffer = state.curriculum.buffer
    filled = np.asarray(buffer.filled)
    assert filled.sum() == 4
    np.testing.assert_array_equal(np.asarray(buffer.cache)[filled], [3, 3, 3, 3])
    np.testing.assert_allclose(np.asarray(buffer.score)[filled], 1.0 / 3.0)
    np.testing.assert_allclose(metrics["curriculum/ended_score"], [1.0, 0.5, 1.0 / 3.0])
