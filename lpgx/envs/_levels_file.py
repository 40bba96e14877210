"""A user's own grid-world levels, read from (and written to) a JSON file.

The format (``"format": "lpgx-levels/1"``) lists levels exactly as they are played: nothing is
re-randomised except what the grid world itself randomises (a non-tabular reset places objects
at random free cells; a tabular level keeps them where they are written)::

    {
      "format": "lpgx-levels/1",
      "tabular": true,
      "levels": [
        {
          "name": "corner",
          "size": 5,                       # the grid is size × size cells
          "walls": [[1, 1], [1, 2]],       # [row, col] of each wall
          "start": [0, 0],                 # [row, col] of the agent's start
          "objects": [{"type": 0, "cell": [4, 4]}],
          "types": [{"reward": 1.0, "p_terminate": 1.0, "p_respawn": 0.0}],
          "max_steps": 50,                 # episode length
          "lifetime": 250                  # agent updates of an agent on this level
        }
      ]
    }

`LevelsFile` is the task distribution over the file's levels (uniform), so a file works wherever
a level set does (``lpgx train --env-mode FILE``, ``lpgx eval --on FILE``); `level_to_dict` turns
any level back into this format (``lpgx levels show NAME --json FILE``), so every built-in level
is an example. A malformed file is refused naming the level and the field.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._typing import PRNGKeyArray
from ._base import AbstractTaskDistribution, Task
from ._gridworld import GridWorld, Level

__all__ = ["FORMAT", "LevelsFile", "level_to_dict", "write_levels"]

FORMAT = "lpgx-levels/1"


class _Bad(ValueError):
    pass


def _cell(value: Any, size: int, where: str) -> int:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise _Bad(f"{where} must be [row, col] with integers, got {value!r}")
    row, col = value
    if not (0 <= row < size and 0 <= col < size):
        raise _Bad(f"{where} {value!r} lies outside the {size}×{size} grid")
    return row * size + col


def _number(entry: dict[str, Any], key: str, where: str, low: float, high: float) -> float:
    value = entry.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _Bad(f"{where}.{key} must be a number, got {value!r}")
    if not low <= value <= high:
        raise _Bad(f"{where}.{key} must lie in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _positive(entry: dict[str, Any], key: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _Bad(f"field {key!r} must be a positive integer, got {value!r}")
    return value


def _parse_level(entry: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict):
        raise _Bad("a level must be a JSON object")
    size = _positive(entry, "size")
    walls = entry.get("walls", [])
    if not isinstance(walls, list):
        raise _Bad(f"field 'walls' must be a list of [row, col], got {walls!r}")
    wall_cells = {_cell(w, size, f"walls[{i}]") for i, w in enumerate(walls)}
    start = _cell(entry.get("start"), size, "field 'start'")
    if start in wall_cells:
        raise _Bad(f"field 'start' {entry['start']!r} is a wall")
    types = entry.get("types")
    if not isinstance(types, list) or not types:
        raise _Bad("field 'types' must be a non-empty list of object types")
    parsed_types = []
    for t, spec in enumerate(types):
        if not isinstance(spec, dict):
            raise _Bad(f"types[{t}] must be an object")
        parsed_types.append(
            (
                _number(spec, "reward", f"types[{t}]", -1e6, 1e6),
                _number(spec, "p_terminate", f"types[{t}]", 0.0, 1.0),
                _number(spec, "p_respawn", f"types[{t}]", 0.0, 1.0),
            )
        )
    objects = entry.get("objects", [])
    if not isinstance(objects, list):
        raise _Bad(f"field 'objects' must be a list, got {objects!r}")
    obj_types, obj_cells = [], []
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise _Bad(f"objects[{i}] must be an object with 'type' and 'cell'")
        kind = obj.get("type")
        if not isinstance(kind, int) or isinstance(kind, bool) or not 0 <= kind < len(types):
            raise _Bad(f"objects[{i}].type must be an index into 'types', got {kind!r}")
        cell = _cell(obj.get("cell"), size, f"objects[{i}].cell")
        if cell in wall_cells:
            raise _Bad(f"objects[{i}].cell {obj['cell']!r} is a wall")
        obj_types.append(kind)
        obj_cells.append(cell)
    name = entry.get("name", "")
    return str(name), {
        "size": size,
        "walls": sorted(wall_cells),
        "start": start,
        "obj_types": obj_types,
        "obj_cells": obj_cells,
        "types": parsed_types,
        "max_steps": _positive(entry, "max_steps"),
        "lifetime": _positive(entry, "lifetime"),
    }


def _build(spec: dict[str, Any], g_max: int, n_max: int, t_max: int) -> Level:
    g = spec["size"]
    walls = np.zeros(g_max * g_max, bool)
    walls[spec["walls"]] = True
    n = len(spec["obj_types"])

    def pad(values: list[Any], size: int, dtype: Any) -> jax.Array:
        return jnp.asarray(np.asarray(values + [0] * (size - len(values)), dtype))

    rewards, p_term, p_resp = (list(col) for col in zip(*spec["types"], strict=True))
    return Level(
        grid_size=jnp.asarray(g, jnp.int32),
        walls=jnp.asarray(walls),
        start_pos=jnp.asarray(spec["start"], jnp.int32),
        n_objs=jnp.asarray(n, jnp.int32),
        obj_types=pad(spec["obj_types"], n_max, np.int32),
        obj_pos=pad(spec["obj_cells"], n_max, np.int32),
        obj_rewards=pad(rewards, t_max, np.float32),
        obj_p_terminate=pad(p_term, t_max, np.float32),
        obj_p_respawn=pad(p_resp, t_max, np.float32),
        max_steps=jnp.asarray(spec["max_steps"], jnp.int32),
    )


@dataclass(frozen=True)
class LevelsFile(AbstractTaskDistribution[Level]):
    """The levels of a JSON file (see the module docstring), each drawn with equal
    probability, padded to the file's maxima so that they stack."""

    path: str
    name: str = field(init=False)
    tabular: bool = field(init=False)
    names: tuple[str, ...] = field(init=False)
    _levels: Level = field(init=False, compare=False, hash=False, repr=False)
    _lifetimes: tuple[int, ...] = field(init=False)
    _max_steps: int = field(init=False)

    def __post_init__(self) -> None:
        path = Path(self.path)
        if not path.exists():
            raise FileNotFoundError(f"levels file {path} not found")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f'{path}: expected a JSON object with "format": "{FORMAT}"')
        entries = data.get("levels")
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{path}: field 'levels' must be a non-empty list of levels")
        tabular = data.get("tabular", True)
        if not isinstance(tabular, bool):
            raise ValueError(f"{path}: field 'tabular' must be true or false")
        parsed = []
        for i, entry in enumerate(entries):
            label = entry.get("name", "") if isinstance(entry, dict) else ""
            try:
                parsed.append(_parse_level(entry))
            except _Bad as e:
                raise ValueError(f"{path}: level {i} ({label or 'unnamed'}): {e}") from None
        specs = [spec for _, spec in parsed]
        g_max = max(s["size"] for s in specs)
        n_max = max(1, *(len(s["obj_types"]) for s in specs))
        t_max = max(len(s["types"]) for s in specs)
        levels = [_build(s, g_max, n_max, t_max) for s in specs]
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *levels)
        object.__setattr__(self, "name", str(path))
        object.__setattr__(self, "tabular", tabular)
        object.__setattr__(
            self, "names", tuple(n or f"level {i}" for i, (n, _) in enumerate(parsed))
        )
        object.__setattr__(self, "_levels", stacked)
        object.__setattr__(self, "_lifetimes", tuple(s["lifetime"] for s in specs))
        object.__setattr__(self, "_max_steps", max(s["max_steps"] for s in specs))

    @property
    def max_lifetime(self) -> int:
        return max(self._lifetimes)

    @property
    def eval_steps(self) -> int:
        return self._max_steps

    def env(self) -> GridWorld:
        level = self._levels
        return GridWorld(
            max_grid_size=level.max_grid_size,
            max_objects=level.max_objects,
            max_types=level.max_types,
            tabular=self.tabular,
        )

    def task(self, index: int) -> Task[Level]:
        """The file's level `index`, exactly as written, with its lifetime."""
        level = jax.tree.map(lambda x: x[index], self._levels)
        return Task(level=level, lifetime=jnp.asarray(self._lifetimes[index], jnp.int32))

    def sample(self, key: PRNGKeyArray) -> Task[Level]:
        index = jax.random.randint(key, (), 0, len(self._lifetimes))
        level = jax.tree.map(lambda x: x[index], self._levels)
        lifetime = jnp.asarray(self._lifetimes, jnp.int32)[index]
        return Task(level=level, lifetime=lifetime)


def level_to_dict(level: Level, lifetime: int, name: str = "") -> dict[str, Any]:
    """One concrete (unbatched) level in the file format."""
    g = int(level.grid_size)
    walls = np.asarray(level.walls)
    n = int(level.n_objs)
    types = np.asarray(level.obj_types)[:n]
    num_types = int(types.max()) + 1 if n else 1  # the types its objects use

    def rc(cell: int) -> list[int]:
        return [cell // g, cell % g]

    return {
        "name": name,
        "size": g,
        "walls": [rc(c) for c in range(g * g) if walls[c]],
        "start": rc(int(level.start_pos)),
        "objects": [
            {"type": int(t), "cell": rc(int(c))}
            for t, c in zip(types, np.asarray(level.obj_pos)[:n], strict=True)
        ],
        "types": [
            {
                "reward": float(level.obj_rewards[t]),
                "p_terminate": float(level.obj_p_terminate[t]),
                "p_respawn": float(level.obj_p_respawn[t]),
            }
            for t in range(num_types)
        ],
        "max_steps": int(level.max_steps),
        "lifetime": int(lifetime),
    }


def write_levels(path: Path, tasks: list[tuple[str, Task]], tabular: bool = True) -> Path:
    """Write named concrete tasks as a levels file."""
    levels = [level_to_dict(t.level, int(t.lifetime), name) for name, t in tasks]
    path.write_text(json.dumps({"format": FORMAT, "tabular": tabular, "levels": levels}, indent=1))
    return path
