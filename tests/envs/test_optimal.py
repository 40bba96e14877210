"""The tabular DP's optimal return is exact: greedy play through the real env attains it."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpgx.envs import (
    GridWorld,
    Level,
    OptimalValues,
    get_level_set,
    greedy_action,
    optimal_return,
    optimal_values,
)

WORKERS = 512


@eqx.filter_jit
def first_episode_returns(
    env: GridWorld, level: Level, values: OptimalValues, key: jax.Array, steps: int
) -> tuple[jax.Array, jax.Array]:
    """Each worker's return of its first episode: greedy workers, then uniformly random ones.

    One compilation serves both policies (compilation dominates these tests).
    """
    k_reset, k_run = jax.random.split(key)
    workers = 2 * WORKERS
    is_random = jnp.arange(workers) >= WORKERS
    state, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, workers), level)

    def step(carry, key):
        state, ret, alive = carry
        k_act, k_env = jax.random.split(key)
        random = jax.random.randint(k_act, (workers,), 0, env.num_actions, dtype=jnp.int32)
        greedy = jax.vmap(greedy_action, in_axes=(None, 0))(values, state)
        state, _, reward, done = jax.vmap(env.step, in_axes=(0, None, 0, 0))(
            jax.random.split(k_env, workers), level, state, jnp.where(is_random, random, greedy)
        )
        ret = ret + jnp.where(alive, reward, 0.0)
        return (state, ret, alive & ~done), None

    init = (state, jnp.zeros(workers, jnp.float32), jnp.ones(workers, bool))
    (_, ret, alive), _ = jax.lax.scan(step, init, jax.random.split(k_run, steps))
    return ret, alive


Stats = tuple[float, float]  # mean, standard error


def simulate(env: GridWorld, level: Level, values: OptimalValues) -> tuple[Stats, Stats]:
    """(greedy, random) first-episode return statistics over `WORKERS` episodes each."""
    ret, alive = first_episode_returns(env, level, values, jax.random.key(1), int(level.max_steps))
    assert not bool(jnp.any(alive)), "every first episode ends within max_steps"
    ret = np.asarray(ret, np.float64).reshape(2, WORKERS)
    mean, se = ret.mean(axis=1), ret.std(axis=1, ddof=1) / np.sqrt(WORKERS)
    return (float(mean[0]), float(se[0])), (float(mean[1]), float(se[1]))


def assert_attains(stats: Stats, optimum: float) -> None:
    mean, se = stats
    assert abs(mean - optimum) <= 3 * se + 1e-4 * (1 + abs(optimum)), (mean, se, optimum)


@pytest.mark.parametrize(
    ("name", "seed"),
    [
        ("dense", 0),
        ("sparse", 0),
        ("long", 0),
        ("longer", 0),
        ("long_dense", 0),
        ("all", 0),  # g = 5, n = 3 in a (G, N) = (10, 5) env
    ],
)
def test_greedy_policy_attains_optimal_return(name: str, seed: int) -> None:
    levels = get_level_set(name)
    env = levels.env()
    level = levels.sample(jax.random.key(seed)).level
    values = optimal_values(env, level)
    optimum = optimal_return(env, level)
    assert np.isfinite(optimum)
    greedy, (random_mean, random_se) = simulate(env, level, values)
    assert_attains(greedy, optimum)
    assert optimum >= random_mean - 3 * random_se


def corner_level(max_steps: int, walls: tuple[int, ...] = ()) -> Level:
    """3×3, start at cell 0, one object (reward 1, terminating) in the opposite corner."""
    return Level(
        grid_size=jnp.asarray(3, jnp.int32),
        walls=jnp.zeros(9, bool).at[jnp.asarray(walls, jnp.int32)].set(True),
        start_pos=jnp.asarray(0, jnp.int32),
        n_objs=jnp.asarray(1, jnp.int32),
        obj_types=jnp.zeros(1, jnp.int32),
        obj_pos=jnp.asarray([8], jnp.int32),
        obj_rewards=jnp.ones(1, jnp.float32),
        obj_p_terminate=jnp.ones(1, jnp.float32),
        obj_p_respawn=jnp.zeros(1, jnp.float32),
        max_steps=jnp.asarray(max_steps, jnp.int32),
    )


@pytest.mark.parametrize(
    ("max_steps", "walls", "expected"),
    [(3, (), 0.0), (4, (), 1.0), (10, (), 1.0), (5, (1, 4), 1.0), (10, (1, 4, 7), 0.0)],
)
def test_single_terminating_object(max_steps: int, walls: tuple[int, ...], expected: float) -> None:
    env = GridWorld(max_grid_size=3, max_objects=1, max_types=1, tabular=True)
    assert optimal_return(env, corner_level(max_steps, walls)) == pytest.approx(expected)


def test_padding_and_greedy_action_under_padding() -> None:
    level = corner_level(6, walls=(4,))
    small = GridWorld(max_grid_size=3, max_objects=1, max_types=1, tabular=True)
    big = GridWorld(max_grid_size=5, max_objects=3, max_types=2, tabular=True)
    padded = level.pad(5, 3, 2)
    assert optimal_return(big, padded) == pytest.approx(optimal_return(small, level))
    greedy, _ = simulate(big, padded, optimal_values(big, padded))
    assert_attains(greedy, 1.0)


def test_non_tabular_raises() -> None:
    levels = get_level_set("rand_small")
    level = levels.sample(jax.random.key(0)).level
    with pytest.raises(ValueError, match="only defined for tabular levels"):
        optimal_return(levels.env(), level)


def brute_force_values(level: Level, max_steps: int) -> np.ndarray:
    """V₀[pos, code] by enumerating every (pos', obj_exists') transition explicitly."""
    g, n = int(level.grid_size), int(level.n_objs)
    walls = np.asarray(level.walls)
    types = np.asarray(level.obj_types)[:n]
    obj_pos = np.asarray(level.obj_pos)[:n]
    reward = np.asarray(level.obj_rewards, np.float64)[types]
    p_term = np.asarray(level.obj_p_terminate, np.float64)[types]
    p_resp = np.asarray(level.obj_p_respawn, np.float64)[types]
    states = list(itertools.product(range(g * g), itertools.product((0, 1), repeat=n)))

    def code(e: tuple[int, ...]) -> int:
        return sum(b << i for i, b in enumerate(e))

    def move(p: int, a: int) -> int:
        r, c = divmod(p, g)
        r2, c2 = r + (-1, 1, 0, 0, 0)[a], c + (0, 0, -1, 1, 0)[a]
        if not (0 <= r2 < g and 0 <= c2 < g):
            return p
        return p if walls[r2 * g + c2] else r2 * g + c2

    v = np.zeros((g * g, 2**n))
    for _ in range(max_steps):
        new = np.full_like(v, -np.inf)
        for p, e in states:
            for a in range(5):
                p2 = move(p, a)
                got = [bool(e[i]) and obj_pos[i] == p2 for i in range(n)]
                r = sum(reward[i] for i in range(n) if got[i])
                cont = 1.0 - min(1.0, sum(p_term[i] for i in range(n) if got[i]))
                future = 0.0
                for e2 in itertools.product((0, 1), repeat=n):
                    prob = 1.0
                    for i in range(n):
                        if got[i]:
                            p_one = 0.0
                        elif e[i]:
                            p_one = 1.0
                        else:
                            p_one = p_resp[i]
                        prob *= p_one if e2[i] else 1.0 - p_one
                    future += prob * v[p2, code(e2)]
                new[p, code(e)] = max(new[p, code(e)], r + cont * future)
        v = new
    return v


def test_matches_brute_force_enumeration() -> None:
    # Three objects, two sharing a cell (collected together, p_terminate summing past 1), a wall.
    level = Level(
        grid_size=jnp.asarray(3, jnp.int32),
        walls=jnp.zeros(9, bool).at[4].set(True),
        start_pos=jnp.asarray(0, jnp.int32),
        n_objs=jnp.asarray(3, jnp.int32),
        obj_types=jnp.asarray([0, 1, 2, 0], jnp.int32),
        obj_pos=jnp.asarray([2, 8, 8, 0], jnp.int32),
        obj_rewards=jnp.asarray([1.0, 0.7, -0.2], jnp.float32),
        obj_p_terminate=jnp.asarray([0.1, 0.6, 0.7], jnp.float32),
        obj_p_respawn=jnp.asarray([0.3, 0.5, 0.9], jnp.float32),
        max_steps=jnp.asarray(7, jnp.int32),
    )
    env = GridWorld(max_grid_size=3, max_objects=4, max_types=3, tabular=True)
    values = optimal_values(env, level)
    expected = brute_force_values(level, 7)
    np.testing.assert_allclose(np.asarray(values.start_values), expected, rtol=1e-5, atol=1e-6)
    assert optimal_return(env, level) == pytest.approx(expected[0, 7], rel=1e-5)
    greedy, _ = simulate(env, level, values)
    assert_attains(greedy, float(expected[0, 7]))
