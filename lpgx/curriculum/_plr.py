"""Prioritised level replay (Jiang et al. 2021) with GROOVE's scores, and the frozen set.

`PLR` keeps a `LevelBuffer`. When an agent's lifetime ends its level is scored (`PLR.score`)
and becomes replayable; the agent then replays a buffer level with probability ``p_replay``
(drawn from `replay_distribution`, without replacement across the agents that replay in the
same step) or gets a fresh level, which enters the buffer at once (unscored, active) in the
slot of an empty or lowest-scoring inactive level. Hence a level is never replayed before it
has been scored, and a level assigned to a live agent is never overwritten.

`Frozen` (GROOVE's ``frozen``) samples uniformly from a fixed set of pre-sampled levels.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, UInt32

from .._tree import map_where, tree_select
from .._typing import PRNGKeyArray, Scalar
from ..agents import MLPNet, TabularNet
from ..envs import AbstractTaskDistribution, Task
from ..lifetime import AgentState, Learner
from ._base import AbstractCurriculum, LevelScores, select_tasks
from ._buffer import (
    TRANSFORMS,
    LevelBuffer,
    Transform,
    eviction_slots,
    sample_replay,
)
from ._scores import AbstractScore

__all__ = ["PLR", "Frozen", "FrozenState", "PLRState"]

# PLR's own randomness comes from this fold of the step key, so that its fresh levels use the
# step key exactly as `DomainRandomisation` does (p_replay = 0 gives identical tasks).
_PLR_STREAM = 0x504C52


class PLRState(eqx.Module):
    """The buffer, each agent's slot in it, whether each agent's current task is a replay,
    and, for logging, how many agents replayed / got fresh levels at the last step and the
    mean score of the agents that ended then (0 if none)."""

    buffer: LevelBuffer
    slot: Int[Array, " agents"]
    replayed: Bool[Array, " agents"]
    num_replayed: Int[Array, ""]
    num_fresh: Int[Array, ""]
    ended_score: Float[Array, ""]


class PLR(AbstractCurriculum):
    """Prioritised level replay over a `LevelBuffer`, scored by `scorer`.

    **Arguments:**

    - ``levels``: where fresh levels come from.
    - ``scorer``: an `AbstractScore` (see `make_score`).
    - ``buffer_size``: slots in the buffer (4000); at least the number of agents.
    - ``p_replay``: probability that an ended agent replays a scored level (0.5).
    - ``transform``: ``rank`` (h = 1/rank^(1/β)), ``proportional`` (softmax of score/β) or
      GROOVE's greedy ``topk``.
    - ``temperature``: β.
    - ``staleness_coeff``: ρ, the weight of the staleness distribution (0.3; unused by
      ``topk``).
    - ``score_batch``: agents scored (and antagonists trained) together in one vmapped chunk;
      ``None`` picks ``max(1, num_agents // 64)`` (1 suits a CPU, more an accelerator).
    """

    levels: AbstractTaskDistribution = eqx.field(static=True)
    scorer: AbstractScore
    buffer_size: int = eqx.field(static=True, default=4000)
    p_replay: float = eqx.field(static=True, default=0.5)
    transform: Transform = eqx.field(static=True, default="rank")
    temperature: float = eqx.field(static=True, default=1.0)
    staleness_coeff: float = eqx.field(static=True, default=0.3)
    score_batch: int | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        problems = []
        if self.buffer_size < 1:
            problems.append(f"--buffer-size must be at least 1, got {self.buffer_size}")
        if not 0.0 <= self.p_replay <= 1.0:
            problems.append(f"--p-replay must be in [0, 1], got {self.p_replay}")
        if self.transform not in TRANSFORMS:
            problems.append(
                f"--score-transform must be one of {', '.join(TRANSFORMS)}, got {self.transform!r}"
            )
        if not self.temperature > 0.0:
            problems.append(f"--score-temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.staleness_coeff <= 1.0:
            problems.append(f"--staleness-coeff must be in [0, 1], got {self.staleness_coeff}")
        if self.score_batch is not None and self.score_batch < 1:
            problems.append(f"score_batch must be at least 1, got {self.score_batch}")
        if problems:
            raise ValueError("invalid PLR curriculum: " + "; ".join(problems))

    @property
    def score_name(self) -> str:
        return self.scorer.name

    @property
    def needs_score(self) -> bool:
        return True

    @property
    def needs_critic(self) -> bool:
        return self.scorer.needs_critic

    def check(self, num_agents: int, has_critic: bool = True) -> None:
        super().check(num_agents, has_critic)
        if self.buffer_size < num_agents:
            raise ValueError(
                f"--buffer-size {self.buffer_size} is smaller than --num-agents {num_agents}: "
                "every live agent holds a buffer slot; use a buffer at least that large."
            )

    def init(self, key: PRNGKeyArray, num_agents: int) -> tuple[PLRState, Task]:
        self.check(num_agents)
        tasks = jax.vmap(self.levels.sample)(jax.random.split(key, num_agents))
        example = jax.tree.map(lambda x: x[0], tasks)
        slot = jnp.arange(num_agents, dtype=jnp.int32)
        cache = self.scorer.init_cache()
        buffer = LevelBuffer.empty(example, self.buffer_size, cache).insert(
            slot, jnp.ones(num_agents, bool), tasks, cache
        )
        state = PLRState(
            buffer=buffer,
            slot=slot,
            replayed=jnp.zeros(num_agents, bool),
            num_replayed=jnp.zeros((), jnp.int32),
            num_fresh=jnp.asarray(num_agents, jnp.int32),
            ended_score=jnp.zeros((), jnp.float32),
        )
        return state, tasks

    def _batch(self, num_agents: int) -> int:
        return self.score_batch if self.score_batch is not None else max(1, num_agents // 64)

    def score(
        self,
        state: PLRState,
        key: PRNGKeyArray,
        learner: Learner,
        agents: AgentState,
        critics: TabularNet | MLPNet | None,
        ended: Bool[Array, " agents"],
    ) -> LevelScores:
        """Score the ended agents' levels with `scorer`. First the score refreshes the
        caches of the ended agents' levels that need it (``alg_regret`` trains the antagonist
        of a level the first time it is scored), then it scores them. Agents that did not end
        cost nothing."""
        if self.scorer.needs_critic and critics is None:
            self.check(ended.shape[0], has_critic=False)
        n = ended.shape[0]
        batch = self._batch(n)
        buf = state.buffer
        k_refresh, k_score = jax.random.split(key)
        cache = buf.caches(state.slot)
        need = ended & jax.vmap(self.scorer.needs_refresh, axis_size=n)(cache)
        refreshed = map_where(
            lambda task, c, k: self.scorer.refresh(learner, task, c, k),
            need,
            (buf.gather(state.slot), cache, jax.random.split(k_refresh, n)),
            batch,
        )
        cache = tree_select(need, refreshed, cache)
        score, cache = map_where(
            lambda agent, critic, c, k: self.scorer(learner, agent, critic, c, k),
            ended,
            (agents, critics, cache, jax.random.split(k_score, n)),
            batch,
        )
        return LevelScores(score=score, cache=cache)

    def next_tasks(
        self,
        state: PLRState,
        key: PRNGKeyArray,
        tasks: Task,
        ended: Bool[Array, " agents"],
        scores: LevelScores | None = None,
    ) -> tuple[PLRState, Task]:
        """Record the ended agents' scores, then give each ended agent a replayed level (with
        probability ``p_replay``, while scored inactive levels remain) or a fresh one."""
        if scores is None:
            raise ValueError(
                "PLR.next_tasks needs the scores of the ended agents: pass "
                "curriculum.score(...) as `scores`."
            )
        n = ended.shape[0]
        buf = state.buffer.record(state.slot, ended, scores.score, scores.cache).tick()
        # Fresh levels use `key` exactly as domain randomisation does.
        fresh_tasks = jax.vmap(self.levels.sample)(jax.random.split(key, n))
        k_decide, k_replay = jax.random.split(jax.random.fold_in(key, _PLR_STREAM))

        want = ended & (jax.random.uniform(k_decide, (n,)) < self.p_replay)
        available = jnp.sum(buf.replayable(), dtype=jnp.int32)
        r_idx = jnp.cumsum(want, dtype=jnp.int32) - 1
        replay = want & (r_idx < available)
        picks = sample_replay(
            buf, k_replay, n, self.transform, self.temperature, self.staleness_coeff
        )
        replay_slot = picks[jnp.clip(r_idx, 0, n - 1)]
        buf = buf.mark_sampled(replay_slot, replay)

        fresh = ended & ~replay
        f_idx = jnp.cumsum(fresh, dtype=jnp.int32) - 1
        fresh_slot = eviction_slots(buf, n)[jnp.clip(f_idx, 0, n - 1)]
        buf = buf.insert(fresh_slot, fresh, fresh_tasks, self.scorer.init_cache())

        slot = jnp.where(replay, replay_slot, jnp.where(fresh, fresh_slot, state.slot))
        new_tasks = select_tasks(
            replay, buf.gather(replay_slot), select_tasks(fresh, fresh_tasks, tasks)
        )
        new_state = PLRState(
            buffer=buf,
            slot=slot,
            replayed=jnp.where(ended, replay, state.replayed),
            num_replayed=jnp.sum(replay, dtype=jnp.int32),
            num_fresh=jnp.sum(fresh, dtype=jnp.int32),
            ended_score=jnp.sum(jnp.where(ended, scores.score, 0.0))
            / jnp.maximum(jnp.sum(ended, dtype=jnp.int32), 1).astype(jnp.float32),
        )
        return new_state, new_tasks

    def metrics(self, state: PLRState) -> dict[str, Scalar]:
        buf = state.buffer
        seen = buf.filled & buf.seen
        num_seen = jnp.sum(seen, dtype=jnp.int32)
        mean = jnp.sum(jnp.where(seen, buf.score, 0.0)) / jnp.maximum(num_seen, 1).astype(
            jnp.float32
        )
        best = jnp.where(num_seen > 0, jnp.max(jnp.where(seen, buf.score, -jnp.inf)), 0.0)
        return {
            "curriculum/replayed": state.num_replayed.astype(jnp.float32),
            "curriculum/fresh": state.num_fresh.astype(jnp.float32),
            "curriculum/ended_score": state.ended_score,
            "curriculum/buffer_filled": jnp.mean(buf.filled.astype(jnp.float32)),
            "curriculum/buffer_seen": jnp.mean(seen.astype(jnp.float32)),
            "curriculum/score_mean": mean,
            "curriculum/score_max": best,
        }


class FrozenState(eqx.Module):
    """The key that defines the frozen set: level ``i`` is ``sample(fold_in(key, i))``."""

    key: UInt32[Array, " key"]


class Frozen(AbstractCurriculum):
    """Uniform sampling from a fixed set of `buffer_size` pre-sampled levels (GROOVE's
    ``frozen``). The set is defined by a key in the state, so it costs no memory and is the
    same throughout a run (and after resuming it)."""

    levels: AbstractTaskDistribution = eqx.field(static=True)
    buffer_size: int = eqx.field(static=True, default=4000)

    def __check_init__(self) -> None:
        if self.buffer_size < 1:
            raise ValueError(f"--buffer-size must be at least 1, got {self.buffer_size}")

    @property
    def score_name(self) -> str:
        return "frozen"

    def level(self, state: FrozenState, index: Int[Array, ""]) -> Task:
        """Task `index` of the frozen set."""
        key = jax.random.wrap_key_data(state.key)
        return self.levels.sample(jax.random.fold_in(key, index))

    def _draw(self, state: FrozenState, key: PRNGKeyArray, n: int) -> Task:
        index = jax.random.randint(key, (n,), 0, self.buffer_size, dtype=jnp.int32)
        return jax.vmap(self.level, in_axes=(None, 0))(state, index)

    def init(self, key: PRNGKeyArray, num_agents: int) -> tuple[FrozenState, Task]:
        k_set, k_draw = jax.random.split(key)
        state = FrozenState(key=jax.random.key_data(k_set))
        return state, self._draw(state, k_draw, num_agents)

    def next_tasks(
        self,
        state: FrozenState,
        key: PRNGKeyArray,
        tasks: Task,
        ended: Bool[Array, " agents"],
        scores: LevelScores | None = None,
    ) -> tuple[FrozenState, Task]:
        del scores
        return state, select_tasks(ended, self._draw(state, key, ended.shape[0]), tasks)
