"""`lpgx levels`: list the named level sets, or draw levels sampled from one.

``lpgx levels list [--json] [--optimal]`` prints one row per level set; ``lpgx levels show NAME
[--seed S] [--png PATH] [--count K]`` draws a sampled level in the terminal and, with ``--png``,
writes a picture of ``K`` sampled levels. Tables and drawings go to stderr; ``--json`` output
(machine-readable) goes to stdout.
"""

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import jax
import numpy as np
import tyro
from rich.console import Console, JustifyMethod
from rich.table import Table

from lpgx.envs import (
    LEVEL_SET_NAMES,
    LevelFamily,
    LevelSet,
    get_level_set,
    level_info,
    plot_levels,
    render_text,
    split_levels,
)

__all__ = ["level_set_summary", "list_sets", "main", "show"]

# Levels sampled per tabular set for the mean optimal return shown by `levels list`.
_OPTIMAL_SAMPLES = 4


def _console() -> Console:
    return Console(stderr=True)


def _bounds(ls: LevelSet, attr: str) -> tuple[int, int]:
    """Smallest and largest value of one family parameter over the set's families."""
    bounds = [_family_bounds(fam, attr) for fam in ls.families]
    return min(lo for lo, _ in bounds), max(hi for _, hi in bounds)


def _fmt_range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _mean_optimal_return(ls: LevelSet, samples: int, seed: int = 0) -> float | None:
    """Mean optimal return over `samples` levels of a tabular set (``None`` when undefined)."""
    if not ls.tabular:
        return None
    from lpgx.envs import optimal_return

    env = ls.env()
    tasks = jax.jit(jax.vmap(ls.sample))(jax.random.split(jax.random.key(seed), samples))
    values = [optimal_return(env, level) for level in split_levels(tasks.level)]
    return float(np.mean(values))


def level_set_summary(ls: LevelSet, optimal: bool = False) -> dict[str, Any]:
    """One level set's row of `levels list`, as JSON-serialisable values.

    Ranges are ``[low, high]`` over the set's families and samplers; ``optimal_return`` is the mean
    over 4 sampled levels for a tabular set when `optimal` is set, else ``None``.
    """
    grid = _bounds(ls, "grid_size")
    objs = _bounds(ls, "n_objs")
    life = _bounds(ls, "lifetime")
    steps = _bounds(ls, "max_steps")
    return {
        "name": ls.name,
        "description": ls.description,
        "tabular": ls.tabular,
        "families": len(ls.families),
        "grid_size": list(grid),
        "n_objs": list(objs),
        "obs_size": ls.env().obs_size,
        "max_steps": list(steps),
        "eval_steps": ls.eval_steps,
        "lifetime": list(life),
        "optimal_return": _mean_optimal_return(ls, _OPTIMAL_SAMPLES) if optimal else None,
    }


def list_sets(
    json_out: Annotated[bool, tyro.conf.arg(name="json")] = False,
    optimal: bool = False,
) -> int:
    """List every named level set.

    Args:
        json_out: print a JSON list (one object per level set) to stdout instead of a table.
        optimal: add each tabular set's mean optimal return over 4 sampled levels (slow: ~2 min).
    """
    console = _console()
    start = time.perf_counter()
    rows = []
    with console.status("summarising level sets…"):
        for name in LEVEL_SET_NAMES:
            rows.append(level_set_summary(get_level_set(name), optimal=optimal))
    elapsed = time.perf_counter() - start
    if json_out:
        print(json.dumps(rows, indent=2))
        return 0

    table = Table(title="lpgx level sets")
    columns: list[tuple[str, JustifyMethod]] = [
        ("name", "left"),
        ("grid", "right"),
        ("objects", "right"),
        ("obs size", "right"),
        ("episode steps", "right"),
        ("eval steps", "right"),
        ("lifetime", "right"),
        ("tabular", "center"),
    ]
    if optimal:
        columns.append((f"optimal return (mean of {_OPTIMAL_SAMPLES})", "right"))
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=col == "name")
    table.add_column("description", ratio=1, min_width=20)
    for row in rows:
        cells = [
            row["name"],
            _fmt_range(*row["grid_size"]),
            _fmt_range(*row["n_objs"]),
            str(row["obs_size"]),
            _fmt_range(*row["max_steps"]),
            str(row["eval_steps"]),
            _fmt_range(*row["lifetime"]),
            "yes" if row["tabular"] else "no",
        ]
        if optimal:
            opt = row["optimal_return"]
            cells.append("—" if opt is None else f"{opt:.3f}")
        table.add_row(*cells, row["description"])
    console.print(table)
    hint = "" if optimal else "; add --optimal for the mean optimal return of tabular sets"
    console.print(f"[dim]{len(rows)} level sets in {elapsed:.1f} s{hint}[/dim]")
    return 0


def _family_bounds(fam: LevelFamily, attr: str) -> tuple[int, int]:
    p = getattr(fam, attr)
    return (p, p) if isinstance(p, int) else (round(p.low), round(p.high))


def show(
    name: Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="NAME")],
    seed: int = 0,
    png: Path | None = None,
    count: int = 4,
) -> int:
    """Draw a level sampled from level set NAME, with its parameters.

    Args:
        name: a level set (see `lpgx levels list`).
        seed: random seed of the sampled levels.
        png: also write a picture of `count` sampled levels to this PNG file.
        count: number of levels drawn in the PNG.
    """
    console = _console()
    try:
        ls = get_level_set(name)
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    if count < 1:
        console.print(f"[red]error:[/red] --count must be at least 1, got {count}")
        return 2
    if png is not None and not png.parent.is_dir():
        console.print(
            f"[red]error:[/red] the folder of --png {png} does not exist; create it first"
        )
        return 2

    n = count if png is not None else 1
    tasks = jax.jit(jax.vmap(ls.sample))(jax.random.split(jax.random.key(seed), n))
    levels = split_levels(tasks.level)
    lifetimes = [int(x) for x in np.asarray(tasks.lifetime)]

    level = levels[0]
    info = level_info(level)
    console.print(
        f"[bold]{ls.name}[/bold] — {ls.description} "
        f"({'tabular' if ls.tabular else 'non-tabular'}, seed {seed})"
    )
    if len(ls.families) > 1:
        names = ", ".join(fam.name for fam in ls.families)
        console.print(f"{len(ls.families)} families, one drawn per sample: {names}")
    console.print(render_text(level), highlight=False)
    console.print(
        "[dim]## wall   S start   A, B, … objects by type   · empty"
        + ("" if ls.tabular else "   (object cells are re-drawn at every reset)")
        + "[/dim]"
    )
    console.print(
        f"grid {info['grid_size']}×{info['grid_size']}, start (row, col) = "
        f"{tuple(info['start'])}, {info['walls']} walls, {len(info['objects'])} objects, "
        f"max steps {info['max_steps']}, lifetime {lifetimes[0]} updates"
    )
    table = Table(title="object types")
    for col in ("type", "count", "reward", "p_terminate", "p_respawn", "cells (row, col)"):
        table.add_column(col, justify="left" if col in ("type", "cells (row, col)") else "right")
    for entry in info["types"]:
        cells = [tuple(o["cell"]) for o in info["objects"] if o["type"] == entry["type"]]
        table.add_row(
            entry["type"],
            str(entry["count"]),
            f"{entry['reward']:+.3f}",
            f"{entry['p_terminate']:.3g}",
            f"{entry['p_respawn']:.3g}",
            ", ".join(f"({r}, {c})" for r, c in cells),
        )
    console.print(table)

    if png is not None:
        titles = [f"{ls.name} #{i} (seed {seed})" for i in range(n)]
        plot_levels(levels, png, titles=titles)
        console.print(f"wrote {n} levels to [bold]{png}[/bold]")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `lpgx levels`; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(
            tyro.extras.subcommand_cli_from_dict(
                {"list": list_sets, "show": show},
                prog="lpgx levels",
                description="List the named level sets, or draw levels sampled from one.",
                args=args,
                config=(tyro.conf.FlagCreatePairsOff,),
            )
        )
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    sys.exit(main())
