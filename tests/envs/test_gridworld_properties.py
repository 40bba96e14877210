"""Property tests of the grid world's dynamics, observations and level sampling.

Every rollout function is jitted once per environment shape at module level and hypothesis only
draws *data* (seeds, level-set names from a fixed list, hand-built levels padded to a fixed shape,
fixed-length action sequences), so nothing recompiles per example. The checks themselves run on
the host in NumPy against an independent reference of the spec (section 1 of lpg-groove.md):
move; collect the objects that existed and sit on the new cell; respawn; remove the collected;
terminate with Bernoulli(Σ collected p_terminate); time += 1; auto-reset at done.
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lpgx.envs import EnvState, GridWorld, Level, Task, get_level_set

STEPS = 256
_DELTAS = ((-1, 0), (1, 0), (0, -1), (0, 1), (0, 0))  # up, down, left, right, no-op

# Level sets whose tasks are rolled out, and the hand-built level families below. Each group
# shares one environment shape, so one compilation serves all of a group's examples.
SAMPLED_SETS = ("tabular", "dense", "rand_small", "rand_all")
HAND_TABULAR = "hand_tabular"  # runs in dense's environment (G=11, N=4, T=3)
HAND_NON_TABULAR = "hand_non_tabular"  # runs in rand_small's environment (G=7, N=4, T=2)
SOURCES = (*SAMPLED_SETS, HAND_TABULAR, HAND_NON_TABULAR)
NON_TABULAR_SOURCES = ("rand_small", "rand_all", HAND_NON_TABULAR)
_HAND_ENV = {HAND_TABULAR: "dense", HAND_NON_TABULAR: "rand_small"}

seeds = st.integers(0, 2**31 - 1)
action_lists = st.lists(st.integers(0, 4), min_size=STEPS, max_size=STEPS)


# --- Jitted once per shape -------------------------------------------------------------------


class Rollout(NamedTuple):
    start: EnvState  # the reset state
    start_obs: jax.Array
    pre: EnvState  # state before step t (stacked over t)
    post: EnvState  # state returned by step t
    obs: jax.Array  # observation returned by step t
    reward: jax.Array
    done: jax.Array
    keys: jax.Array  # the key of step t


@eqx.filter_jit
def _rollout(env: GridWorld, level: Level, key: jax.Array, actions: jax.Array) -> Rollout:
    k_reset, k_steps = jax.random.split(key)
    start, start_obs = env.reset(k_reset, level)
    keys = jax.random.split(k_steps, STEPS)

    def body(state: EnvState, x: tuple[jax.Array, jax.Array]) -> tuple[EnvState, Any]:
        k, a = x
        nxt, obs, reward, done = env.step(k, level, state, a)
        return nxt, (state, nxt, obs, reward, done)

    _, (pre, post, obs, reward, done) = jax.lax.scan(body, start, (keys, actions))
    return Rollout(start, start_obs, pre, post, obs, reward, done, keys)


@eqx.filter_jit
def _sample(levels: Any, key: jax.Array) -> Task:
    return levels.sample(key)


@eqx.filter_jit
def _batched_step(
    env: GridWorld, keys: jax.Array, levels: Level, states: EnvState, actions: jax.Array
) -> tuple[EnvState, jax.Array, jax.Array, jax.Array]:
    return jax.vmap(env.step)(keys, levels, states, actions)


@eqx.filter_jit
def _decode(env: GridWorld, index: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jax.vmap(env.decode_tabular_index)(index)


# --- Scenarios -------------------------------------------------------------------------------


def _env(name: str, time_feature: bool = False) -> GridWorld:
    return get_level_set(_HAND_ENV.get(name, name)).env(time_feature)


@st.composite
def hand_levels(draw: st.DrawFn, tabular: bool) -> dict[str, np.ndarray]:
    """An arbitrary small level (as NumPy fields): random walls, start and objects, padded to a
    fixed shape.

    p_terminate is 0 or 1 per type, so termination is a deterministic function of what is
    collected; p_respawn includes 0 and 1. (Strategies build no JAX arrays: tracing and
    compiling inside a strategy upsets hypothesis.)
    """
    env = _env(HAND_TABULAR if tabular else HAND_NON_TABULAR)
    big_g, big_n, big_t = env.max_grid_size, env.max_objects, env.max_types
    g = draw(st.one_of(st.integers(2, 4), st.integers(2, big_g)))  # crowded grids half the time
    cells = draw(
        st.lists(st.integers(0, g * g - 1), min_size=1, max_size=min(big_n + 1, g * g), unique=True)
    )
    start, objs = cells[0], cells[1:]
    n = len(objs)
    walls = np.zeros(big_g * big_g, bool)
    walls[: g * g] = draw(st.lists(st.booleans(), min_size=g * g, max_size=g * g))
    walls[cells] = False
    obj_pos = np.zeros(big_n, np.int32)
    obj_pos[:n] = objs
    obj_types = np.zeros(big_n, np.int32)
    obj_types[:n] = draw(st.lists(st.integers(0, big_t - 1), min_size=n, max_size=n))

    def per_type(values: list[float]) -> np.ndarray:
        drawn = draw(st.lists(st.sampled_from(values), min_size=big_t, max_size=big_t))
        return np.asarray(drawn, np.float32)

    return dict(
        grid_size=np.int32(g),
        walls=walls,
        start_pos=np.int32(start),
        n_objs=np.int32(n),
        obj_types=obj_types,
        obj_pos=obj_pos,
        obj_rewards=per_type([-1.0, -0.5, 0.25, 1.0]),
        obj_p_terminate=per_type([0.0, 1.0]),
        obj_p_respawn=per_type([1.0, 0.3, 0.0]),
        max_steps=np.int32(draw(st.integers(1, 2 * STEPS))),
    )


class Scenario(NamedTuple):
    """A task sampled from a level set with `task_seed`, or a hand-built level."""

    source: str
    task_seed: int = 0
    hand: dict[str, np.ndarray] | None = None

    def level(self) -> Level:
        if self.hand is None:
            return _sample(get_level_set(self.source), jax.random.key(self.task_seed)).level
        return Level(**{k: jnp.asarray(v) for k, v in self.hand.items()})


@st.composite
def scenarios(draw: st.DrawFn, sources: tuple[str, ...] = SOURCES) -> Scenario:
    source = draw(st.sampled_from(sources))
    if source in SAMPLED_SETS:
        return Scenario(source, task_seed=draw(seeds))
    return Scenario(source, hand=draw(hand_levels(tabular=source == HAND_TABULAR)))


def _to_np(tree: Any) -> Any:
    """Host copies of every array leaf except PRNG keys."""

    def leaf(x: Any) -> Any:
        if isinstance(x, jax.Array) and not jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return np.asarray(x)
        return x

    return jax.tree.map(leaf, tree)


def _run(
    env: GridWorld, level: Level, seed: int, actions: list[int]
) -> tuple[Level, Rollout, np.ndarray]:
    acts = np.asarray(actions, np.int32)
    roll = _rollout(env, level, jax.random.key(seed), jnp.asarray(acts))
    return _to_np(level), _to_np(roll), acts


# --- NumPy reference of the spec -------------------------------------------------------------


def _reference_move(level: Level, pos: int, action: int) -> int:
    """Move on the level's g×g grid; border moves are cancelled, walls block."""
    g = int(level.grid_size)
    row, col = divmod(int(pos), g)
    drow, dcol = _DELTAS[action]
    row, col = row + drow, col + dcol
    if not (0 <= row < g and 0 <= col < g):
        return int(pos)
    target = row * g + col
    return int(pos) if level.walls[target] else target


def _used(level: Level) -> np.ndarray:
    return np.arange(level.obj_types.shape[0]) < int(level.n_objs)


def _collected(level: Level, roll: Rollout, t: int, moved: int) -> np.ndarray:
    """The objects collected by step t: they existed before it and sit on the new cell."""
    return roll.pre.obj_exists[t] & (roll.pre.obj_pos[t] == moved) & _used(level)


def _state(states: EnvState, t: int) -> EnvState:
    return jax.tree.map(lambda x: x[t], states)


def _all_states(roll: Rollout) -> list[EnvState]:
    return [roll.start] + [_state(roll.post, t) for t in range(STEPS)]


def _reset_states(roll: Rollout) -> list[EnvState]:
    return [roll.start] + [_state(roll.post, t) for t in range(STEPS) if roll.done[t]]


def _open_cells(level: Level) -> np.ndarray:
    g = int(level.grid_size)
    return (np.arange(level.walls.shape[0]) < g * g) & ~level.walls


def _check_objects_on_distinct_open_cells(level: Level, state: EnvState) -> None:
    exists = state.obj_exists
    assert not np.any(exists & ~_used(level)), "an unused object slot exists"
    cells = state.obj_pos[exists]
    assert np.all(_open_cells(level)[cells]), f"an object sits off the grid or on a wall: {cells}"
    assert len(set(cells.tolist())) == len(cells), f"existing objects overlap: {cells}"


# --- 1. The agent stays on open cells --------------------------------------------------------


@settings(max_examples=25)
@given(scenarios(), seeds, action_lists)
def test_agent_is_always_inside_the_grid_and_never_on_a_wall(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    lvl, roll, _ = _run(_env(name), level, seed, actions)
    g = int(lvl.grid_size)
    positions = np.concatenate([roll.pre.pos, roll.post.pos, roll.start.pos[None]])
    assert np.all((positions >= 0) & (positions < g * g)), positions
    assert not np.any(lvl.walls[positions])


# --- Moves match a hand-computed reference (walls block, the border cancels) -----------------


@settings(max_examples=25)
@given(scenarios(), seeds, action_lists)
def test_moves_match_the_hand_computed_move(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    lvl, roll, acts = _run(_env(name), level, seed, actions)
    for t in range(STEPS):
        if not roll.done[t]:
            expected = _reference_move(lvl, roll.pre.pos[t], acts[t])
            assert int(roll.post.pos[t]) == expected, (t, roll.pre.pos[t], acts[t])


# --- 2. Objects never overlap walls, each other or (at a random respawn) the agent ------------


@settings(max_examples=25)
@given(scenarios(), seeds, action_lists)
def test_objects_never_overlap_walls_or_each_other(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    lvl, roll, _ = _run(_env(name), level, seed, actions)
    for state in _all_states(roll):
        _check_objects_on_distinct_open_cells(lvl, state)


@settings(max_examples=25)
@given(scenarios(NON_TABULAR_SOURCES), seeds, action_lists)
def test_random_respawns_and_resets_never_put_an_object_on_the_agent(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    lvl, roll, _ = _run(_env(name), level, seed, actions)
    for state in _reset_states(roll):
        assert not np.any(state.obj_exists & (state.obj_pos == state.pos)), "reset on the start"
    for t in range(STEPS):
        if not roll.done[t]:
            respawned = ~roll.pre.obj_exists[t] & roll.post.obj_exists[t]
            on_agent = respawned & (roll.post.obj_pos[t] == roll.post.pos[t])
            assert not np.any(on_agent), f"step {t}: an object respawned on the agent"
        _check_objects_on_distinct_open_cells(lvl, _state(roll.post, t))


# --- 3. Reward = Σ rewards of the collected objects; collected objects disappear -------------


@settings(max_examples=25)
@given(scenarios(), seeds, action_lists)
def test_reward_is_the_sum_of_the_collected_objects_rewards(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    lvl, roll, acts = _run(_env(name), level, seed, actions)
    obj_rewards = lvl.obj_rewards[lvl.obj_types]
    for t in range(STEPS):
        moved = _reference_move(lvl, roll.pre.pos[t], acts[t])
        collected = _collected(lvl, roll, t, moved)
        expected = np.sum(obj_rewards[collected], dtype=np.float32)
        np.testing.assert_allclose(roll.reward[t], expected, rtol=0, atol=1e-6, err_msg=f"{t}")
        if not roll.done[t]:
            assert not np.any(roll.post.obj_exists[t] & collected), "a collected object remains"
            kept = roll.pre.obj_exists[t] & ~collected
            assert np.all(roll.post.obj_exists[t][kept]), "an uncollected object vanished"
            np.testing.assert_array_equal(roll.post.obj_pos[t][kept], roll.pre.obj_pos[t][kept])


# --- Respawn probabilities 0 and 1; tabular objects stay at their static cells --------------


@settings(max_examples=25)
@given(scenarios(), seeds, action_lists)
def test_respawn_follows_the_extreme_probabilities_and_static_cells(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    env = _env(name)
    lvl, roll, acts = _run(env, level, seed, actions)
    used = _used(lvl)
    p_respawn = lvl.obj_p_respawn[lvl.obj_types]
    for t in range(STEPS):
        if env.tabular:
            np.testing.assert_array_equal(roll.post.obj_pos[t][used], lvl.obj_pos[used])
        if roll.done[t]:
            continue
        moved = _reference_move(lvl, roll.pre.pos[t], acts[t])
        collected = _collected(lvl, roll, t, moved)
        absent = ~roll.pre.obj_exists[t] & used
        appeared = absent & roll.post.obj_exists[t]
        assert not np.any(appeared & (p_respawn == 0.0)), "a p_respawn = 0 object respawned"
        if env.tabular:
            must = absent & (p_respawn == 1.0)
            assert np.all(roll.post.obj_exists[t][must]), "a p_respawn = 1 object stayed away"
        else:
            # It respawns unless no free cell is left (open, not the agent's, not taken).
            taken = roll.pre.obj_pos[t][roll.pre.obj_exists[t] & ~collected]
            free = _open_cells(lvl)
            free[taken] = False
            free[moved] = False
            if free.sum() >= np.sum(absent):
                must = absent & (p_respawn == 1.0)
                assert np.all(roll.post.obj_exists[t][must]), "a p_respawn = 1 object stayed away"


# --- 4. Episodes end exactly at max_steps unless terminated earlier --------------------------


@settings(max_examples=25)
@given(scenarios(), seeds, action_lists, st.integers(1, 60))
def test_without_termination_episodes_end_exactly_every_max_steps(
    scenario: Scenario, seed: int, actions: list[int], max_steps: int
) -> None:
    name, level = scenario.source, scenario.level()
    level = eqx.tree_at(
        lambda lv: (lv.obj_p_terminate, lv.max_steps),
        level,
        (jnp.zeros_like(level.obj_p_terminate), jnp.asarray(max_steps, jnp.int32)),
    )
    _, roll, _ = _run(_env(name), level, seed, actions)
    steps = np.arange(1, STEPS + 1)
    np.testing.assert_array_equal(roll.done, steps % max_steps == 0)
    np.testing.assert_array_equal(roll.post.time, steps % max_steps)


@settings(max_examples=25)
@given(scenarios(), seeds, action_lists)
def test_done_is_timeout_or_termination_by_the_collected_objects(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    lvl, roll, acts = _run(_env(name), level, seed, actions)
    p_terminate = lvl.obj_p_terminate[lvl.obj_types]
    for t in range(STEPS):
        time = int(roll.pre.time[t]) + 1
        assert time <= int(lvl.max_steps), "an episode outlived max_steps"
        timeout = time >= int(lvl.max_steps)
        collected = _collected(lvl, roll, t, _reference_move(lvl, roll.pre.pos[t], acts[t]))
        p = float(np.sum(p_terminate[collected]))
        if p == 0.0:
            assert roll.done[t] == timeout, t
        elif p >= 1.0:
            assert roll.done[t], t
        assert int(roll.post.time[t]) == (0 if roll.done[t] else time)


# --- Auto-reset ------------------------------------------------------------------------------


@settings(max_examples=25)
@given(scenarios(), seeds, action_lists)
def test_a_done_step_returns_the_reset_state(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    env = _env(name)
    lvl, roll, _ = _run(env, level, seed, actions)
    used = _used(lvl)
    room = np.sum(_open_cells(lvl)) - 1  # open cells other than the start
    for state in _reset_states(roll):
        assert int(state.time) == 0
        assert int(state.pos) == int(lvl.start_pos)
        if env.tabular:
            np.testing.assert_array_equal(state.obj_exists, used)
            np.testing.assert_array_equal(state.obj_pos[used], lvl.obj_pos[used])
        else:
            assert np.sum(state.obj_exists) == min(np.sum(used), room)
    for t in range(STEPS - 1):  # states chain from one step to the next
        for field in ("pos", "obj_pos", "obj_exists", "time"):
            np.testing.assert_array_equal(
                getattr(roll.pre, field)[t + 1], getattr(roll.post, field)[t]
            )


# --- 5. Observations -------------------------------------------------------------------------


def _reference_index(env: GridWorld, state: EnvState) -> int:
    return int(state.pos) + env.num_cells * int(
        sum(2**i for i, e in enumerate(state.obj_exists) if e)
    )


@settings(max_examples=25)
@given(scenarios(("tabular", "dense", HAND_TABULAR)), seeds, action_lists)
def test_tabular_index_observation_decodes_to_position_and_existing_objects(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    env = _env(name)
    assert env.index_obs
    _, roll, _ = _run(env, level, seed, actions)
    assert roll.obs.dtype == np.int32
    assert int(roll.start_obs) == _reference_index(env, roll.start)
    for t in range(STEPS):
        assert int(roll.obs[t]) == _reference_index(env, _state(roll.post, t))
    assert np.all((roll.obs >= 0) & (roll.obs < env.obs_size))
    pos, exists = _to_np(_decode(env, jnp.asarray(roll.obs)))
    np.testing.assert_array_equal(pos, roll.post.pos)
    np.testing.assert_array_equal(exists, roll.post.obj_exists)


@settings(max_examples=15)
@given(scenarios(("dense", HAND_TABULAR)), seeds, action_lists)
def test_time_feature_observation_is_one_hot_plus_time(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    index_env, env = _env(name), _env(name, time_feature=True)
    _, index_roll, _ = _run(index_env, level, seed, actions)
    _, roll, _ = _run(env, level, seed, actions)
    # The time feature changes the observation only, never the dynamics.
    for field in ("pos", "obj_pos", "obj_exists", "time"):
        np.testing.assert_array_equal(getattr(roll.post, field), getattr(index_roll.post, field))
    np.testing.assert_array_equal(roll.reward, index_roll.reward)
    np.testing.assert_array_equal(roll.done, index_roll.done)
    obs = np.concatenate([roll.start_obs[None], roll.obs])
    index = np.concatenate([index_roll.start_obs[None], index_roll.obs])
    time = np.concatenate([roll.start.time[None], roll.post.time])
    assert obs.shape == (STEPS + 1, env.num_tabular_states + 1) == (STEPS + 1, env.obs_size)
    assert obs.dtype == np.float32
    one_hot = obs[:, :-1]
    assert np.all((one_hot == 0.0) | (one_hot == 1.0))
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1.0)
    np.testing.assert_array_equal(one_hot.argmax(axis=1), index)
    np.testing.assert_allclose(obs[:, -1], 0.001 * time.astype(np.float32), rtol=1e-6)


@settings(max_examples=25)
@given(scenarios(NON_TABULAR_SOURCES), seeds, action_lists)
def test_non_tabular_observation_layout(scenario: Scenario, seed: int, actions: list[int]) -> None:
    name, level = scenario.source, scenario.level()
    env = _env(name)
    lvl, roll, _ = _run(env, level, seed, actions)
    cells, types = env.num_cells, env.max_types
    obs = np.concatenate([roll.start_obs[None], roll.obs])
    assert obs.shape == (STEPS + 1, (1 + types) * cells) == (STEPS + 1, env.obs_size)
    for o, state in zip(obs, _all_states(roll), strict=True):
        agent, planes = o[:cells], o[cells:].reshape(types, cells)
        np.testing.assert_array_equal(agent, np.arange(cells) == state.pos)
        expected = np.zeros((types, cells), np.float32)
        for i in np.flatnonzero(state.obj_exists):
            expected[lvl.obj_types[i], state.obj_pos[i]] = 1.0
        np.testing.assert_array_equal(planes, expected)
        counts = np.bincount(lvl.obj_types[state.obj_exists], minlength=types)
        np.testing.assert_array_equal(planes.sum(axis=1), counts)


# --- 6. Determinism --------------------------------------------------------------------------


def _assert_trees_equal(a: Any, b: Any) -> None:
    leaves_a, tree_a = jax.tree.flatten(_to_np(a))
    leaves_b, tree_b = jax.tree.flatten(_to_np(b))
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_array_equal(jax.random.key_data(x), jax.random.key_data(y))


@settings(max_examples=15)
@given(scenarios(), seeds, action_lists)
def test_stepping_is_deterministic_given_the_key(
    scenario: Scenario, seed: int, actions: list[int]
) -> None:
    name, level = scenario.source, scenario.level()
    env = _env(name)
    acts = jnp.asarray(actions, jnp.int32)
    first = _rollout(env, level, jax.random.key(seed), acts)
    second = _rollout(env, level, jax.random.key(seed), acts)
    _assert_trees_equal(first, second)


# --- 7. A vmapped batch of steps equals the steps taken one by one -------------------------


def _stack(*trees: Any) -> Any:
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)


_BATCH_GROUPS = (("dense", HAND_TABULAR), ("rand_small", HAND_NON_TABULAR))


@st.composite
def batch_cases(draw: st.DrawFn) -> tuple[list[Scenario], list[int], list[list[int]], int]:
    """Two (usually different) levels that share one environment, with seeds and actions."""
    sources = draw(st.sampled_from(_BATCH_GROUPS))
    cases = [draw(scenarios(sources)) for _ in range(2)]
    return (
        cases,
        [draw(seeds) for _ in range(2)],
        [draw(action_lists) for _ in range(2)],
        draw(seeds),
    )


@settings(max_examples=15)
@given(batch_cases())
def test_vmapped_steps_equal_the_steps_taken_one_by_one(
    case: tuple[list[Scenario], list[int], list[list[int]], int],
) -> None:
    scenarios_, step_seeds, action_seqs, order_seed = case
    env = _env(scenarios_[0].source)
    levels, rolls, actions = [], [], []
    for scenario, seed, acts_list in zip(scenarios_, step_seeds, action_seqs, strict=True):
        level = scenario.level()
        acts = jnp.asarray(acts_list, jnp.int32)
        levels.append(jax.tree.map(lambda x: jnp.broadcast_to(x, (STEPS, *x.shape)), level))
        rolls.append(_rollout(env, level, jax.random.key(seed), acts))
        actions.append(acts)
    order = jnp.asarray(np.random.default_rng(order_seed).permutation(2 * STEPS))

    def batch(*trees: Any) -> Any:  # one shuffled batch of both rollouts' steps
        return jax.tree.map(lambda x: x[order], _stack(*trees))

    r0, r1 = rolls
    out = _batched_step(
        env,
        batch(r0.keys, r1.keys),
        batch(*levels),
        batch(r0.pre, r1.pre),
        batch(*actions),
    )
    expected = batch((r0.post, r0.obs, r0.reward, r0.done), (r1.post, r1.obs, r1.reward, r1.done))
    _assert_trees_equal(out, expected)


# --- 8. Padding never changes the dynamics ---------------------------------------------------


@settings(max_examples=15)
@given(
    st.sampled_from([("dense", "tabular"), ("rand_small", "rand_all")]),
    seeds,
    seeds,
    action_lists,
    st.integers(1, 100),
)
def test_a_padded_level_behaves_exactly_like_the_unpadded_one(
    names: tuple[str, str], task_seed: int, seed: int, actions: list[int], max_steps: int
) -> None:
    small_name, big_name = names
    small_env, big_env = _env(small_name), _env(big_name)
    level = _sample(get_level_set(small_name), jax.random.key(task_seed)).level
    # Shorter episodes, so that the rollout also crosses (random, for rand_small) resets.
    level = eqx.tree_at(lambda lv: lv.max_steps, level, jnp.asarray(max_steps, jnp.int32))
    padded = level.pad(big_env.max_grid_size, big_env.max_objects, big_env.max_types)
    assert (small_env.max_grid_size, small_env.max_objects, small_env.max_types) != (
        big_env.max_grid_size,
        big_env.max_objects,
        big_env.max_types,
    )
    _, small, _ = _run(small_env, level, seed, actions)
    _, big, _ = _run(big_env, padded, seed, actions)
    n = small_env.max_objects
    for a, b in ((small.start, big.start), (small.post, big.post)):
        np.testing.assert_array_equal(a.pos, b.pos)
        np.testing.assert_array_equal(a.time, b.time)
        np.testing.assert_array_equal(a.obj_exists, b.obj_exists[..., :n])
        assert not np.any(b.obj_exists[..., n:]), "a padding slot exists"
        np.testing.assert_array_equal(
            np.where(a.obj_exists, a.obj_pos, -1),
            np.where(b.obj_exists[..., :n], b.obj_pos[..., :n], -1),
        )
    np.testing.assert_array_equal(small.reward, big.reward)
    np.testing.assert_array_equal(small.done, big.done)


# --- Level sampling --------------------------------------------------------------------------

# (grid size, n_objs, max_steps, lifetime) ranges (inclusive) and the number of walls drawn.
_RANGES = {
    "all": ((4, 10), (1, 5), (20, 750), (1000, 1000), 15),
    "all_vrandlife": ((4, 10), (1, 5), (20, 750), (10, 250), 15),
    "rand_all": ((4, 10), (1, 5), (20, 750), (25000, 25000), 15),
    "small": ((4, 6), (1, 3), (20, 100), (250, 250), 7),
    "medium": ((6, 8), (2, 4), (100, 250), (1000, 1000), 10),
    "large": ((8, 10), (2, 5), (250, 750), (2500, 2500), 15),
}
_SAMPLED_CHECKS = 8


def _check_task_layout(task: Task) -> None:
    """Start and objects on distinct open cells inside the grid; walls only inside it."""
    lvl = _to_np(task.level)
    g = int(lvl.grid_size)
    assert lvl.walls.shape[0] >= g * g
    assert not np.any(lvl.walls[g * g :]), "a wall outside the level's grid"
    used = _used(lvl)
    cells = np.concatenate([lvl.start_pos[None], lvl.obj_pos[used]])
    assert np.all(_open_cells(lvl)[cells]), cells
    assert len(set(cells.tolist())) == len(cells), f"start and objects overlap: {cells}"


@settings(max_examples=20)
@given(st.sampled_from((*_RANGES, *SAMPLED_SETS)), seeds)
def test_sampled_levels_put_start_and_objects_on_distinct_open_cells(name: str, seed: int) -> None:
    levels = get_level_set(name)
    for key in jax.random.split(jax.random.key(seed), _SAMPLED_CHECKS):
        task = _sample(levels, key)
        _check_task_layout(task)
        shapes = (task.level.max_grid_size, task.level.max_objects, task.level.max_types)
        assert shapes == (levels.max_grid_size, levels.max_objects, levels.max_types)


@settings(max_examples=20)
@given(st.sampled_from(tuple(_RANGES)), seeds)
def test_level_sampling_respects_the_stated_ranges(name: str, seed: int) -> None:
    (g_lo, g_hi), (n_lo, n_hi), (s_lo, s_hi), (l_lo, l_hi), n_walls = _RANGES[name]
    levels = get_level_set(name)
    for key in jax.random.split(jax.random.key(seed), _SAMPLED_CHECKS):
        task = _to_np(_sample(levels, key))
        lvl = task.level
        g, n = int(lvl.grid_size), int(lvl.n_objs)
        assert g_lo <= g <= g_hi
        assert n_lo <= n <= n_hi
        assert s_lo <= int(lvl.max_steps) <= s_hi
        assert l_lo <= int(task.lifetime) <= l_hi
        assert np.sum(lvl.walls) <= n_walls
        used = _used(lvl)
        np.testing.assert_array_equal(lvl.obj_types[used], np.arange(n))  # one type per object
        rewards = lvl.obj_rewards[:n]
        assert 0.0 <= rewards[0] <= 1.0
        assert np.all((rewards >= -1.0) & (rewards <= 1.0))
        tol = 1e-5
        p_term, p_resp = lvl.obj_p_terminate[:n], lvl.obj_p_respawn[:n]
        assert np.all((p_term >= 0.01 * (1 - tol)) & (p_term <= 1.0 * (1 + tol)))
        assert np.all((p_resp >= 1e-3 * (1 - tol)) & (p_resp <= 0.1 * (1 + tol)))


def test_level_sampling_reaches_both_ends_of_the_ranges() -> None:
    """Over a fixed batch of seeds every grid size and object count in range is drawn."""
    for name in ("small", "medium"):
        (g_lo, g_hi), (n_lo, n_hi), *_ = _RANGES[name]
        levels = get_level_set(name)
        drawn = [_to_np(_sample(levels, k).level) for k in jax.random.split(jax.random.key(0), 64)]
        assert {int(lv.grid_size) for lv in drawn} == set(range(g_lo, g_hi + 1))
        assert {int(lv.n_objs) for lv in drawn} == set(range(n_lo, n_hi + 1))
