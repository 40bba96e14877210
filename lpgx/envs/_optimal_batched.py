"""Optimal returns of many tabular levels at once: the DP of `lpgx.optimal_return`, on the
padded shapes of a level set, vmapped over levels and compiled once.

`optimal_return` solves one level on its own grid and object count (concrete shapes), so a
batch of levels of a procedural set would compile once per distinct ``(g, n, max_steps)``. Here a
level keeps its own indexing (``pos = row * g + col`` with a traced ``g``) inside the set's padded
tables: cells ``≥ g²`` are unreachable, object slots ``≥ n`` sit on no cell and stay present
(so they never pay or end an episode), and backward induction runs over the batch's longest
episode with the value held at zero past each level's own ``max_steps``. The result equals
`optimal_return` level by level (tested).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._gridworld import GridWorld, Level

__all__ = ["optimal_returns"]

_DROW = np.asarray([-1, 1, 0, 0, 0], np.int32)  # same actions as `GridWorld`; NumPy: importing
_DCOL = np.asarray([0, 0, -1, 1, 0], np.int32)  # lpgx must not start JAX (jax.distributed)


def _one(level: Level, horizon: int) -> Float[Array, ""]:
    cells = level.walls.shape[-1]
    slots = level.obj_types.shape[-1]
    codes = 2**slots
    g = level.grid_size
    pos = jnp.arange(cells, dtype=jnp.int32)
    row, col = pos // g, pos % g
    row2 = row[:, None] + _DROW[None, :]
    col2 = col[:, None] + _DCOL[None, :]
    inside = (row2 >= 0) & (row2 < g) & (col2 >= 0) & (col2 < g)
    target = jnp.where(inside, row2 * g + col2, pos[:, None])
    move = jnp.where(level.walls[target], pos[:, None], target)  # [cells, actions]

    used = level.obj_mask()
    at = ((level.obj_pos[:, None] == pos[None, :]) & used[:, None]).astype(jnp.float32)
    rewards = jnp.where(used, level.obj_rewards[level.obj_types], 0.0)
    p_terminate = jnp.where(used, level.obj_p_terminate[level.obj_types], 0.0)
    p_respawn = level.obj_p_respawn[level.obj_types]
    bits = (
        jnp.right_shift(jnp.arange(codes, dtype=jnp.int32)[:, None], jnp.arange(slots)[None, :]) & 1
    ).astype(jnp.float32)  # [codes, slots]
    reward = (at * rewards[:, None]).T @ bits.T  # [cells, codes]
    p_term = jnp.minimum((at * p_terminate[:, None]).T @ bits.T, 1.0)
    q = p_respawn[:, None]
    absent = jnp.stack([1.0 - q, q], axis=-1)
    present = jnp.stack([at, 1.0 - at], axis=-1)
    ops = jnp.stack([jnp.broadcast_to(absent, present.shape), present], axis=-2)

    def backup(v_next: Float[Array, "c k"], t: Array) -> tuple[Float[Array, "c k"], None]:
        w = v_next
        for i in range(slots):
            w = w.reshape(cells, 2 ** (slots - 1 - i), 2, 2**i)
            w = jnp.einsum("pab,phbl->phal", ops[i], w)
        w = w.reshape(cells, codes)
        arrive = reward + (1.0 - p_term) * w
        v = jnp.max(arrive[move], axis=1)
        return jnp.where(t < level.max_steps, v, 0.0), None

    v_end = jnp.zeros((cells, codes), jnp.float32)
    times = jnp.arange(horizon, dtype=jnp.int32)
    v_start, _ = jax.lax.scan(backup, v_end, times, reverse=True)
    return v_start[level.start_pos, codes - 1]


_batched = jax.jit(jax.vmap(_one, in_axes=(0, None)), static_argnums=1)


def optimal_returns(env: GridWorld, levels: Level) -> np.ndarray:
    """The optimal expected return of one episode of each of a batch of tabular levels.

    Identical levels (a fixed level set samples the same one every time) are solved once.

    **Arguments:**

    - `env`: the tabular `GridWorld` the levels are padded for.
    - `levels`: a batch of concrete levels (leading axis: the batch).

    **Returns:** a float64 NumPy array with one optimal return per level.

    **Raises:** `ValueError` for a non-tabular environment or unbatched levels.
    """
    if not env.tabular:
        raise ValueError(
            "optimal returns are only defined for tabular levels (a non-tabular reset moves "
            "objects to random cells); use a tabular level set"
        )
    if levels.grid_size.ndim != 1:
        raise ValueError(
            f"optimal_returns takes a batch of levels, got grid_size of shape "
            f"{levels.grid_size.shape}; use `optimal_return` for one level"
        )
    leaves = [np.asarray(x) for x in jax.tree.leaves(levels)]
    n = leaves[0].shape[0]
    flat = np.concatenate([x.reshape(n, -1).astype(np.float64) for x in leaves], axis=1)
    _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    unique = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[first]), levels)
    horizon = int(np.max(np.asarray(levels.max_steps)))
    values = np.asarray(_batched(unique, horizon), dtype=np.float64)
    return values[np.reshape(inverse, -1)]
