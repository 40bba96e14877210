"""`place_in_free_cells` and the non-tabular observation against plain NumPy references.

The placement is computed without a loop over cells (a prefix count, the sampling on the slots'
indices, one lookup); the reference below is the sequential definition it must match exactly for
the same uniforms: slot by slot, take the ``min(floor(u * left), left - 1)``-th of the ``left``
cells still free, in cell order.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpgx.envs import EnvState, GridWorld, get_level_set, place_in_free_cells


def _reference(us: np.ndarray, free: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    free = free.copy()
    cells, placed = [], []
    for u, w in zip(us, want, strict=True):
        left = int(free.sum())
        k = min(int(np.floor(np.float32(u) * np.float32(left))), left - 1)
        # The k-th free cell; cell 0 when none is left (k = -1).
        cell = int(np.flatnonzero(np.cumsum(free) > k)[0]) if left > 0 else 0
        ok = bool(w) and left > 0
        if ok:
            free[cell] = False
        cells.append(cell)
        placed.append(ok)
    return np.asarray(cells, np.int32), np.asarray(placed)


_place = jax.jit(jax.vmap(place_in_free_cells))


@pytest.mark.parametrize("cells", [1, 4, 7, 49, 100, 121])
@pytest.mark.parametrize("slots", [1, 3, 7])
def test_placement_matches_the_sequential_reference(cells: int, slots: int) -> None:
    batch = 200
    k_density, k_free, k_want, k_place = jax.random.split(jax.random.key(cells * 10 + slots), 4)
    # From no free cell at all to all free, so that slots often run out of cells.
    density = jax.random.uniform(k_density, (batch, 1)) ** 2
    free = jax.random.uniform(k_free, (batch, cells)) < density
    want = jax.random.uniform(k_want, (batch, slots)) < 0.8
    keys = jax.random.split(k_place, batch)
    got_cells, got_placed = _place(keys, free, want)
    us = np.asarray(jax.vmap(lambda k: jax.random.uniform(k, (slots,)))(keys))
    for b in range(batch):
        ref_cells, ref_placed = _reference(us[b], np.asarray(free[b]), np.asarray(want[b]))
        np.testing.assert_array_equal(np.asarray(got_placed[b]), ref_placed)
        np.testing.assert_array_equal(np.asarray(got_cells[b]), ref_cells)


def test_placement_unbatched_edge_cases(key: jax.Array) -> None:
    none_free = jnp.zeros(9, bool)
    cells, placed = place_in_free_cells(key, none_free, jnp.ones(3, bool))
    np.testing.assert_array_equal(np.asarray(placed), [False, False, False])
    np.testing.assert_array_equal(np.asarray(cells), [0, 0, 0])
    one_free = jnp.zeros(9, bool).at[5].set(True)
    cells, placed = place_in_free_cells(key, one_free, jnp.asarray([False, True, True]))
    np.testing.assert_array_equal(np.asarray(placed), [False, True, False])
    np.testing.assert_array_equal(np.asarray(cells), [5, 5, 0])


def _observation_reference(env: GridWorld, obj_types: np.ndarray, state: EnvState) -> np.ndarray:
    """The one-hot comparisons of the layout: nothing matches off the planes."""
    cells = np.arange(env.num_cells)
    agent = (cells == int(state.pos)).astype(np.float32)
    planes = np.zeros((env.max_types, env.num_cells), np.float32)
    for t in range(env.max_types):
        for i in range(env.max_objects):
            if bool(state.obj_exists[i]) and int(obj_types[i]) == t:
                planes[t] = np.maximum(planes[t], cells == int(state.obj_pos[i]))
    return np.concatenate([agent, planes.reshape(-1)])


def test_non_tabular_observation_of_arbitrary_states(key: jax.Array) -> None:
    # Overlapping objects and values off the grid or off the type range included.
    level_set = get_level_set("rand_all")
    env = level_set.env()
    level = level_set.sample(key).level
    observe = jax.jit(env.observe)
    rng = np.random.default_rng(0)
    n, cells = env.max_objects, env.num_cells
    for _ in range(200):
        obj_types = rng.integers(-2, env.max_types + 2, n).astype(np.int32)
        lvl = level.__class__(**{**vars(level), "obj_types": jnp.asarray(obj_types)})
        state = EnvState(
            pos=jnp.asarray(rng.integers(-3, cells + 3), jnp.int32),
            obj_pos=jnp.asarray(rng.integers(-3, cells + 3, n), jnp.int32),
            obj_exists=jnp.asarray(rng.random(n) < 0.7),
            time=jnp.zeros((), jnp.int32),
        )
        got = np.asarray(observe(lvl, state))
        np.testing.assert_array_equal(got, _observation_reference(env, obj_types, state))
