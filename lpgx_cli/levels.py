"""`lpgx levels`: list the named level sets, or draw levels sampled from one.

``lpgx levels list [--json PATH] [--optimal]`` prints one row per level set; ``lpgx levels show
NAME [--seed S] [--png PATH] [--count K] [--json PATH]`` draws a sampled level in the terminal
and, with ``--png``, writes a picture of ``K`` sampled levels. Tables and drawings go to stdout
(so ``> file`` and ``| grep`` see them) and fit 80 columns; progress goes to stderr.
``--json PATH`` writes the JSON document to PATH, and ``--json -`` to stdout, the tables and
drawings then going to stderr.
"""

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import jax
import numpy as np
import tyro
from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table

from lpgx.envs import (
    LEVEL_SET_NAMES,
    LevelFamily,
    LevelSet,
    get_level_set,
    level_info,
    level_to_dict,
    plot_levels,
    render_text,
    split_levels,
)
from lpgx.envs._levels_file import FORMAT as LEVELS_FORMAT

from ._output import json_option, path_problems, png_option, table_console, to_stdout, write_json

__all__ = ["level_set_summary", "list_sets", "main", "show"]

# Levels sampled per tabular set for the mean optimal return of `levels list --optimal`: as
# many as `lpgx train --preset quick` evaluates on, so the figures compare.
_OPTIMAL_SAMPLES = 64
# Below this console width `levels list` moves descriptions under the table.
_WIDE = 120


def _console(json_out: Path | None = None) -> Console:
    """Where tables and drawings go: stdout, or stderr when ``--json -`` holds stdout."""
    return table_console(json_out)


def _status_console() -> Console:
    """Where progress goes: stderr (quiet without a terminal)."""
    return Console(stderr=True)


@functools.cache
def _sampler(ls: LevelSet) -> Callable[[jax.Array], Any]:
    """The batch sampler of `ls`, compiled once per process and shape (a second `levels` call
    in the same process, e.g. a test's, reuses it)."""
    return jax.jit(jax.vmap(ls.sample))


def _bounds(ls: LevelSet, attr: str) -> tuple[int, int]:
    """Smallest and largest value of one family parameter over the set's families."""
    bounds = [_family_bounds(fam, attr) for fam in ls.families]
    return min(lo for lo, _ in bounds), max(hi for _, hi in bounds)


def _fmt_range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _optimal_return(ls: LevelSet, samples: int, seed: int = 0) -> tuple[float | None, float | None]:
    """Mean optimal return over `samples` sampled levels of a tabular set and its standard
    error (``None, None`` for a non-tabular set, whose optimum is not defined)."""
    if not ls.tabular:
        return None, None
    from lpgx.envs import optimal_returns

    tasks = _sampler(ls)(jax.random.split(jax.random.key(seed), samples))
    values = optimal_returns(ls.env(), tasks.level)
    se = float(values.std(ddof=1) / np.sqrt(samples)) if samples > 1 else float("nan")
    return float(values.mean()), se


def level_set_summary(
    ls: LevelSet, optimal: bool = False, samples: int = _OPTIMAL_SAMPLES
) -> dict[str, Any]:
    """One level set's row of `levels list`, as JSON-serialisable values.

    Ranges are ``[low, high]`` over the set's families and samplers. With `optimal`, a tabular
    set's ``optimal_return`` is the mean exact optimal return of `samples` sampled levels, with
    its standard error ``optimal_return_se`` and ``optimal_samples``; otherwise ``None``.
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
        **dict(
            zip(
                ("optimal_return", "optimal_return_se"),
                _optimal_return(ls, samples) if optimal else (None, None),
                strict=True,
            )
        ),
        "optimal_samples": samples if optimal and ls.tabular else None,
    }


def list_sets(
    json_out: Annotated[Path | None, json_option("the list (one object per level set)")] = None,
    optimal: bool = False,
    samples: int = _OPTIMAL_SAMPLES,
) -> int:
    """List every named level set (a table on stdout).

    Args:
        json_out: see `lpgx_cli._output.JSON_HELP`.
        optimal: add each tabular set's mean exact optimal return over `samples` sampled
            levels, with its standard error (3 minutes on 2 shared CPU cores).
        samples: levels sampled per set for --optimal.
    """
    status = _status_console()
    problems = path_problems(json_out)
    if samples < 2:
        problems.insert(0, f"--samples must be at least 2, got {samples}")
    if problems:
        for problem in problems:
            status.print(f"[red]error:[/red] {problem}")
        return 2
    start = time.perf_counter()
    rows = []
    with status.status("summarising level sets…") as spinner:
        for name in LEVEL_SET_NAMES:
            spinner.update(f"summarising level sets: {name}")
            rows.append(level_set_summary(get_level_set(name), optimal, samples))
    elapsed = time.perf_counter() - start
    if json_out is not None:
        write_json(rows, json_out, indent=2)
        if not to_stdout(json_out):
            status.print(f"wrote {json_out}")

    console = _console(json_out)
    wide = console.width >= _WIDE
    table = Table(title="lpgx level sets", box=box.SIMPLE_HEAD, pad_edge=False)
    columns: list[tuple[str, JustifyMethod]] = [
        ("name", "left"),
        ("grid", "right"),
        ("objects", "right"),
        ("steps", "right"),
        ("lifetime", "right"),
        ("tabular", "center"),
    ]
    if wide:
        columns[3:3] = [("obs size", "right")]
        columns.insert(5, ("eval steps", "right"))
    elif optimal:
        columns.pop()  # "tabular": the optimum column says it ("—" where not tabular)
    if optimal:
        columns.append(("optimal return", "right"))
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=True)
    if wide:
        table.add_column("description", ratio=1, min_width=20)
    for row in rows:
        cells = [
            row["name"],
            _fmt_range(*row["grid_size"]),
            _fmt_range(*row["n_objs"]),
            _fmt_range(*row["max_steps"]),
            _fmt_range(*row["lifetime"]),
            "yes" if row["tabular"] else "no",
        ]
        if optimal and not wide:
            cells.pop()
        if wide:
            cells[3:3] = [str(row["obs_size"])]
            cells.insert(5, str(row["eval_steps"]))
        if optimal:
            opt, se = row["optimal_return"], row["optimal_return_se"]
            cells.append("—" if opt is None else f"{opt:.3f} ± {se:.3f}")
        table.add_row(*cells, *([row["description"]] if wide else []))
    console.print(table)
    notes = [
        "grid: side of the square grid; steps: steps per episode; lifetime: agent updates.",
    ]
    if optimal:
        notes.append(
            f"optimal return: exact optimal return of one episode (dynamic programming), "
            f"mean ± s.e. over {samples} sampled levels (seed 0); — : not tabular, unknown."
        )
    if not wide:
        notes += [f"{row['name']}: {row['description']}" for row in rows]
    for line in notes:
        console.print(line, highlight=False, soft_wrap=False)
    hint = "" if optimal else "; add --optimal for the optimal return of tabular sets"
    status.print(f"[dim]{len(rows)} level sets in {elapsed:.1f} s{hint}[/dim]")
    return 0


def _family_bounds(fam: LevelFamily, attr: str) -> tuple[int, int]:
    p = getattr(fam, attr)
    return (p, p) if isinstance(p, int) else (round(p.low), round(p.high))


def show(
    name: Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="NAME")],
    seed: int = 0,
    png: Annotated[
        Path | None,
        png_option(
            "a picture of --count sampled levels", "with --agent: the agent's episode on the first"
        ),
    ] = None,
    count: int = 4,
    agent: Path | None = None,
    json_out: Annotated[
        Path | None,
        json_option(
            "--count sampled levels in the lpgx-levels/1 format",
            "edit it, then use it with `lpgx train --env-mode FILE` or `lpgx eval --on FILE`",
        ),
    ] = None,
) -> int:
    """Draw a level sampled from level set NAME, with its parameters.

    Args:
        name: a level set (see `lpgx levels list`).
        seed: random seed of the sampled levels.
        png: see `lpgx_cli._output.PNG_HELP`.
        count: number of levels drawn in the PNG and written by --json.
        agent: a run directory of `lpgx train`: train a fresh agent from scratch with its
            learned rule on the level (for its lifetime), and draw one episode of it in --png.
        json_out: see `lpgx_cli._output.JSON_HELP`.
    """
    console, errors = _console(json_out), _status_console()
    try:
        ls = get_level_set(name)
    except ValueError as err:
        errors.print(f"[red]error:[/red] {err}")
        return 2
    if count < 1:
        errors.print(f"[red]error:[/red] --count must be at least 1, got {count}")
        return 2
    if agent is not None and png is None:
        errors.print("[red]error:[/red] --agent draws the episode into a picture: add --png PATH")
        return 2
    from lpgx.run_dir import RunDir

    if agent is not None and not RunDir(agent).config_path.exists():
        errors.print(
            f"[red]error:[/red] --agent {agent} is not a run directory of `lpgx train` (no "
            "config.json)"
        )
        return 2
    problems = path_problems(json_out, png)
    if problems:
        for problem in problems:
            errors.print(f"[red]error:[/red] {problem}")
        return 2

    n = count if png is not None or json_out is not None else 1
    tasks = _sampler(ls)(jax.random.split(jax.random.key(seed), n))
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

    if png is not None and agent is not None:
        try:
            _draw_agent_episode(ls, agent, tasks, seed, png, errors)
        except (ValueError, FileNotFoundError) as err:
            errors.print(f"[red]error:[/red] {err}")
            return 2
        console.print(
            f"wrote an episode of an agent trained by {agent}'s rule to [bold]{png}[/bold]"
        )
    elif png is not None:
        titles = [f"{ls.name} #{i} (seed {seed})" for i in range(n)]
        plot_levels(levels, png, titles=titles)
        console.print(f"wrote {n} levels to [bold]{png}[/bold]")
    if json_out is not None:
        # The document of `lpgx.envs.write_levels`, which writes only to a file.
        document = {
            "format": LEVELS_FORMAT,
            "tabular": ls.tabular,
            "levels": [
                level_to_dict(level, lifetime, f"{ls.name}-{seed}-{i}")
                for i, (level, lifetime) in enumerate(zip(levels, lifetimes, strict=True))
            ],
        }
        write_json(document, json_out, indent=1)
        if not to_stdout(json_out):
            console.print(f"wrote {n} levels to [bold]{json_out}[/bold] ({LEVELS_FORMAT})")
    return 0


def _draw_agent_episode(
    ls: LevelSet, run_dir: Path, tasks: Any, seed: int, png: Path, status: Console
) -> None:
    """Train a fresh agent by `run_dir`'s learned rule on the first of `tasks` and draw one of
    its episodes."""
    from lpgx.compose import make_learner
    from lpgx.envs import optimal_returns
    from lpgx.evaluation import plot_episode, train_and_record
    from lpgx.run_dir import RunDir

    with status.status(f"loading the learned rule of {run_dir}…") as spinner:
        run = RunDir(run_dir)
        state, trainer = run.trained_state()
        rule, config = state.meta.rule, run.config()
        learner = trainer.learner if config.env_mode == ls.name else make_learner(config, ls)
        task = jax.tree.map(lambda x: x[0], tasks)
        lifetime = int(task.lifetime)
        spinner.update(
            f"training a fresh agent for {lifetime} updates with the learned rule, then "
            "recording an episode…"
        )
        episode, mean = train_and_record(
            learner, rule, task, jax.random.key(seed), ls.max_lifetime, ls.eval_steps
        )
    optimum = ""
    if ls.tabular:
        first = jax.tree.map(lambda x: x[:1], tasks.level)
        optimum = f"; optimal {float(optimal_returns(ls.env(), first)[0]):.2f}"
    title = (
        f"{ls.name} (seed {seed}): a fresh agent trained for {lifetime} updates by the learned "
        f"rule of {run_dir.name}\nmean return over 64 episodes {float(mean):.2f}{optimum}; "
        f"this episode: {int(episode.length)} steps"
    )
    plot_episode(task.level, episode, png, title)


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
