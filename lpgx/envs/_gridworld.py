"""The LPG grid world: levels, environment state and dynamics.

Cells are addressed by a flat index ``pos = row * g + col`` with the *level's* grid size ``g``
(not the padded maximum ``G``). Every array is padded to the level set's maxima (``G`` cells per
side, ``N`` object slots, ``T`` object types), so levels of one set stack, vmap and scatter under
`jit`; padding never changes the dynamics (see `Level.pad`).
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .._threefry import subkeys
from .._typing import BoolScalar, FloatScalar, IntScalar, PRNGKeyArray
from ._base import AbstractEnvironment, InputLayout, ObsSpec

__all__ = ["NUM_ACTIONS", "EnvState", "GridWorld", "Level", "place_in_free_cells"]

NUM_ACTIONS = 5
# Actions: 0 up, 1 down, 2 left, 3 right, 4 no-op.
_DROW = (-1, 1, 0, 0, 0)
_DCOL = (0, 0, -1, 1, 0)
# The name of the time feature's input (`GridWorld.input_layout`): no plane or object code.
_TIME_INPUT = 1 << 30


class Level(eqx.Module):
    """One grid-world level, padded to a level set's maxima.

    Object slot ``i`` is used when ``i < n_objs``; its type indexes the per-type arrays.
    ``obj_pos`` holds the objects' fixed cells in tabular mode (and is ignored by a
    non-tabular reset, which places objects at random free cells).
    """

    grid_size: Int[Array, ""]
    walls: Bool[Array, " cells"]
    start_pos: Int[Array, ""]
    n_objs: Int[Array, ""]
    obj_types: Int[Array, " objs"]
    obj_pos: Int[Array, " objs"]
    obj_rewards: Float[Array, " types"]
    obj_p_terminate: Float[Array, " types"]
    obj_p_respawn: Float[Array, " types"]
    max_steps: Int[Array, ""]

    @property
    def max_grid_size(self) -> int:
        """The padded grid size ``G`` (``walls`` has ``G * G`` entries)."""
        return _isqrt(self.walls.shape[-1])

    @property
    def max_objects(self) -> int:
        return self.obj_types.shape[-1]

    @property
    def max_types(self) -> int:
        return self.obj_rewards.shape[-1]

    def obj_mask(self) -> Bool[Array, " objs"]:
        """Which object slots are in use."""
        return jnp.arange(self.max_objects, dtype=jnp.int32) < self.n_objs

    def pad(self, max_grid_size: int, max_objects: int, max_types: int) -> "Level":
        """Pad to larger maxima; the padded level behaves exactly like this one."""
        cells = max_grid_size * max_grid_size
        if (
            cells < self.walls.shape[-1]
            or max_objects < self.max_objects
            or max_types < self.max_types
        ):
            raise ValueError(
                f"cannot pad a level with maxima (G={self.max_grid_size}, N={self.max_objects}, "
                f"T={self.max_types}) down to (G={max_grid_size}, N={max_objects}, "
                f"T={max_types}); choose maxima at least as large as the level's."
            )

        def pad_to(x: Array, size: int) -> Array:
            return jnp.pad(x, (0, size - x.shape[-1]))

        return Level(
            grid_size=self.grid_size,
            walls=pad_to(self.walls, cells),
            start_pos=self.start_pos,
            n_objs=self.n_objs,
            obj_types=pad_to(self.obj_types, max_objects),
            obj_pos=pad_to(self.obj_pos, max_objects),
            obj_rewards=pad_to(self.obj_rewards, max_types),
            obj_p_terminate=pad_to(self.obj_p_terminate, max_types),
            obj_p_respawn=pad_to(self.obj_p_respawn, max_types),
            max_steps=self.max_steps,
        )


class EnvState(eqx.Module):
    """Grid-world state within one episode."""

    pos: Int[Array, ""]
    obj_pos: Int[Array, " objs"]
    obj_exists: Bool[Array, " objs"]
    time: Int[Array, ""]


def _isqrt(n: int) -> int:
    r = round(n**0.5)
    if r * r != n:
        raise ValueError(f"a level's wall mask must have G*G entries, got {n}")
    return r


def _divmod(
    pos: Int[Array, "*shape"], g: Int[Array, "*shape"], bound: int
) -> tuple[Int[Array, "*shape"], Int[Array, "*shape"]]:
    """``(pos // g, pos % g)`` for ``0 <= pos < bound`` and ``g >= 1``.

    XLA's CPU backend does not fuse integer division (each one is a kernel of its own, a large
    part of the cost of a small step). ``(pos + 1/2) / g`` lies at least ``1/(2g)`` away from
    any integer, and for ``pos < bound <= 2¹²`` (so ``g <= 64``) float32 computes it to within
    a few units of 2⁻¹¹, far less than that margin: its floor is exactly ``pos // g``. So the
    row is computed in float32 and the column from it; larger grids use integer division.
    """
    if bound > 2**12:
        return pos // g, pos % g
    half = jnp.asarray(0.5, jnp.float32)
    row = jnp.floor((pos.astype(jnp.float32) + half) / g.astype(jnp.float32)).astype(jnp.int32)
    return row, pos - row * g


def _once(x: Float[Array, "*shape"], one: Float[Array, ""]) -> Float[Array, "*shape"]:
    """`x`, computed once: ``x / (x · 0 + one)`` with ``one == 1`` known only at run time
    (exact: `x` is a finite uniform, so the denominator is exactly 1).

    XLA fuses cheap element-wise producers into each of their consumers, so a random draw
    (twenty rounds of integer hashing) used by several outputs of a step is otherwise hashed
    again for every one of them, and for every element of each; a division counts as
    expensive, so XLA computes it, and the draw behind it, once. The denominator has `x`'s
    shape: XLA rewrites a division by a broadcast scalar into a (cheap) multiplication by its
    reciprocal, which it then duplicates again (hashing the respawn draws of a batched step
    twice per step).
    """
    return x / (x * 0.0 + one)


def place_in_free_cells(
    key: PRNGKeyArray, free: Bool[Array, " cells"], want: Bool[Array, " objs"]
) -> tuple[Int[Array, " objs"], Bool[Array, " objs"]]:
    """Give every slot with `want` set its own uniformly random free cell, in slot order.

    Cells chosen for earlier slots are no longer free for later ones. A slot gets no cell when
    none is left. Padding-invariant: appending never-free cells or unwanted slots changes
    nothing for the others (the uniforms are drawn per slot, the cells counted in order).

    **Returns:** `(cells, placed)`.
    """
    return _place(jax.random.uniform(key, want.shape), free, want)


def _place(
    us: Float[Array, " objs"], free: Bool[Array, " cells"], want: Bool[Array, " objs"]
) -> tuple[Int[Array, " objs"], Bool[Array, " objs"]]:
    """`place_in_free_cells` given its uniforms `us` (one per slot).

    Slot i takes the ``k``-th (``k = min(floor(us[i] * left), left - 1)``) of the ``left`` free
    cells not taken by earlier slots, counted in cell order. This is computed without a loop over
    cells: one prefix count of the free cells, the sampling on the slots' indices alone, and one
    lookup of all slots' cells.
    """
    n, m = want.shape[0], free.shape[0]
    slots = jnp.arange(n, dtype=jnp.int32)
    # How many free cells lie at or before each cell: a matrix product with a triangle of ones
    # (exact: 0/1 inputs, float32 accumulation at HIGHEST precision also on GPU/TPU; far
    # cheaper on CPU than XLA's reduce-window `cumsum`).
    cell_ids = jnp.arange(m, dtype=jnp.int32)
    upper = (cell_ids[:, None] <= cell_ids[None, :]).astype(jnp.float32)
    counts = jnp.dot(free.astype(jnp.float32), upper, precision=jax.lax.Precision.HIGHEST).astype(
        jnp.int32
    )
    total = counts[-1]
    # Slot i is placed when wanted and a cell is left, i.e. fewer than `total` earlier slots were
    # wanted; it then draws the k-th of the `left` cells not taken by earlier slots.
    wanted_before = jnp.sum(
        (slots[None, :] < slots[:, None]) & want[None, :], axis=1, dtype=jnp.int32
    )
    placed = want & (wanted_before < total)
    left = total - jnp.minimum(wanted_before, total)
    k = jnp.minimum(jnp.floor(us * left.astype(us.dtype)).astype(jnp.int32), left - 1)
    # Turn "the k-th of the cells left" into "the r-th free cell" (decoding a Lehmer code, last
    # slot first): a later slot's index at or above a placed earlier slot's moves up by one.
    r = k
    for i in reversed(range(n - 1)):
        r = jnp.where((slots > i) & placed[i] & (r >= r[i]), r + 1, r)
    # An identity written as a reduction, so that XLA materialises `r` instead of fusing the
    # decoding into (and so repeating it for every cell of) the lookup below.
    r = jnp.sum(jnp.where(slots[:, None] == slots[None, :], r[None, :], 0), axis=1, dtype=jnp.int32)
    # The r-th free cell is the number of cells with at most r free cells at or before them
    # (0 when no cell is free: r = -1).
    cells = jnp.sum(counts[None, :] <= r[:, None], axis=1, dtype=jnp.int32)
    return cells, placed


class GridWorld(AbstractEnvironment[Level, EnvState]):
    """The grid world of the LPG paper, as implemented by GROOVE (with lpgx's fixes).

    **Observations.** Tabular (``tabular=True``): the index ``pos + G² · Σᵢ existsᵢ · 2ⁱ`` of a
    one-hot vector of length ``G² · 2ᴺ`` (an `int32` scalar; agents look it up in a table).
    Non-tabular: a float vector, the agent's one-hot cell followed by one occupancy plane per
    object type (``(1 + T) · G²``). With ``time_feature=True`` the observation is always a float
    vector (the tabular one-hot written out) with ``0.001 · time`` appended.
    """

    max_grid_size: int = eqx.field(static=True)
    max_objects: int = eqx.field(static=True)
    max_types: int = eqx.field(static=True)
    tabular: bool = eqx.field(static=True)
    time_feature: bool = eqx.field(static=True, default=False)
    num_actions: ClassVar[int] = NUM_ACTIONS  # pyright: ignore[reportIncompatibleVariableOverride]

    @property
    def num_cells(self) -> int:
        return self.max_grid_size * self.max_grid_size

    @property
    def num_tabular_states(self) -> int:
        """Length of the tabular one-hot (``G² · 2ᴺ``)."""
        return self.num_cells * 2**self.max_objects

    @property
    def obs_size(self) -> int:
        """Number of table rows (tabular index obs) or the length of the float observation."""
        base = self.num_tabular_states if self.tabular else self.num_cells * (1 + self.max_types)
        return base + int(self.time_feature)

    @property
    def index_obs(self) -> bool:
        """Whether observations are integer indices rather than float vectors."""
        return self.tabular and not self.time_feature

    @property
    def obs_spec(self) -> ObsSpec:
        if self.index_obs:
            return ObsSpec.index(self.obs_size)
        return ObsSpec.vector(self.obs_size)

    def check_level(self, level: Level) -> None:
        """Raise if `level` is not padded to this environment's maxima."""
        shapes = (level.max_grid_size, level.max_objects, level.max_types)
        if shapes != (self.max_grid_size, self.max_objects, self.max_types):
            raise ValueError(
                f"level padded to (G, N, T) = {shapes} but the environment expects "
                f"{(self.max_grid_size, self.max_objects, self.max_types)}; use "
                "`level.pad(...)` or the level set's own environment."
            )

    def input_layout(self, level: Level) -> InputLayout:
        """Inputs named by ``(object-existence code, cell)`` for tabular observations and by
        ``(plane, cell)`` for the planes of the non-tabular one, with cells in the level's own
        ``g × g`` coordinates; the fan-in is the level's unpadded width (``g² · 2ⁿ`` tabular,
        ``(1 + types) · g²`` planes; ``+ 1`` with the time feature). A tabular level then
        starts every agent from the same policy in any set it is padded into."""
        c = self.num_cells
        g2 = level.grid_size * level.grid_size
        inputs = jnp.arange(
            self.num_tabular_states if self.tabular else self.obs_size - int(self.time_feature),
            dtype=jnp.int32,
        )
        ids = jnp.stack([inputs // c, inputs % c], axis=-1)
        if self.tabular:
            fan_in = g2 * jnp.left_shift(jnp.ones((), jnp.int32), level.n_objs)
        else:
            types = jnp.max(jnp.where(level.obj_mask(), level.obj_types + 1, 0))
            fan_in = (1 + types) * g2
        if self.time_feature:
            ids = jnp.concatenate([ids, jnp.asarray([[_TIME_INPUT, 0]], jnp.int32)])
            fan_in = fan_in + 1
        return InputLayout(ids=ids, fan_in=fan_in.astype(jnp.int32))

    def _cells(self) -> Int[Array, " cells"]:
        return jnp.arange(self.num_cells, dtype=jnp.int32)

    def _open_cells(self, level: Level) -> Bool[Array, " cells"]:
        g = level.grid_size
        return (self._cells() < g * g) & ~level.walls

    def reset(self, key: PRNGKeyArray, level: Level) -> tuple[EnvState, Array]:
        mask = level.obj_mask()
        if self.tabular:
            obj_pos, exists = level.obj_pos, mask
        else:
            free = self._open_cells(level) & (self._cells() != level.start_pos)
            obj_pos, exists = place_in_free_cells(key, free, mask)
        state = EnvState(
            pos=level.start_pos,
            obj_pos=obj_pos,
            obj_exists=exists,
            time=jnp.zeros((), jnp.int32),
        )
        return state, self.observe(level, state)

    def _move(self, level: Level, pos: IntScalar, action: IntScalar) -> IntScalar:
        g = level.grid_size
        row, col = _divmod(pos, g, self.num_cells)
        row2 = row + jnp.asarray(_DROW, jnp.int32)[action]
        col2 = col + jnp.asarray(_DCOL, jnp.int32)[action]
        inside = (row2 >= 0) & (row2 < g) & (col2 >= 0) & (col2 < g)
        target = jnp.where(inside, row2 * g + col2, pos)
        return jnp.where(level.walls[target], pos, target)

    def step(
        self, key: PRNGKeyArray, level: Level, state: EnvState, action: IntScalar
    ) -> tuple[EnvState, Array, FloatScalar, BoolScalar]:
        if self.tabular:  # placement and the tabular reset draw nothing: their keys are unused
            k_respawn, k_term = subkeys(key, 4, (0, 2))
            k_place = k_reset = k_term
        else:
            k_respawn, k_place, k_term, k_reset = jax.random.split(key, 4)
        mask = level.obj_mask()
        pos = self._move(level, state.pos, action)

        collected = state.obj_exists & (state.obj_pos == pos) & mask
        p_respawn = level.obj_p_respawn[level.obj_types]
        # The uniforms are computed once (see `_once`); `one` is 1 computed at run time.
        one = level.grid_size.astype(jnp.float32) / level.grid_size.astype(jnp.float32)
        u_respawn = _once(jax.random.uniform(k_respawn, mask.shape), one)
        respawn = (u_respawn < p_respawn) & ~state.obj_exists & mask
        obj_pos = state.obj_pos
        if not self.tabular:
            # Respawned objects move to fresh random cells: not a wall, not the agent's cell,
            # not a cell held by another object (the GROOVE reference's placement lets walls
            # through).
            staying = state.obj_exists & ~collected
            held = jnp.any(
                (self._cells()[:, None] == state.obj_pos[None, :]) & staying[None, :], axis=1
            )
            free = self._open_cells(level) & (self._cells() != pos) & ~held
            new_pos, placed = place_in_free_cells(k_place, free, respawn)
            obj_pos = jnp.where(placed, new_pos, obj_pos)
            respawn = placed
        exists = (state.obj_exists | respawn) & ~collected & mask

        p_term = jnp.sum(jnp.where(collected, level.obj_p_terminate[level.obj_types], 0.0))
        terminated = _once(jax.random.uniform(k_term), one) < p_term
        reward = jnp.sum(jnp.where(collected, level.obj_rewards[level.obj_types], 0.0))
        time = state.time + 1
        done = (time >= level.max_steps) | terminated

        next_state = EnvState(pos=pos, obj_pos=obj_pos, obj_exists=exists, time=time)
        reset_state, _ = self.reset(k_reset, level)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
        return next_state, self.observe(level, next_state), reward, done

    def tabular_index(self, state: EnvState) -> IntScalar:
        """The tabular state index ``pos + G² · Σᵢ existsᵢ · 2ⁱ``."""
        bits = jnp.left_shift(
            jnp.ones((), jnp.int32), jnp.arange(self.max_objects, dtype=jnp.int32)
        )
        return state.pos + self.num_cells * jnp.sum(
            jnp.where(state.obj_exists, bits, 0), dtype=jnp.int32
        )

    def decode_tabular_index(self, index: IntScalar) -> tuple[IntScalar, Bool[Array, " objs"]]:
        """Invert `tabular_index`: ``(pos, obj_exists)``."""
        pos = index % self.num_cells
        code = index // self.num_cells
        bits = jnp.arange(self.max_objects, dtype=jnp.int32)
        return pos, (jnp.right_shift(code, bits) & 1).astype(bool)

    def observe(self, level: Level, state: EnvState) -> Array:
        """The observation of `state` (see the class docstring for its layout)."""
        if self.index_obs:
            return self.tabular_index(state)
        if self.tabular:
            obs = jax.nn.one_hot(self.tabular_index(state), self.num_tabular_states)
        else:
            # Ones scattered into zeros: the agent's cell in plane 0, each existing object's in
            # plane 1 + its type (anything off the planes is dropped, as the one-hot
            # comparisons it replaces would match nothing).
            c, t = self.num_cells, level.obj_types
            size = (1 + self.max_types) * c
            on_obj = state.obj_exists & (t >= 0) & (t < self.max_types)
            on_obj = on_obj & (state.obj_pos >= 0) & (state.obj_pos < c)
            on_pos = (state.pos >= 0) & (state.pos < c)
            index = jnp.concatenate(
                [
                    jnp.where(on_pos, state.pos, size)[None],
                    jnp.where(on_obj, (1 + t) * c + state.obj_pos, size),
                ]
            )
            obs = jnp.zeros((size,), jnp.float32).at[index].set(1.0, mode="drop")
        if self.time_feature:
            time = (0.001 * state.time.astype(jnp.float32))[None]
            obs = jnp.concatenate([obs, time])
        return obs
