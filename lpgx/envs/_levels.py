"""Named level sets: the LPG paper's levels, MiniMax mazes and GROOVE's random distributions.

A `LevelSet` is static configuration (hashable, usable as a `jit` static argument) whose
`sample(key)` draws a `Task` (level + lifetime) padded to the set's maxima. Sets made of several
families (``tabular``, ``mazes``) draw one family uniformly per sample (decision 3).
"""

import functools
import importlib.resources
import json
import math
from dataclasses import dataclass, field

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


Scalar = int | float
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


def _column_walls(g: int, col: int, gaps: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(r * g + col for r in range(g) if r not in gaps)


def _row_walls(g: int, row: int, gaps: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(row * g + c for c in range(g) if c not in gaps)


_TABULAR_LIFETIME = 2500
_RAND_LIFETIME = 25000
_SHORT_LIFETIME = 250
_MEDIUM_LIFETIME = 1000
_MAZE_LIFETIME = 2500


def _fixed(
    name: str,
    g: int,
    types: tuple[int, ...],
    rewards: tuple[float, ...],
    p_terminate: tuple[float, ...],
    p_respawn: tuple[float, ...],
    steps: int,
    lifetime: int,
    walls: tuple[int, ...] = (),
) -> LevelFamily:
    return LevelFamily(
        name=name,
        grid_size=g,
        n_objs=len(types),
        obj_types=types,
        num_types=len(rewards),
        rewards=rewards,
        p_terminate=p_terminate,
        p_respawn=p_respawn,
        walls=walls,
        max_steps=steps,
        lifetime=lifetime,
    )


def _lpg_families(lifetime: int, prefix: str = "") -> dict[str, LevelFamily]:
    return {
        "dense": _fixed(
            f"{prefix}dense",
            11,
            (0, 0, 1, 2),
            (1.0, -1.0, -1.0),
            (0.0, 0.5, 0.0),
            (0.05, 0.1, 0.5),
            500,
            lifetime,
        ),
        "sparse": _fixed(
            f"{prefix}sparse", 13, (0, 1), (1.0, -1.0), (1.0, 1.0), (0.0, 0.0), 50, lifetime
        ),
        "long": _fixed(
            f"{prefix}long", 11, (0, 0, 1, 1), (1.0, -1.0), (0.0, 0.5), (0.01, 1.0), 1000, lifetime
        ),
        # Decision 13: 7 objects (2 of type A, 5 of type B) as in the LPG paper.
        "longer": _fixed(
            f"{prefix}longer",
            9,
            (0, 0, 1, 1, 1, 1, 1),
            (1.0, -1.0),
            (0.1, 0.8),
            (0.01, 1.0),
            2000,
            lifetime,
            walls=_column_walls(9, 4, gaps=(1, 7)),
        ),
        "long_dense": _fixed(
            f"{prefix}long_dense",
            11,
            (0, 0, 0, 0),
            (1.0,),
            (0.0,),
            (0.005,),
            2000,
            lifetime,
            walls=tuple(
                sorted(set(_column_walls(11, 5, gaps=(0, 7)) + _row_walls(11, 4, gaps=(2, 8))))
            ),
        ),
    }


def _procedural(
    name: str,
    grid: tuple[int, int],
    objs: tuple[int, int],
    n_walls: int,
    wall_range: int,
    steps: tuple[int, int],
    lifetime: IntParam,
) -> LevelFamily:
    n_types = objs[1]
    return LevelFamily(
        name=name,
        grid_size=UniformChoice(*grid),
        n_objs=UniformChoice(*objs),
        obj_types=None,
        num_types=n_types,
        rewards=UniformFirstPositive(),
        p_terminate=LogUniform(1e-2, 1.0),
        p_respawn=LogUniform(1e-3, 1e-1),
        walls=RandomWalls(n_walls, wall_range),
        max_steps=LogUniform(float(steps[0]), float(steps[1]), integer=True),
        lifetime=lifetime,
    )


@functools.cache
def maze_layouts() -> dict[str, tuple[str, ...]]:
    """The nine MiniMax maze designs (13×13; ``#`` is a wall)."""
    text = importlib.resources.files("lpgx.envs").joinpath("data/minimax_mazes.json").read_text()
    return {name: tuple(rows) for name, rows in json.loads(text)["mazes"].items()}


def _maze_family(name: str, rows: tuple[str, ...]) -> LevelFamily:
    g = len(rows)
    walls = tuple(r * g + c for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "#")
    return LevelFamily(
        name=name,
        grid_size=g,
        n_objs=3,
        obj_types=(0, 1, 2),
        num_types=3,
        rewards=Uniform(0.0, 1.0),
        p_terminate=LogUniform(1e-2, 1.0),
        p_respawn=LogUniform(1e-3, 1e-1),
        walls=walls,
        max_steps=LogUniform(25.0, 50.0, integer=True),
        lifetime=_MAZE_LIFETIME,
    )


@functools.cache
def _registry() -> dict[str, LevelSet]:
    sets: dict[str, LevelSet] = {}
    lpg = _lpg_families(_TABULAR_LIFETIME)
    for name, fam in lpg.items():
        sets[name] = LevelSet(
            name, (fam,), tabular=True, description=f"LPG paper tabular level `{name}`"
        )
    sets["tabular"] = LevelSet(
        "tabular",
        tuple(lpg.values()),
        tabular=True,
        description="one of the five LPG tabular levels per sample",
    )

    rand = _lpg_families(_RAND_LIFETIME, prefix="rand_")
    for base in ("dense", "long"):
        sets[f"rand_{base}"] = LevelSet(
            f"rand_{base}",
            (rand[base],),
            tabular=False,
            description=f"`{base}` with random object respawn cells (non-tabular)",
        )
    extra = {
        "rand_small": _fixed(
            "rand_small",
            7,
            (0, 0, 1, 1),
            (1.0, -1.0),
            (0.0, 0.5),
            (0.05, 0.1),
            500,
            _RAND_LIFETIME,
            walls=(9, 25),
        ),
        "rand_sparse": _fixed(
            "rand_sparse", 7, (0, 1, 1), (1.0, -1.0), (1.0, 1.0), (1.0, 1.0), 50, _RAND_LIFETIME
        ),
        "rand_very_dense": _fixed(
            "rand_very_dense", 11, (0,), (1.0,), (0.0,), (1.0,), 2000, _RAND_LIFETIME
        ),
        "rand_tiny": _fixed("rand_tiny", 3, (0, 0), (1.0,), (0.0,), (1.0,), 50, _SHORT_LIFETIME),
    }
    for name, fam in extra.items():
        sets[name] = LevelSet(
            name,
            (fam,),
            tabular=False,
            description="non-tabular LPG level"
            if name != "rand_tiny"
            else "tiny non-tabular smoke-test level",
        )

    mazes = {name: _maze_family(name, rows) for name, rows in maze_layouts().items()}
    for name, fam in mazes.items():
        sets[name] = LevelSet(
            name, (fam,), tabular=True, description="MiniMax maze, random start and objects"
        )
    sets["mazes"] = LevelSet(
        "mazes",
        tuple(mazes.values()),
        tabular=True,
        description="one of the nine MiniMax mazes per sample",
    )

    def proc(name: str, lifetime: IntParam, tabular: bool = True, desc: str = "") -> None:
        fam = _procedural(name, (4, 10), (1, 5), 15, 100, (20, 750), lifetime)
        sets[name] = LevelSet(name, (fam,), tabular=tabular, description=desc)

    proc("all", _MEDIUM_LIFETIME, desc="GROOVE's random tabular levels, lifetime 1000")
    proc("all_shortlife", _SHORT_LIFETIME, desc="`all` with lifetime 250")
    proc(
        "all_randlife",
        LogUniform(50.0, 250.0, integer=True),
        desc="`all` with lifetime logU[50, 250]",
    )
    proc(
        "all_vrandlife",
        LogUniform(10.0, 250.0, integer=True),
        desc="`all` with lifetime logU[10, 250]",
    )
    proc(
        "rand_all", _RAND_LIFETIME, tabular=False, desc="`all` levels, non-tabular, lifetime 25000"
    )
    for name, grid, objs, walls, wall_range, steps, life in (
        ("small", (4, 6), (1, 3), 7, 36, (20, 100), _SHORT_LIFETIME),
        ("medium", (6, 8), (2, 4), 10, 64, (100, 250), _MEDIUM_LIFETIME),
        ("large", (8, 10), (2, 5), 15, 100, (250, 750), _TABULAR_LIFETIME),
    ):
        fam = _procedural(name, grid, objs, walls, wall_range, steps, life)
        sets[name] = LevelSet(
            name, (fam,), tabular=True, description=f"{name} random tabular levels"
        )
    return sets


LEVEL_SET_NAMES: tuple[str, ...] = tuple(_registry())


def get_level_set(name: str) -> LevelSet:
    """Look up a level set by name; the error lists the valid names."""
    sets = _registry()
    if name not in sets:
        raise ValueError(f"unknown level set {name!r}; choose one of: {', '.join(sets)}")
    return sets[name]
