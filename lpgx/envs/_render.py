"""Drawing grid-world levels: as text for a terminal and as a PNG of several levels.

Both drawings show the level's own ``g × g`` grid (padding cells are not drawn), its walls, the
start cell and the objects' cells with their type letter (``A`` for type 0, ``B`` for type 1…).
In a non-tabular level set the objects' cells are re-drawn at every reset, so the drawn cells are
one example of where they may be.
"""

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ._gridworld import Level

__all__ = [
    "TYPE_COLOURS",
    "level_info",
    "plot_levels",
    "render_text",
    "split_levels",
    "type_letter",
]

# One colour per object type (matplotlib hex, rich name); green and grey are kept for the start
# and the walls so that no object type can be mistaken for either.
TYPE_COLOURS: tuple[tuple[str, str], ...] = (
    ("#1f77b4", "dodger_blue2"),
    ("#ff7f0e", "dark_orange"),
    ("#9467bd", "medium_purple"),
    ("#d62728", "red"),
    ("#17becf", "cyan"),
    ("#e377c2", "hot_pink"),
    ("#bcbd22", "yellow4"),
    ("#8c564b", "tan"),
)
_WALL_COLOUR = "#3a3a3a"
_START_COLOUR = "#2ca02c"
_EMPTY_COLOUR = "#ffffff"


def type_letter(t: int) -> str:
    """The letter naming object type `t` (``0 -> "A"``)."""
    return chr(ord("A") + t)


def _type_colour(t: int) -> tuple[str, str]:
    return TYPE_COLOURS[t % len(TYPE_COLOURS)]


def _check_single(level: Level) -> None:
    if np.ndim(level.grid_size) != 0:
        raise ValueError(
            f"expected one level but got a batch of shape {np.shape(level.grid_size)}; "
            "use `split_levels(batch)` to draw each level."
        )


def split_levels(batch: Level) -> list[Level]:
    """Split a stacked (vmapped) batch of levels into a list of single levels."""
    n = int(np.shape(batch.grid_size)[0]) if np.ndim(batch.grid_size) else 0
    if n == 0:
        return [batch]
    return [jax.tree.map(lambda x, i=i: x[i], batch) for i in range(n)]


def _layout(level: Level) -> tuple[int, np.ndarray, int, list[tuple[int, int]]]:
    """``(g, walls[g, g], start, [(cell, type), …])`` as host values, for the level's own grid."""
    _check_single(level)
    g = int(level.grid_size)
    walls_flat = np.asarray(level.walls)
    walls = walls_flat[: g * g].reshape(g, g)
    n = int(level.n_objs)
    types = np.asarray(level.obj_types)[:n]
    cells = np.asarray(level.obj_pos)[:n]
    return (
        g,
        walls,
        int(level.start_pos),
        [(int(c), int(t)) for c, t in zip(cells, types, strict=True)],
    )


def level_info(level: Level) -> dict[str, Any]:
    """The parameters of one level as plain Python values (JSON-serialisable).

    **Returns:** a dict with ``grid_size``, ``start`` (row, col), ``walls`` (count), ``max_steps``,
    ``types`` (one entry per object type in use: letter, count, reward, p_terminate, p_respawn)
    and ``objects`` (one entry per object: letter and (row, col) cell).
    """
    g, walls, start, objects = _layout(level)
    rewards = np.asarray(level.obj_rewards)
    p_term = np.asarray(level.obj_p_terminate)
    p_resp = np.asarray(level.obj_p_respawn)
    used = sorted({t for _, t in objects})
    return {
        "grid_size": g,
        "start": [start // g, start % g],
        "walls": int(walls.sum()),
        "max_steps": int(level.max_steps),
        "types": [
            {
                "type": type_letter(t),
                "count": sum(1 for _, u in objects if u == t),
                "reward": float(rewards[t]),
                "p_terminate": float(p_term[t]),
                "p_respawn": float(p_resp[t]),
            }
            for t in used
        ],
        "objects": [{"type": type_letter(t), "cell": [c // g, c % g]} for c, t in objects],
    }


def render_text(level: Level, markup: bool = True) -> str:
    """Draw one level as text, two characters per cell.

    ``##`` is a wall, ``S`` the start cell, a letter an object of that type and ``·`` an empty
    cell. With ``markup=True`` the string carries rich console markup (colours); print it with
    `rich.console.Console.print`. With ``markup=False`` it is plain text.
    """
    g, walls, start, objects = _layout(level)
    at = {cell: t for cell, t in objects}
    lines = []
    for r in range(g):
        row = []
        for c in range(g):
            cell = r * g + c
            if walls[r, c]:
                text, style = "##", "grey50"
            elif cell == start:
                text, style = "S ", f"bold white on {_START_COLOUR}"
            elif cell in at:
                t = at[cell]
                text, style = f"{type_letter(t)} ", f"bold {_type_colour(t)[1]}"
            else:
                text, style = "· ", "grey37"
            row.append(f"[{style}]{text}[/]" if markup else text)
        lines.append("".join(row).rstrip() if not markup else "".join(row))
    return "\n".join(lines)


def plot_levels(
    levels: Sequence[Level],
    path: str | os.PathLike[str],
    titles: Sequence[str] | None = None,
) -> None:
    """Write a PNG drawing `levels` side by side.

    Walls are dark grey squares, the start cell a green square marked ``S``, and each object a
    coloured disc marked with its type letter; a legend under each level gives every type's
    reward, termination and respawn probabilities.

    **Arguments:**

    - `levels`: single (unbatched) levels; see `split_levels` for a vmapped batch.
    - `path`: where to write the PNG.
    - `titles`: one title per level (default: ``level i``).
    """
    # The object-oriented API needs no pyplot state or GUI backend (the Agg canvas is used).
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Patch, Rectangle

    if not levels:
        raise ValueError("plot_levels needs at least one level")
    if titles is not None and len(titles) != len(levels):
        raise ValueError(f"got {len(titles)} titles for {len(levels)} levels; pass one per level")
    names = list(titles) if titles is not None else [f"level {i}" for i in range(len(levels))]

    n = len(levels)
    most_types = max(len(level_info(level)["types"]) for level in levels)
    fig = Figure(figsize=(3.6 * n, 4.2 + 0.17 * (2 + most_types)), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, level, name in zip(axes, levels, names, strict=True):
        g, walls, start, objects = _layout(level)
        info = level_info(level)
        font = max(6.0, min(12.0, 100.0 / g))
        ax.set_xlim(-0.5, g - 0.5)
        ax.set_ylim(g - 0.5, -0.5)
        ax.set_aspect("equal")
        for r in range(g):
            for c in range(g):
                colour = _WALL_COLOUR if walls[r, c] else _EMPTY_COLOUR
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=colour, linewidth=0))
        sr, sc = divmod(start, g)
        ax.add_patch(
            Rectangle((sc - 0.45, sr - 0.45), 0.9, 0.9, facecolor=_START_COLOUR, linewidth=0)
        )
        ax.text(
            sc, sr, "S", ha="center", va="center", color="white", fontweight="bold", fontsize=font
        )
        for cell, t in objects:
            r, c = divmod(cell, g)
            ax.add_patch(Circle((c, r), 0.4, facecolor=_type_colour(t)[0], linewidth=0))
            ax.text(
                c,
                r,
                type_letter(t),
                ha="center",
                va="center",
                color="white",
                fontweight="bold",
                fontsize=font,
            )
        # Grid lines on the cell borders.
        ticks = np.arange(-0.5, g, 1.0)
        ax.set_xticks(ticks, minor=True)
        ax.set_yticks(ticks, minor=True)
        ax.grid(which="minor", color="#b0b0b0", linewidth=0.6)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_xticks([])
        ax.set_yticks([])
        objs = f"{len(objects)} object" + ("" if len(objects) == 1 else "s")
        ax.set_title(f"{name}\n{g}×{g}, {objs}, {info['max_steps']} steps", fontsize=10)

        handles: list[Any] = [
            Patch(facecolor=_WALL_COLOUR, label="wall"),
            Patch(facecolor=_START_COLOUR, label="start (S)"),
        ]
        for entry in info["types"]:
            t = ord(entry["type"]) - ord("A")
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    linestyle="",
                    markersize=9,
                    color=_type_colour(t)[0],
                    label=(
                        f"{entry['type']} ×{entry['count']}: r={entry['reward']:+.2f}, "
                        f"p_term={entry['p_terminate']:.2g}, p_resp={entry['p_respawn']:.2g}"
                    ),
                )
            )
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.02),
            fontsize=7,
            frameon=False,
            ncol=1,
        )
    # A tight bounding box keeps the titles and the legends under the axes inside the picture.
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.1)
