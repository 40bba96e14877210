"""Curricula: the level buffer's bookkeeping, the replay sampler, the scores and GROOVE's regret.

Shapes are tiny and fixed (a buffer of 8 slots, 4 agents, 6 steps per simulated run) so every
jitted function compiles once; hypothesis draws the data (seeds, which agents end, scores).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lpgx._tree import map_where
from lpgx.agents import make_net
from lpgx.compose import TrainConfig, make_curriculum
from lpgx.curriculum import (
    PLR,
    AlgorithmicRegret,
    AntagonistCache,
    DomainRandomisation,
    Frozen,
    L1ValueLoss,
    LevelBuffer,
    LevelScores,
    MaxMC,
    PositiveValueLoss,
    replay_distribution,
    sample_replay,
    train_antagonist,
)
from lpgx.envs import Level, LevelSet, Task, get_level_set
from lpgx.lifetime import Learner, agent_rollout, train_lifetime
from lpgx.rules import A2C, gae


class CheapLevels(LevelSet):
    """``all_shortlife``'s shapes with a sampler that compiles in no time (the real samplers
    take seconds to compile on a shared CPU): one fixed 5×5 layout whose object rewards,
    episode length and lifetime vary with the key. The curricula only need distinct tasks
    determined by the key."""

    def sample(self, key: jax.Array) -> Task:
        cells, objs, types = self.max_grid_size**2, self.max_objects, self.max_types
        # One draw (random-number code dominates compilation on a CPU).
        u = jax.random.uniform(key, (types + 2,))
        level = Level(
            grid_size=jnp.asarray(5, jnp.int32),
            walls=jnp.zeros(cells, bool),
            start_pos=jnp.asarray(0, jnp.int32),
            n_objs=jnp.asarray(2, jnp.int32),
            obj_types=jnp.arange(objs, dtype=jnp.int32),
            obj_pos=jnp.asarray([6, 18] + [0] * (objs - 2), jnp.int32),
            obj_rewards=2.0 * u[:types] - 1.0,
            obj_p_terminate=jnp.full(types, 0.5, jnp.float32),
            obj_p_respawn=jnp.full(types, 0.05, jnp.float32),
            max_steps=(10 + 20 * u[types]).astype(jnp.int32),
        )
        return Task(level=level, lifetime=(1 + 250 * u[types + 1]).astype(jnp.int32))


REAL = get_level_set("all_shortlife")
LEVELS = CheapLevels("cheap", REAL.families, tabular=True, description="test levels")
N = 4  # agents
SIZE = 8  # buffer slots
STEPS = 6  # next_tasks calls per simulated run

scores_st = hnp.arrays(
    np.float32, (STEPS, N), elements=st.floats(-5, 5, width=32, allow_subnormal=False)
)
ended_st = hnp.arrays(np.bool_, (STEPS, N))


def _plr(transform: str = "rank", p_replay: float = 0.7, staleness: float = 0.3) -> PLR:
    return PLR(
        LEVELS,
        PositiveValueLoss(),
        buffer_size=SIZE,
        p_replay=p_replay,
        transform=transform,  # type: ignore[arg-type]
        staleness_coeff=staleness,
    )


def _given_scores(score: jax.Array) -> LevelScores:
    return LevelScores(score=score)


@eqx.filter_jit
def _simulate(curriculum: object, seed: jax.Array, ended: jax.Array, scores: jax.Array) -> tuple:
    """Init, then STEPS calls of next_tasks; the state and tasks before and after each."""
    key = jax.random.key(seed)
    state, tasks = curriculum.init(jax.random.fold_in(key, 1000), N)  # type: ignore[attr-defined]

    def step(carry: tuple, x: tuple) -> tuple:
        state, tasks = carry
        t, e, s = x
        new = curriculum.next_tasks(  # type: ignore[attr-defined]
            state, jax.random.fold_in(key, t), tasks, e, _given_scores(s)
        )
        return new, (state, tasks, *new)

    _, history = jax.lax.scan(step, (state, tasks), (jnp.arange(STEPS), ended, scores))
    return history


def _host(tree: object) -> object:
    return jax.tree.map(np.asarray, tree)


def _at(tree: object, i: int) -> object:
    return jax.tree.map(lambda x: x[i], tree)


def _tasks_equal(a: object, b: object, i: object = ..., j: object = ...) -> bool:
    return all(
        np.array_equal(np.asarray(x)[i], np.asarray(y)[j])
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _check_step(prev: object, tasks: object, new: object, new_tasks: object, ended, score) -> None:
    p, s = prev.buffer, new.buffer  # type: ignore[attr-defined]
    slot, old_slot = new.slot, prev.slot  # type: ignore[attr-defined]
    replayed = new.replayed & ended  # type: ignore[attr-defined]
    fresh = ended & ~replayed

    # Each agent holds its own active slot, and holds exactly the task stored there.
    assert len(set(slot.tolist())) == N
    assert s.active[slot].all() and s.active.sum() == N
    assert _tasks_equal(s.tasks, new_tasks, slot)
    # Agents that did not end keep their slot and task.
    assert (slot[~ended] == old_slot[~ended]).all()
    assert _tasks_equal(new_tasks, tasks, ~ended, ~ended)
    # An active level is never overwritten: the slots of live agents keep their tasks.
    live = old_slot[~ended]
    assert _tasks_equal(s.tasks, p.tasks, live, live)
    assert not s.seen[live].any() or (s.score[live] == p.score[live]).all()
    # No level is replayed before it has been scored; unscored levels are exactly fresh ones
    # still held by an agent.
    assert s.seen[slot[replayed]].all()
    assert not s.seen[slot[fresh]].any()
    assert (s.active | s.seen | ~s.filled).all()
    assert int(new.num_replayed) == replayed.sum()  # type: ignore[attr-defined]
    # Ended agents' scores are recorded (unless a fresh level has taken the slot since).
    for a in np.flatnonzero(ended):
        if s.seen[old_slot[a]]:
            assert s.score[old_slot[a]] == score[a]
    # Staleness: sampled slots restart at 0, every other filled slot ages by one step.
    sampled = np.zeros(SIZE, bool)
    sampled[slot[ended]] = True
    staleness = s.clock - s.last_sampled
    assert (staleness[sampled] == 0).all()
    kept = p.filled & ~sampled
    assert (staleness[kept] == (p.clock - p.last_sampled)[kept] + 1).all()
    assert s.clock == p.clock + 1


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), ended=ended_st, scores=scores_st)
def test_plr_bookkeeping(seed: int, ended: np.ndarray, scores: np.ndarray) -> None:
    history = _host(_simulate(_plr(), jnp.asarray(seed), jnp.asarray(ended), jnp.asarray(scores)))
    for t in range(STEPS):
        prev, tasks, new, new_tasks = (_at(h, t) for h in history)
        _check_step(prev, tasks, new, new_tasks, ended[t], scores[t])


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31 - 1), ended=ended_st, scores=scores_st)
def test_topk_replays_the_best_scores(seed: int, ended: np.ndarray, scores: np.ndarray) -> None:
    history = _host(
        _simulate(
            _plr("topk", p_replay=1.0), jnp.asarray(seed), jnp.asarray(ended), jnp.asarray(scores)
        )
    )
    for t in range(STEPS):
        prev, tasks, new, new_tasks = (_at(h, t) for h in history)
        _check_step(prev, tasks, new, new_tasks, ended[t], scores[t])
        p = prev.buffer
        # Replayable after this step's scores are recorded: scored before and not held by a
        # live agent, or just scored.
        recorded = p.score.copy()
        recorded[prev.slot[ended[t]]] = scores[t][ended[t]]
        ok = p.filled & p.seen & ~p.active
        ok[prev.slot[ended[t]]] = True
        picked = new.slot[new.replayed & ended[t]]
        assert len(picked) == min(ended[t].sum(), ok.sum())
        best = np.sort(recorded[ok])[::-1][: len(picked)]
        np.testing.assert_array_equal(np.sort(recorded[picked])[::-1], best)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31 - 1), ended=ended_st)
def test_no_replay_is_domain_randomisation(seed: int, ended: np.ndarray) -> None:
    """With p_replay = 0, PLR hands out exactly the tasks domain randomisation does."""
    scores = jnp.zeros((STEPS, N), jnp.float32)
    args = (jnp.asarray(seed), jnp.asarray(ended), scores)
    plr = _host(_simulate(_plr(p_replay=0.0), *args))
    dr = _host(_simulate(DomainRandomisation(LEVELS), *args))
    assert _tasks_equal(plr[1], dr[1]) and _tasks_equal(plr[3], dr[3])
    assert not np.asarray(plr[2].replayed).any()


def _buffer(score, filled, seen, active, last_sampled, clock) -> LevelBuffer:
    empty = LevelBuffer.empty(LEVELS.sample(jax.random.key(0)), SIZE)
    return eqx.tree_at(
        lambda b: (b.score, b.filled, b.seen, b.active, b.last_sampled, b.clock),
        empty,
        (score, filled, seen, active, last_sampled, clock),
    )


@eqx.filter_jit
def _distributions(buffer: LevelBuffer) -> dict[str, jax.Array]:
    return {
        "rank": replay_distribution(buffer, "rank", 0.5, 0.3),
        "rank_no_staleness": replay_distribution(buffer, "rank", 0.5, 0.0),
        "proportional": replay_distribution(buffer, "proportional", 2.0, 0.3),
        "topk": replay_distribution(buffer, "topk"),
    }


@settings(max_examples=40)
@given(
    score=hnp.arrays(np.float32, SIZE, elements=st.floats(-5, 5, width=32)),
    filled=hnp.arrays(np.bool_, SIZE),
    seen=hnp.arrays(np.bool_, SIZE),
    active=hnp.arrays(np.bool_, SIZE),
    age=hnp.arrays(np.int32, SIZE, elements=st.integers(0, 20)),
)
def test_replay_distribution(score, filled, seen, active, age) -> None:
    clock = np.int32(20)
    buffer = _buffer(
        jnp.asarray(score),
        jnp.asarray(filled),
        jnp.asarray(seen),
        jnp.asarray(active),
        jnp.asarray(clock - age),
        jnp.asarray(clock),
    )
    ok = filled & seen & ~active
    for name, p in _distributions(buffer).items():
        p = np.asarray(p)
        assert (p >= 0).all() and (p[~ok] == 0).all(), name
        np.testing.assert_allclose(p.sum(), 1.0 if ok.any() else 0.0, atol=1e-5, err_msg=name)
    if not ok.any():
        return
    # rank: h = 1 / rank^(1/β) over replayable levels, rank 1 the highest score; mixed with
    # the staleness distribution P_C ∝ staleness (coefficient 0.3).
    p = np.asarray(_distributions(buffer)["rank_no_staleness"])
    # XLA's CPU backend flushes subnormal floats to zero: a score of 1e-45 ranks as 0 does.
    score = np.where(np.abs(score) < np.finfo(np.float32).tiny, np.float32(0), score)
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(-score[idx], kind="stable")]
    h = np.zeros(SIZE)
    h[order] = 1.0 / np.arange(1, len(order) + 1) ** (1 / 0.5)
    np.testing.assert_allclose(p, h / h.sum(), rtol=1e-5, atol=1e-7)
    # Higher scores are replayed with higher probability.
    a, b = np.meshgrid(idx, idx)
    assert (p[a][score[a] > score[b]] > p[b][score[a] > score[b]]).all()
    stale = np.where(ok, age, 0).astype(np.float64)
    p_c = stale / stale.sum() if stale.sum() > 0 else ok / ok.sum()
    mixed = np.asarray(_distributions(buffer)["rank"])
    np.testing.assert_allclose(mixed, 0.7 * h / h.sum() + 0.3 * p_c, rtol=1e-5, atol=1e-7)


@eqx.filter_jit
def _first_picks(buffer: LevelBuffer, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    picks = jax.vmap(lambda k: sample_replay(buffer, k, N, "rank", 0.5, 0.3))(
        jax.random.split(key, 4000)
    )
    return picks, replay_distribution(buffer, "rank", 0.5, 0.3)


def test_sampled_replays_follow_the_distribution() -> None:
    """The first of the without-replacement draws is distributed as `replay_distribution`;
    all draws are distinct and the replayable slots come first."""
    rng = np.random.default_rng(0)
    ok = np.array([1, 1, 0, 1, 1, 0, 1, 1], bool)
    buffer = _buffer(
        jnp.asarray(rng.normal(size=SIZE), jnp.float32),
        jnp.ones(SIZE, bool),
        jnp.asarray(ok),
        jnp.asarray(~ok),
        jnp.asarray(rng.integers(0, 10, SIZE), jnp.int32),
        jnp.asarray(10, jnp.int32),
    )
    picks, p = (np.asarray(x) for x in _first_picks(buffer, jax.random.key(0)))
    freq = np.bincount(picks[:, 0], minlength=SIZE) / len(picks)
    se = np.sqrt(p * (1 - p) / len(picks))
    assert (np.abs(freq - p) <= 5 * se + 1e-9).all(), (freq, p)
    assert all(len(set(row)) == N and ok[row].all() for row in picks.tolist())


@eqx.filter_jit
def _frozen_run(seed: jax.Array, ended: jax.Array) -> tuple:
    frozen = Frozen(LEVELS, buffer_size=SIZE)
    history = _simulate(frozen, seed, ended, jnp.zeros((STEPS, N), jnp.float32))
    state = history[0]
    all_levels = jax.vmap(frozen.level, in_axes=(None, 0))(
        _at_jnp(state, 0), jnp.arange(SIZE, dtype=jnp.int32)
    )
    return history, all_levels


def _at_jnp(tree: object, i: int) -> object:
    return jax.tree.map(lambda x: x[i], tree)


@settings(max_examples=5)
@given(seed=st.integers(0, 2**31 - 1), ended=ended_st)
def test_frozen_samples_from_a_fixed_set(seed: int, ended: np.ndarray) -> None:
    (states, _, _, new_tasks), levels = _host(_frozen_run(jnp.asarray(seed), jnp.asarray(ended)))
    assert (np.asarray(states.key) == np.asarray(states.key)[0]).all()
    for t in range(STEPS):
        for a in range(N):
            one = _at(_at(new_tasks, t), a)
            assert any(_tasks_equal(one, _at(levels, i)) for i in range(SIZE))


@settings(max_examples=15)
@given(mask=hnp.arrays(np.bool_, 7), batch=st.sampled_from([1, 3]))
def test_map_where_computes_only_selected_rows(mask: np.ndarray, batch: int) -> None:
    xs = jnp.arange(7, dtype=jnp.float32)
    out = _map_where_jit(jnp.asarray(mask), xs, batch)
    np.testing.assert_array_equal(out, np.where(mask, np.arange(7) ** 2 + 1.0, 0.0))


@eqx.filter_jit
def _map_where_jit(mask: jax.Array, xs: jax.Array, batch: int) -> jax.Array:
    return map_where(lambda x, none: x**2 + 1.0, mask, (xs, None), batch)


# --- Scores --------------------------------------------------------------------------------

SMALL = Learner.for_tasks(LEVELS, num_workers=4, rollout_len=5)


@eqx.filter_jit
def _critic_scores(key: jax.Array) -> tuple:
    k_task, k_agent, k_critic, k_score = jax.random.split(key, 4)
    task = LEVELS.sample(k_task)
    agent = SMALL.init(k_agent, task, A2C())
    critic = make_net(SMALL.env.obs_size, 1, (), key=k_critic)
    cached = jnp.asarray(0.5, jnp.float32)
    pvl = PositiveValueLoss()(SMALL, agent, critic, cached, k_score)
    l1 = L1ValueLoss()(SMALL, agent, critic, cached, k_score)
    maxmc = MaxMC()(SMALL, agent, critic, cached, k_score)
    # By hand from the same rollout.
    _, _, traj = agent_rollout(SMALL, agent, k_score)
    value = jax.vmap(jax.vmap(critic))(traj.all_obs())[..., 0]
    adv, target = gae(traj.reward, value, traj.done, 0.99, 0.95)
    best = jnp.maximum(cached, jnp.max(target))
    expected = (
        jnp.mean(jnp.maximum(adv, 0.0)),
        jnp.mean(jnp.abs(adv)),
        jnp.mean(best - value[:-1]),
    )
    return pvl, l1, maxmc, expected, best


@settings(max_examples=5)
@given(seed=st.integers(0, 2**31 - 1))
def test_value_scores(seed: int) -> None:
    pvl, l1, maxmc, (e_pvl, e_l1, e_maxmc), best = _critic_scores(jax.random.key(seed))
    np.testing.assert_allclose(pvl[0], e_pvl, rtol=1e-6)
    np.testing.assert_allclose(l1[0], e_l1, rtol=1e-6)
    np.testing.assert_allclose(maxmc, (e_maxmc, best), rtol=1e-6)
    assert 0 <= pvl[0] <= l1[0]
    assert pvl[1] == 0.5 and l1[1] == 0.5  # a cache passes through scores that keep none


@eqx.filter_jit
def _plr_scores(key: jax.Array, ended: jax.Array) -> tuple:
    plr = PLR(LEVELS, PositiveValueLoss(), buffer_size=SIZE)
    k_init, k_agents, k_critics, k_score = jax.random.split(key, 4)
    state, tasks = plr.init(k_init, N)
    agents = jax.vmap(lambda k, t: SMALL.init(k, t, A2C()))(jax.random.split(k_agents, N), tasks)
    critics = jax.vmap(lambda k: make_net(SMALL.env.obs_size, 1, (), key=k))(
        jax.random.split(k_critics, N)
    )
    scores = plr.score(state, k_score, SMALL, agents, critics, ended)
    # Directly, with the key each agent gets inside `score`.
    keys = jax.random.split(jax.random.split(k_score)[1], N)
    direct = jax.vmap(lambda a, c, k: PositiveValueLoss()(SMALL, a, c, None, k)[0])(
        agents, critics, keys
    )
    return scores.score, direct


@settings(max_examples=5)
@given(seed=st.integers(0, 2**31 - 1), ended=hnp.arrays(np.bool_, N))
def test_plr_scores_only_ended_agents(seed: int, ended: np.ndarray) -> None:
    scores, direct = _plr_scores(jax.random.key(seed), jnp.asarray(ended))
    np.testing.assert_allclose(scores, np.where(ended, direct, 0.0), rtol=1e-6, atol=1e-7)


def test_scores_without_critics_are_rejected_with_the_fix() -> None:
    fix = "use alg_regret or a domain-randomisation curriculum with ES"

    def make(name: str, **flags: object) -> object:
        config = TrainConfig(score_function=name, buffer_size=SIZE, **flags)  # type: ignore[arg-type]
        return make_curriculum(config, LEVELS)

    for name in ("pvl", "l1_value_loss", "maxmc"):
        with pytest.raises(ValueError, match=fix):
            make(name).check(N, has_critic=False)  # type: ignore[attr-defined]
    for name in ("random", "frozen", "alg_regret"):
        make(name).check(N, has_critic=False)  # type: ignore[attr-defined]
    # At trace time too (nothing is computed: shapes only).
    plr = make("pvl")
    state, tasks = eqx.filter_eval_shape(plr.init, jax.random.key(0), N)
    agents = eqx.filter_eval_shape(
        jax.vmap(lambda k, t: SMALL.init(k, t, A2C())),
        jax.random.split(jax.random.key(1), N),
        tasks,
    )
    with pytest.raises(ValueError, match=fix):
        eqx.filter_eval_shape(
            plr.score, state, jax.random.key(2), SMALL, agents, None, jnp.ones(N, bool)
        )
    with pytest.raises(ValueError, match="--buffer-size"):
        make_curriculum(TrainConfig(score_function="alg_regret", buffer_size=2), LEVELS).check(N)
    with pytest.raises(ValueError, match="choose one of"):
        make("regret")
    with pytest.raises(ValueError, match="--score-temperature"):
        make("pvl", score_temperature=0.0)


def test_antagonist_equals_a_whole_a2c_lifetime() -> None:
    """The antagonist stops at its task's lifetime, yet its parameters equal those of a full
    `train_lifetime` (whose updates past the lifetime are masked)."""
    task = eqx.tree_at(lambda t: t.lifetime, LEVELS.sample(jax.random.key(5)), jnp.asarray(3))
    key = jax.random.key(6)

    @eqx.filter_jit
    def both() -> tuple[jax.Array, jax.Array, jax.Array]:
        fast = train_antagonist(SMALL, task, key, 5)
        slow, _ = train_lifetime(SMALL, A2C(), task, key, 5)
        return fast.params.policy.table, slow.params.policy.table, fast.step

    fast, slow, steps = both()
    np.testing.assert_array_equal(fast, slow)
    assert steps == 3


@pytest.mark.slow
def test_algorithmic_regret_on_sparse() -> None:
    """On `sparse` a trained A2C antagonist reaches return 1.0 (benchmarks/RESULTS.md, A2C
    baseline: 1.00 ± 0.00 over 8 seeds), so alg_regret = 1.0 − the agent's own return, within
    sampling error; the antagonist is trained once per level and then read from the buffer."""
    levels = get_level_set("sparse")
    learner = Learner.for_tasks(levels)  # the reference agent: 64 workers × 20 steps
    plr = PLR(levels, AlgorithmicRegret(levels.max_lifetime, levels.eval_steps), buffer_size=2)
    state, tasks = eqx.filter_jit(plr.init)(jax.random.key(0), 1)
    # The "LPG agent": a fresh agent (random policy), whose return on sparse is near 0.
    agents = eqx.filter_jit(jax.vmap(lambda t: learner.init(jax.random.key(1), t, A2C())))(tasks)
    score = eqx.filter_jit(plr.score)
    ended = jnp.ones(1, bool)

    first = score(state, jax.random.key(2), learner, agents, None, ended)
    antagonist = float(first.cache.antagonist_return[0])
    assert bool(first.cache.known[0]) and antagonist >= 0.95

    # Cached: with a return already in the buffer (a sentinel), no antagonist is trained and
    # the score is that return minus the agent's (64 episodes). Four more keys give
    # independent estimates of the agent's return (4 × 64 episodes, same compiled function).
    sentinel = 7.0
    cached = eqx.tree_at(
        lambda s: s.buffer.cache,
        state,
        AntagonistCache(jnp.full(2, sentinel, jnp.float32), jnp.ones(2, bool)),
    )
    again = score(cached, jax.random.key(2), learner, agents, None, ended)
    assert float(again.cache.antagonist_return[0]) == sentinel
    own = antagonist - float(first.score[0])
    np.testing.assert_allclose(sentinel - float(again.score[0]), own, rtol=1e-5, atol=1e-5)
    others = np.array(
        [
            sentinel
            - float(score(cached, jax.random.key(k), learner, agents, None, ended).score[0])
            for k in range(3, 7)
        ]
    )
    # Standard error of (64-episode mean − 256-episode mean), from the spread of the four
    # 64-episode means; 0.02 floors it when the agent's returns barely vary.
    se = np.sqrt(others.var(ddof=1) * (1 + 1 / 4)) + 0.02
    assert abs(float(first.score[0]) - (1.0 - others.mean())) <= 4 * se + abs(1.0 - antagonist)
