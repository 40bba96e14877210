"""`LevelBuffer`: a fixed-size, jit-friendly store of tasks with PLR's bookkeeping.

The buffer is a pytree of arrays of one fixed size; every operation is a pure function that
returns a new buffer (``.at[].set`` scatters, masked by a validity flag so a fixed number of
candidate writes can be issued under `jit`). Slot ``i`` holds a task and its record:

- ``filled`` — the slot holds a level at all (an empty buffer has none);
- ``seen`` — the level has been scored at least once: only seen levels may be replayed;
- ``active`` — the level is assigned to a live agent: an active slot is never overwritten;
- ``score`` — the latest score; ``last_sampled`` — the buffer clock when the level was last
  handed to an agent, so ``staleness = clock - last_sampled`` grows by one per step;
- ``cache`` — whatever the level's score keeps across replays (one pytree per slot: GROOVE's
  antagonist return, computed once per level since it depends on the level and its lifetime
  only; MaxMC's best return; nothing).

`replay_distribution` and `sample_replay` implement Jiang et al. (2021)'s prioritised replay:
``P = (1 - ρ) P_S + ρ P_C`` over replayable levels, with the score prioritisation ``P_S`` from
the ``rank`` transform ``h = 1 / rank^(1/β)`` (or GROOVE's ``proportional`` softmax), and the
staleness prioritisation ``P_C ∝ staleness``. GROOVE's greedy ``topk`` takes the best scores.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._typing import PRNGKeyArray
from ..envs import Task

__all__ = [
    "TRANSFORMS",
    "LevelBuffer",
    "Transform",
    "eviction_slots",
    "replay_distribution",
    "sample_replay",
]

Transform = Literal["rank", "proportional", "topk"]
TRANSFORMS: tuple[str, ...] = ("rank", "proportional", "topk")

# Log-probability floor for replayable levels whose probability underflows: they still rank
# above non-replayable slots (-inf) when the Gumbel-top-k trick sorts them.
_LOG_FLOOR = -1e30


def _repeat(tree: PyTree, n: int) -> PyTree:
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n, *jnp.shape(x))), tree)


def _index(valid: Bool[Array, " n"], slots: Int[Array, " n"], size: int) -> Int[Array, " n"]:
    # Invalid writes are sent out of bounds and dropped by ``mode="drop"``.
    return jnp.where(valid, slots, size)


class LevelBuffer(eqx.Module):
    """A fixed-size store of tasks and their PLR records (see the module docstring).

    ``tasks`` is a `Task` stacked along a leading ``size`` axis, ``cache`` the score's
    per-level cache stacked the same way; ``clock`` counts the steps (calls of `tick`) so far.
    Build one with `LevelBuffer.empty`.
    """

    tasks: Task
    score: Float[Array, " size"]
    last_sampled: Int[Array, " size"]
    filled: Bool[Array, " size"]
    seen: Bool[Array, " size"]
    active: Bool[Array, " size"]
    cache: PyTree
    clock: Int[Array, ""]

    @staticmethod
    def empty(example: Task, size: int, cache: PyTree = None) -> "LevelBuffer":
        """An empty buffer of `size` slots for tasks shaped like `example` (one task), each
        slot starting with the level cache `cache` (one level's; ``None`` for none)."""
        if size < 1:
            raise ValueError(f"the level buffer needs at least one slot, got size={size}")
        tasks = jax.tree.map(lambda x: jnp.zeros((size, *x.shape), x.dtype), example)
        return LevelBuffer(
            tasks=tasks,
            score=jnp.zeros(size, jnp.float32),
            last_sampled=jnp.zeros(size, jnp.int32),
            filled=jnp.zeros(size, bool),
            seen=jnp.zeros(size, bool),
            active=jnp.zeros(size, bool),
            cache=_repeat(cache, size),
            clock=jnp.zeros((), jnp.int32),
        )

    @property
    def size(self) -> int:
        return self.score.shape[0]

    def staleness(self) -> Int[Array, " size"]:
        """Steps since each slot's level was last handed to an agent."""
        return self.clock - self.last_sampled

    def replayable(self) -> Bool[Array, " size"]:
        """Levels that may be replayed: scored at least once and not assigned to an agent."""
        return self.filled & self.seen & ~self.active

    def gather(self, slots: Int[Array, " n"]) -> Task:
        """The tasks in `slots` (stacked)."""
        return jax.tree.map(lambda x: x[slots], self.tasks)

    def tick(self) -> "LevelBuffer":
        """Advance the clock by one step (every level's staleness grows by one)."""
        return eqx.tree_at(lambda b: b.clock, self, self.clock + 1)

    def caches(self, slots: Int[Array, " n"]) -> PyTree:
        """The level caches in `slots` (stacked)."""
        return jax.tree.map(lambda x: x[slots], self.cache)

    def record(
        self,
        slots: Int[Array, " n"],
        valid: Bool[Array, " n"],
        score: Float[Array, " n"],
        cache: PyTree = None,
    ) -> "LevelBuffer":
        """Write the scores (and the score's new level caches, stacked) of the levels in
        `slots` whose agents ended (`valid`): they become seen (replayable) and inactive. A
        non-finite score is recorded as 0."""
        idx = _index(valid, slots, self.size)
        score = jnp.nan_to_num(score, nan=0.0, posinf=0.0, neginf=0.0)

        def put(x: Array, v: Array) -> Array:
            return x.at[idx].set(v, mode="drop")

        return eqx.tree_at(
            lambda b: (b.score, b.seen, b.active, b.cache),
            self,
            (
                put(self.score, score),
                put(self.seen, jnp.ones_like(valid)),
                put(self.active, jnp.zeros_like(valid)),
                jax.tree.map(put, self.cache, cache),
            ),
            is_leaf=lambda x: x is None,
        )

    def mark_sampled(self, slots: Int[Array, " n"], valid: Bool[Array, " n"]) -> "LevelBuffer":
        """The levels in `slots` (where `valid`) are handed to agents now: active, staleness 0."""
        idx = _index(valid, slots, self.size)
        return eqx.tree_at(
            lambda b: (b.active, b.last_sampled),
            self,
            (
                self.active.at[idx].set(True, mode="drop"),
                self.last_sampled.at[idx].set(self.clock, mode="drop"),
            ),
        )

    def insert(
        self, slots: Int[Array, " n"], valid: Bool[Array, " n"], tasks: Task, cache: PyTree = None
    ) -> "LevelBuffer":
        """Put fresh (unscored) `tasks` into `slots` where `valid`, with the initial level
        cache `cache` (one level's); they are handed to agents now (active). The caller
        chooses inactive slots (`eviction_slots`)."""
        idx = _index(valid, slots, self.size)
        n = valid.shape[0]

        def put(x: Array, v: Array) -> Array:
            return x.at[idx].set(v, mode="drop")

        new_tasks = jax.tree.map(put, self.tasks, tasks)
        return eqx.tree_at(
            lambda b: (
                b.tasks,
                b.score,
                b.last_sampled,
                b.filled,
                b.seen,
                b.active,
                b.cache,
            ),
            self,
            (
                new_tasks,
                put(self.score, jnp.zeros(n, jnp.float32)),
                put(self.last_sampled, jnp.broadcast_to(self.clock, (n,))),
                put(self.filled, jnp.ones(n, bool)),
                put(self.seen, jnp.zeros(n, bool)),
                put(self.active, jnp.ones(n, bool)),
                jax.tree.map(put, self.cache, _repeat(cache, n)),
            ),
            is_leaf=lambda x: x is None,
        )


def replay_distribution(
    buffer: LevelBuffer,
    transform: Transform = "rank",
    temperature: float = 1.0,
    staleness_coeff: float = 0.3,
) -> Float[Array, " size"]:
    """The probability of replaying each slot in one draw (0 on non-replayable slots; all 0
    when nothing is replayable).

    ``rank``: ``P_S ∝ 1 / rank^(1/β)`` with rank 1 the highest score among replayable levels;
    ``proportional``: ``P_S ∝ exp(score / β)`` (GROOVE's ``proportional``; regrets may be
    negative, so a power of the score would be undefined). Both are mixed with the staleness
    prioritisation, ``P = (1 - ρ) P_S + ρ P_C`` with ``P_C ∝ staleness`` (uniform over
    replayable levels while every staleness is 0). ``topk`` is GROOVE's greedy choice: all mass
    on the best score (ties to the lowest slot), with no staleness term.
    """
    return jnp.exp(_replay_log_probs(buffer, transform, temperature, staleness_coeff))


def _replay_log_probs(
    buffer: LevelBuffer, transform: Transform, temperature: float, staleness_coeff: float
) -> Float[Array, " size"]:
    ok = buffer.replayable()
    any_ok = jnp.any(ok)
    if transform == "topk":
        best = jnp.argmax(jnp.where(ok, buffer.score, -jnp.inf))
        onehot = (jnp.arange(buffer.size) == best) & any_ok
        return jnp.where(onehot, 0.0, -jnp.inf)
    if transform == "rank":
        # Rank 1 is the highest score; non-replayable slots sort last and are masked below.
        order = jnp.argsort(jnp.where(ok, -buffer.score, jnp.inf), stable=True)
        rank = jnp.zeros(buffer.size, jnp.int32).at[order].set(1 + jnp.arange(buffer.size))
        log_h = -jnp.log(rank.astype(jnp.float32)) / temperature
    elif transform == "proportional":
        log_h = buffer.score / temperature
    else:
        raise ValueError(f"unknown score transform {transform!r}; choose one of {TRANSFORMS}")
    log_h = jnp.where(ok, log_h, -jnp.inf)
    log_ps = log_h - jax.nn.logsumexp(jnp.where(any_ok, log_h, 0.0))
    if staleness_coeff == 0.0:
        return jnp.where(ok, log_ps, -jnp.inf)
    stale = jnp.where(ok, buffer.staleness(), 0).astype(jnp.float32)
    total = jnp.sum(stale)
    uniform = ok.astype(jnp.float32) / jnp.maximum(jnp.sum(ok.astype(jnp.float32)), 1.0)
    p_c = jnp.where(total > 0, stale / jnp.maximum(total, 1.0), uniform)
    p = (1.0 - staleness_coeff) * jnp.exp(log_ps) + staleness_coeff * p_c
    return jnp.where(ok, jnp.log(p), -jnp.inf)


def sample_replay(
    buffer: LevelBuffer,
    key: PRNGKeyArray,
    num: int,
    transform: Transform = "rank",
    temperature: float = 1.0,
    staleness_coeff: float = 0.3,
) -> Int[Array, " num"]:
    """`num` distinct slots drawn without replacement from `replay_distribution` (the
    Gumbel-top-k trick: exactly sequential draws renormalised after each), or the `num` best
    scores for ``topk``. Replayable slots always come before the others, so the first
    ``min(num, #replayable)`` entries are replayable."""
    ok = buffer.replayable()
    if transform == "topk":
        keys = jnp.where(ok, buffer.score, -jnp.inf)
    else:
        log_p = _replay_log_probs(buffer, transform, temperature, staleness_coeff)
        gumbel = jax.random.gumbel(key, (buffer.size,))
        keys = jnp.where(ok, jnp.maximum(log_p, _LOG_FLOOR) + gumbel, -jnp.inf)
    return jax.lax.top_k(keys, num)[1].astype(jnp.int32)


def eviction_slots(buffer: LevelBuffer, num: int) -> Int[Array, " num"]:
    """`num` slots a fresh level may overwrite, best first: empty slots, then the lowest
    scores among inactive levels. Active slots come last (never used while the buffer has at
    least ``num`` inactive slots, which `PLR` guarantees by requiring
    ``buffer_size >= num_agents``)."""
    keep = jnp.where(buffer.filled, buffer.score, -jnp.inf)
    keep = jnp.where(buffer.active, jnp.inf, keep)
    return jax.lax.top_k(-keep, num)[1].astype(jnp.int32)
