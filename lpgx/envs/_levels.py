"""Named level sets: the LPG paper's levels, MiniMax mazes and GROOVE's random distributions.

A `LevelSet` is static configuration (hashable, usable as a `jit` static argument) whose
`sample(key)` draws a `Task` (level + lifetime) padded to the set's maxima. Sets made of several
families (``tabular``, ``mazes``) draw one family uniformly per sample. The built-in sets are
data: ``data/level_sets.json`` (grids, objects, episode lengths, lifetimes and the samplers of
each parameter) and ``data/minimax_mazes.json`` (the maze layouts), read once.
"""

import functools
import importlib.resources
import json
import math
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .._typing import PRNGKeyArray
from ._base import AbstractTaskDistribution, Task
from ._gridworld import GridWorld, Level, place_in_free_cells

__all__ = [
    "LEVEL_SET_NAMES",
    "LevelFamily",
    "LevelSet",
    "LogUniform",
    "RandomWalls",
    "UniformChoice",
    "UniformFirstPositive",
    "get_level_set",
    "maze_layouts",
]


# --- Parameter samplers (frozen, hashable) ---------------------------------------------------


@dataclass(frozen=True)
class LogUniform:
    """Log-uniform on ``[low, high]``; rounded to the nearest integer when ``integer``."""

    low: float
    high: float
    integer: bool = False

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        x = jnp.exp(
            jax.random.uniform(key, shape, minval=math.log(self.low), maxval=math.log(self.high))
        )
        return jnp.round(x).astype(jnp.int32) if self.integer else x

    @property
    def max(self) -> float:
        return self.high


@dataclass(frozen=True)
class UniformChoice:
    """Integer uniform on ``{low, …, high}`` (inclusive)."""

    low: int
    high: int

    def sample(self, key: PRNGKeyArray) -> Int[Array, ""]:
        return jax.random.randint(key, (), self.low, self.high + 1, dtype=jnp.int32)

    @property
    def max(self) -> int:
        return self.high


@dataclass(frozen=True)
class UniformFirstPositive:
    """Object rewards: the first type ``U(0, 1)``, the others ``U(-1, 1)``."""

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, " n"]:
        k1, k2 = jax.random.split(key)
        first = jax.random.uniform(k1, (1,), minval=0.0, maxval=1.0)
        rest = jax.random.uniform(k2, (n - 1,), minval=-1.0, maxval=1.0)
        return jnp.concatenate([first, rest])


@dataclass(frozen=True)
class Uniform:
    """``U(low, high)`` per type."""

    low: float
    high: float

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, " n"]:
        return jax.random.uniform(key, (n,), minval=self.low, maxval=self.high)


@dataclass(frozen=True)
class RandomWalls:
    """``count`` wall indices drawn without replacement from ``[0, index_range)``.

    Indices at or beyond the level's ``g²`` cells have no effect (as in GROOVE). lpgx drops the
    last-drawn walls where needed so that the start and every object find a free cell.
    """

    count: int
    index_range: int


IntParam = int | UniformChoice | LogUniform
TypeParam = tuple[float, ...] | LogUniform | Uniform | UniformFirstPositive


@dataclass(frozen=True)
class LevelFamily:
    """One distribution of levels (a GROOVE "env mode" that is not a mixture).

    ``obj_types=None`` gives object ``i`` its own type ``i`` (the procedural distributions).
    Fixed ``walls`` are flat indices ``row * g + col``.
    """

    name: str
    grid_size: IntParam
    n_objs: IntParam
    obj_types: tuple[int, ...] | None
    num_types: int
    rewards: TypeParam
    p_terminate: TypeParam
    p_respawn: TypeParam
    walls: tuple[int, ...] | RandomWalls
    max_steps: IntParam
    lifetime: IntParam

    @property
    def max_grid_size(self) -> int:
        return _param_max(self.grid_size)

    @property
    def max_objects(self) -> int:
        return _param_max(self.n_objs)

    @property
    def max_lifetime(self) -> int:
        return _param_max(self.lifetime)

    @property
    def max_episode_steps(self) -> int:
        return _param_max(self.max_steps)

    def sample(
        self, key: PRNGKeyArray, max_grid_size: int, max_objects: int, max_types: int
    ) -> Task:
        """Draw a task padded to the given maxima."""
        keys = jax.random.split(key, 9)
        cells = max_grid_size * max_grid_size
        g = _sample_int(keys[0], self.grid_size)
        n_objs = _sample_int(keys[1], self.n_objs)
        if self.obj_types is None:
            types = jnp.arange(max_objects, dtype=jnp.int32)
        else:
            types = jnp.asarray(
                self.obj_types + (0,) * (max_objects - len(self.obj_types)), jnp.int32
            )

        walls = self._walls(keys[2], g, n_objs, cells)
        open_cells = (jnp.arange(cells, dtype=jnp.int32) < g * g) & ~walls
        want = jnp.arange(max_objects + 1, dtype=jnp.int32) < n_objs + 1
        positions, _ = place_in_free_cells(keys[3], open_cells, want)

        return Task(
            level=Level(
                grid_size=g,
                walls=walls,
                start_pos=positions[0],
                n_objs=n_objs,
                obj_types=types,
                obj_pos=jnp.where(want[1:], positions[1:], 0),
                obj_rewards=_sample_types(keys[4], self.rewards, self.num_types, max_types),
                obj_p_terminate=_sample_types(keys[5], self.p_terminate, self.num_types, max_types),
                obj_p_respawn=_sample_types(keys[6], self.p_respawn, self.num_types, max_types),
                max_steps=_sample_int(keys[7], self.max_steps),
            ),
            lifetime=_sample_int(keys[8], self.lifetime),
        )

    def _walls(
        self, key: PRNGKeyArray, g: Int[Array, ""], n_objs: Int[Array, ""], cells: int
    ) -> Bool[Array, " cells"]:
        if isinstance(self.walls, tuple):
            idx = jnp.asarray(self.walls, jnp.int32)
            return jnp.zeros(cells, bool).at[idx].set(True)
        spec = self.walls
        if spec.index_range > cells:
            raise ValueError(
                f"{self.name}: wall index range {spec.index_range} exceeds {cells} cells"
            )
        drawn = jax.random.choice(key, spec.index_range, (spec.count,), replace=False).astype(
            jnp.int32
        )
        inside = drawn < g * g
        # Keep walls in draw order while the start and all objects still fit.
        budget = g * g - (n_objs + 1)
        keep = inside & (jnp.cumsum(inside, dtype=jnp.int32) <= budget)
        return jnp.zeros(cells, bool).at[drawn].max(keep)


def _param_max(p: IntParam) -> int:
    return p if isinstance(p, int) else round(p.max)


def _sample_int(key: PRNGKeyArray, p: IntParam) -> Int[Array, ""]:
    if isinstance(p, int):
        return jnp.asarray(p, jnp.int32)
    out = p.sample(key)
    return out.astype(jnp.int32)


def _sample_types(
    key: PRNGKeyArray, p: TypeParam, n: int, max_types: int
) -> Float[Array, " types"]:
    if isinstance(p, tuple):
        vals = jnp.asarray(p, jnp.float32)
    elif isinstance(p, LogUniform):
        vals = p.sample(key, (n,))
    else:
        vals = p.sample(key, n)
    return jnp.pad(vals, (0, max_types - n))


# --- Level sets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelSet(AbstractTaskDistribution[Level]):
    """A named, samplable set of tasks with fixed maxima, so its tasks stack and vmap.

    **Attributes:** ``eval_steps`` is the rollout length used to evaluate returns (the set's
    longest episode).
    """

    name: str
    families: tuple[LevelFamily, ...]
    tabular: bool
    description: str
    max_grid_size: int = field(init=False)
    max_objects: int = field(init=False)
    max_types: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_grid_size", max(f.max_grid_size for f in self.families))
        object.__setattr__(self, "max_objects", max(f.max_objects for f in self.families))
        object.__setattr__(self, "max_types", max(f.num_types for f in self.families))

    @property
    def eval_steps(self) -> int:
        return max(f.max_episode_steps for f in self.families)

    @property
    def max_lifetime(self) -> int:
        return max(f.max_lifetime for f in self.families)

    def env(self, time_feature: bool = False) -> GridWorld:
        """The environment all of this set's levels run in."""
        return GridWorld(
            max_grid_size=self.max_grid_size,
            max_objects=self.max_objects,
            max_types=self.max_types,
            tabular=self.tabular,
            time_feature=time_feature,
        )

    def sample(self, key: PRNGKeyArray) -> Task[Level]:
        """Draw one task (jit- and vmap-able)."""
        maxima = (self.max_grid_size, self.max_objects, self.max_types)
        if len(self.families) == 1:
            return self.families[0].sample(key, *maxima)
        k_family, k_task = jax.random.split(key)
        branches = [functools.partial(f.sample, k_task, *maxima) for f in self.families]
        which = jax.random.randint(k_family, (), 0, len(self.families))
        return jax.lax.switch(which, branches)


# --- The built-in level sets, read from data/level_sets.json ---------------------------------


@functools.cache
def maze_layouts() -> dict[str, tuple[str, ...]]:
    """The nine MiniMax maze designs (13×13; ``#`` is a wall)."""
    return {name: tuple(rows) for name, rows in _data("minimax_mazes.json")["mazes"].items()}


def _data(name: str) -> dict[str, Any]:
    """A JSON file of the package's ``envs/data``."""
    return json.loads(importlib.resources.files("lpgx.envs").joinpath(f"data/{name}").read_text())


def _int_param(value: Any) -> IntParam:
    """An integer parameter of ``level_sets.json``: an integer or a sampler."""
    if isinstance(value, int):
        return value
    ((kind, (low, high)),) = value.items()
    if kind == "uniform_int":
        return UniformChoice(int(low), int(high))
    if kind == "log_uniform_int":
        return LogUniform(float(low), float(high), integer=True)
    raise ValueError(f"unknown integer sampler {kind!r} in level_sets.json")


def _type_param(value: Any) -> TypeParam:
    """A per-type parameter of ``level_sets.json``: one number per type or a sampler."""
    if isinstance(value, list):
        return tuple(float(v) for v in value)
    if value == "uniform_first_positive":
        return UniformFirstPositive()
    ((kind, (low, high)),) = value.items()
    if kind == "uniform":
        return Uniform(float(low), float(high))
    if kind == "log_uniform":
        return LogUniform(float(low), float(high))
    raise ValueError(f"unknown per-type sampler {kind!r} in level_sets.json")


def _family(name: str, design: dict[str, Any], lifetime: IntParam) -> LevelFamily:
    """The family `name` of a design of ``level_sets.json`` (see its ``legend``)."""
    if "layout" in design:
        rows = design["layout"]
        grid_size: IntParam = len(rows)
        walls: tuple[int, ...] | RandomWalls = tuple(
            r * len(rows) + c for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "#"
        )
    else:
        grid_size = _int_param(design["grid_size"])
        walls = RandomWalls(int(design["walls"]["count"]), int(design["walls"]["index_range"]))
    if "obj_types" in design:
        obj_types: tuple[int, ...] | None = tuple(int(t) for t in design["obj_types"])
        n_objs: IntParam = len(obj_types)
    else:
        obj_types, n_objs = None, _int_param(design["n_objs"])
    rewards = _type_param(design["rewards"])
    num_types = len(rewards) if isinstance(rewards, tuple) else int(design["num_types"])
    return LevelFamily(
        name=name,
        grid_size=grid_size,
        n_objs=n_objs,
        obj_types=obj_types,
        num_types=num_types,
        rewards=rewards,
        p_terminate=_type_param(design["p_terminate"]),
        p_respawn=_type_param(design["p_respawn"]),
        walls=walls,
        max_steps=_int_param(design["max_steps"]),
        lifetime=lifetime,
    )


def _design(ref: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The design a set's family entry names: one of ``designs``, or a MiniMax maze's layout
    with ``maze_objects``."""
    if "maze" in ref:
        return {**data["maze_objects"], "layout": maze_layouts()[ref["maze"]]}
    return data["designs"][ref["design"]]


@functools.cache
def _registry() -> dict[str, LevelSet]:
    """The built-in level sets of ``data/level_sets.json``, in its order."""
    data = _data("level_sets.json")
    sets: dict[str, LevelSet] = {}
    for entry in data["sets"]:
        if "mixture" in entry:
            families = tuple(f for member in entry["mixture"] for f in sets[member].families)
        else:
            families = tuple(
                _family(ref["name"], _design(ref, data), _int_param(ref["lifetime"]))
                for ref in entry["families"]
            )
        sets[entry["name"]] = LevelSet(
            entry["name"], families, tabular=entry["tabular"], description=entry["description"]
        )
    return sets


LEVEL_SET_NAMES: tuple[str, ...] = tuple(_registry())


def get_level_set(name: str) -> LevelSet:
    """Look up a level set by name; the error lists the valid names."""
    sets = _registry()
    if name not in sets:
        raise ValueError(f"unknown level set {name!r}; choose one of: {', '.join(sets)}")
    return sets[name]
