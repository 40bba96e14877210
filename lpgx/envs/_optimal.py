"""Optimal returns of tabular grid-world levels by exact finite-horizon dynamic programming.

The state of a tabular episode is ``(time, pos, obj_exists)``: objects sit at their static cells
``level.obj_pos``, so only their existence bits change. `optimal_values` runs backward induction
over the whole episode, with the respawn and early-termination probabilities taken exactly, so
any return can be reported as a fraction of `optimal_return`.

The DP works on the level's *own* grid size ``g`` and object count ``n`` (not the padded maxima):
a state is ``(pos, code)`` with ``pos = row * g + col`` (as in `EnvState.pos`) and
``code = Σ_{i<n} existsᵢ · 2ⁱ``. The expectation over the product-Bernoulli respawn is taken one
object axis at a time (a ``2 × 2`` operator per object, which also forces a collected object's next
existence to zero), never through a ``2ⁿ × 2ⁿ`` transition matrix.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._typing import IntScalar
from ._gridworld import EnvState, GridWorld, Level

__all__ = ["OptimalValues", "greedy_action", "optimal_return", "optimal_values"]

# Same action convention as `gridworld`: 0 up, 1 down, 2 left, 3 right, 4 no-op.
_DROW = (-1, 1, 0, 0, 0)
_DCOL = (0, 0, -1, 1, 0)


class OptimalValues(eqx.Module):
    """The solution of a tabular level's finite-horizon DP.

    **Attributes:**

    - `start_values`: ``V₀[pos, code]``, the optimal expected return of a whole episode started
        (at time 0) in state ``(pos, code)``.
    - `actions`: ``actions[t, pos, code]``, an optimal (greedy) action at time ``t`` (`int8`).
    - `grid_size`, `n_objs`: the level's own ``g`` and ``n`` the tables are indexed with.
    """

    start_values: Float[Array, "cells codes"]
    actions: Int[Array, "steps cells codes"]
    grid_size: int = eqx.field(static=True)
    n_objs: int = eqx.field(static=True)

    @property
    def max_steps(self) -> int:
        return self.actions.shape[0]


def _check_tabular(env: GridWorld, level: Level) -> None:
    if not env.tabular:
        raise ValueError(
            "optimal return is only defined for tabular levels: in a non-tabular environment "
            "respawned objects move to random cells, so the state is not (pos, obj_exists); "
            "use a tabular level set's environment."
        )
    env.check_level(level)
    if level.grid_size.ndim != 0:
        raise ValueError(
            f"optimal_values takes one level, got a batch of shape {level.grid_size.shape}; "
            "loop over the levels (the DP's table shapes depend on each level's g and n)."
        )


def _move_table(level: Level, g: int) -> np.ndarray:
    """``move[pos, action]``: the next cell, with border moves cancelled and walls blocking."""
    walls = np.asarray(level.walls)[: g * g]
    pos = np.arange(g * g)
    row, col = pos // g, pos % g
    row2 = row[:, None] + np.asarray(_DROW)[None, :]
    col2 = col[:, None] + np.asarray(_DCOL)[None, :]
    inside = (row2 >= 0) & (row2 < g) & (col2 >= 0) & (col2 < g)
    target = np.where(inside, row2 * g + col2, pos[:, None])
    return np.where(walls[target], pos[:, None], target).astype(np.int32)


@eqx.filter_jit
def _solve(
    move: Int[Array, "cells actions"],
    at: Float[Array, "objs cells"],
    rewards: Float[Array, " objs"],
    p_terminate: Float[Array, " objs"],
    p_respawn: Float[Array, " objs"],
    max_steps: int,
) -> tuple[Float[Array, "cells codes"], Int[Array, "steps cells codes"]]:
    n, cells = at.shape
    codes = 2**n
    bits = (
        jnp.right_shift(jnp.arange(codes, dtype=jnp.int32)[:, None], jnp.arange(n)[None, :]) & 1
    ).astype(jnp.float32)  # [codes, n]
    # Reward and termination probability of arriving at `pos` with existence `code`: the
    # objects that existed and sit on the new cell are collected.
    reward = (at * rewards[:, None]).T @ bits.T  # [cells, codes]
    p_term = jnp.minimum((at * p_terminate[:, None]).T @ bits.T, 1.0)
    # Per object, the 2×2 operator from its current existence (row) to the distribution of its
    # next existence (column): absent → Bernoulli(q); present → stays present, or is forced to
    # zero if collected (the agent arrived on its cell). Respawn happens before the removal, so a
    # collected object cannot reappear on the same step.
    q = p_respawn[:, None]
    absent = jnp.stack([1.0 - q, q], axis=-1)  # [n, 1, 2]
    present = jnp.stack([at, 1.0 - at], axis=-1)  # [n, cells, 2]: collected → 0
    ops = jnp.stack([jnp.broadcast_to(absent, present.shape), present], axis=-2)  # [n, cells, 2, 2]

    def backup(
        v_next: Float[Array, "cells codes"], _: None
    ) -> tuple[Float[Array, "cells codes"], Int[Array, "cells codes"]]:
        w = v_next
        for i in range(n):  # object i is bit i of the code: axis 2 of [cells, hi, 2, lo]
            w = w.reshape(cells, 2 ** (n - 1 - i), 2, 2**i)
            w = jnp.einsum("pab,phbl->phal", ops[i], w)
        w = w.reshape(cells, codes)
        arrive = reward + (1.0 - p_term) * w  # a step landing on pos, objects `code` before it
        q_values = arrive[move]  # [cells, actions, codes]
        return jnp.max(q_values, axis=1), jnp.argmax(q_values, axis=1).astype(jnp.int8)

    v_end = jnp.zeros((cells, codes), jnp.float32)
    v_start, actions = jax.lax.scan(backup, v_end, None, length=max_steps, reverse=True)
    return v_start, actions


def optimal_values(env: GridWorld, level: Level) -> OptimalValues:
    """Solve a tabular level by backward induction over its ``max_steps``.

    The level must be concrete (not traced): its ``g``, ``n_objs`` and ``max_steps`` fix the
    table shapes. Memory is ``max_steps · g² · 2ⁿ`` bytes for the greedy actions.

    **Arguments:**

    - `env`: a tabular `GridWorld` the level is padded for.
    - `level`: one (unbatched) level.

    **Returns:** the `OptimalValues` (``V₀`` and the greedy action of every time and state).

    **Raises:** `ValueError` for a non-tabular environment or a mis-padded or batched level.
    """
    _check_tabular(env, level)
    g = int(level.grid_size)
    n = int(level.n_objs)
    max_steps = int(level.max_steps)
    if max_steps < 1:
        raise ValueError(f"a level needs max_steps >= 1, got {max_steps}")
    types = np.asarray(level.obj_types)[:n]
    obj_pos = np.asarray(level.obj_pos)[:n]
    at = (obj_pos[:, None] == np.arange(g * g)[None, :]).astype(np.float32)

    def per_object(x: Array) -> Array:
        return jnp.asarray(np.asarray(x, np.float32)[types])

    v_start, actions = _solve(
        jnp.asarray(_move_table(level, g)),
        jnp.asarray(at),
        per_object(level.obj_rewards),
        per_object(level.obj_p_terminate),
        per_object(level.obj_p_respawn),
        max_steps,
    )
    return OptimalValues(start_values=v_start, actions=actions, grid_size=g, n_objs=n)


def optimal_return(env: GridWorld, level: Level) -> float:
    """The optimal expected undiscounted return of one episode of a tabular level.

    The episode starts at ``level.start_pos`` with every object present, as `GridWorld.reset`.

    **Arguments:**

    - `env`: a tabular `GridWorld` the level is padded for.
    - `level`: one concrete (unbatched) level.

    **Returns:** the optimal expected return, a Python float.

    **Raises:** `ValueError` for a non-tabular environment.
    """
    values = optimal_values(env, level)
    all_present = 2**values.n_objs - 1
    return float(values.start_values[int(level.start_pos), all_present])


def greedy_action(values: OptimalValues, state: EnvState) -> IntScalar:
    """The optimal action in an environment state (works under `jit` and `vmap`).

    Uses ``state.time`` (clipped to the episode), ``state.pos`` (a flat cell in the level's own
    grid, like the DP's) and the existence of the first ``n_objs`` object slots.

    **Arguments:**

    - `values`: the `OptimalValues` of the level `state` belongs to.
    - `state`: an `EnvState` of a tabular `GridWorld`.

    **Returns:** the greedy action, an `int32` scalar.
    """
    n = values.n_objs
    bits = jnp.left_shift(jnp.ones((), jnp.int32), jnp.arange(n, dtype=jnp.int32))
    code = jnp.sum(jnp.where(state.obj_exists[:n], bits, 0), dtype=jnp.int32)
    t = jnp.clip(state.time, 0, values.max_steps - 1)
    return values.actions[t, state.pos, code].astype(jnp.int32)
