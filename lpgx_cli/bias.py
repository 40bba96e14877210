"""`lpgx bias`: meta-gradient bias experiments (Theoretical-GMRL).

``lpgx bias EXPERIMENT [--quick] [--out DIR] [--seed S] [sweep overrides]`` runs one experiment,
shows a progress bar and a summary table on stderr, and writes ``DIR/EXPERIMENT.json`` and
``DIR/EXPERIMENT.png``. The tabular experiments (``decompose``, ``lr``, ``steps``, ``comp-lr``,
``comp-sample``, ``comp-steps``, ``hessian``, ``lirpg``) live here; other sub-commands are
modules with their own ``main(argv)``, imported only when chosen.
"""

import dataclasses
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ._output import name_flags

__all__ = ["COMMANDS", "TabularOptions", "main"]

# sub-command -> (module with the command, one-line help); this module runs the tabular ones.
COMMANDS: dict[str, tuple[str, str]] = {
    "decompose": (
        __name__,
        "MAML-RL: corr/spread vs N for 4 estimators × 7 sampled-piece patterns (K 1, α 10)",
    ),
    "lr": (__name__, "MAML-RL: corr/spread vs inner learning rate α (maml, K 5, N 32)"),
    "steps": (__name__, "MAML-RL: corr/spread vs inner steps K (maml, α 10, N 32)"),
    "comp-lr": (__name__, "compositional bias (grad_mse, `lee`) vs α (K 6, N 32)"),
    "comp-sample": (__name__, "compositional bias (grad_mse, `lee`) vs N (α 3, K 2)"),
    "comp-steps": (__name__, "compositional bias (grad_mse, `lee`) vs K (α 3, N 32)"),
    "hessian": (__name__, "multi-step Hessian bias vs injected Hessian error c, per α (K 2)"),
    "lirpg": (__name__, "LIRPG: corr/spread vs K with a sampled Hessian (maml, lvc; N 16–256)"),
    "lola": ("lpgx_cli.bias_lola", "LOLA-DiCE on the iterated prisoner's dilemma"),
    "lpg": (
        "lpgx_cli.bias_lpg",
        "LPG's meta-gradient: exact, stop-gradient (the reference) and LVC vs a reference",
    ),
}


# `lpgx.bias.TabularBiasConfig`'s errors name its fields; these are the flags that set them.
_TABULAR_FLAGS = {
    "num_mdps": "--num-mdps",
    "num_repeats": "--num-repeats",
    "num_samples": "--num-samples",
    "hessian_errors": "--hessian-errors",
    **{f"{f} is empty": f"--{f} is empty" for f in ("estimators", "patterns", "alphas", "steps")},
    "steps must": "--steps must",
    "use patterns ('ele',)": "use --patterns ele",
}


@dataclasses.dataclass(frozen=True)
class TabularOptions:
    """Options of a tabular bias experiment; unset sweep values keep the reference's.

    Attributes:
        quick: reduced sizes (fewer MDPs, repeats and sweep points) that still show the shape.
        out: folder for EXPERIMENT.json and EXPERIMENT.png (created if missing).
        seed: seed of the MDPs and of the estimates (separate streams).
        num_mdps: random MDPs (reference: 10).
        num_repeats: stochastic estimates per MDP (reference: 20, or 10 for comp-*/hessian).
        estimators: surrogates of the sampled pieces (maml, lvc, dice, loaded).
        patterns: sampled pieces as inner/Hessian/outer letters, e exact, l sampled (e.g. lee).
        num_samples: trajectories per sampled piece.
        alphas: inner learning rates.
        steps: inner steps K.
        hessian_errors: injected Hessian error coefficients c (the hessian experiment).
    """

    quick: bool = False
    out: Path = Path("bias_results")
    seed: int = 42
    num_mdps: int | None = None
    num_repeats: int | None = None
    estimators: tuple[str, ...] | None = None
    patterns: tuple[str, ...] | None = None
    num_samples: tuple[int, ...] | None = None
    alphas: tuple[float, ...] | None = None
    steps: tuple[int, ...] | None = None
    hessian_errors: tuple[float, ...] | None = None


def _usage(console: Console) -> None:
    table = Table(title="lpgx bias — meta-gradient bias experiments", show_header=True)
    table.add_column("experiment")
    table.add_column("what it measures")
    for name, (_, help_text) in COMMANDS.items():
        table.add_row(name, help_text)
    console.print(table)
    console.print("Run `lpgx bias EXPERIMENT --help` for its options.")


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _summary_table(result: dict[str, Any]) -> Table:
    """Rows (group, line), columns the swept value: mean ± s.e. over MDPs of the first metric."""
    from lpgx.bias._plot import LAYOUTS

    x_key, line_key, panel_key, metrics, _, _ = LAYOUTS[result["experiment"]]
    metric = metrics[0]
    records = result["records"]
    xs = list(dict.fromkeys(r[x_key] for r in records))
    table = Table(
        title=f"{result['experiment']}: {metric} (mean ± s.e. over "
        f"{result['config']['num_mdps']} MDPs) in {result['seconds']:.1f} s"
    )
    table.add_column(panel_key)
    table.add_column(line_key)
    for x in xs:
        table.add_column(f"{x_key} {_fmt(x)}", justify="right")
    groups = list(dict.fromkeys((r[panel_key], r[line_key]) for r in records))
    for panel, line in groups:
        cells = []
        for x in xs:
            sel = [r for r in records if (r[panel_key], r[line_key], r[x_key]) == (panel, line, x)]
            if not sel:
                cells.append("—")
                continue
            v = np.asarray(sel[0][metric], np.float64)
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
            cells.append(f"{v.mean():.3g} ± {se:.2g}")
        table.add_row(_fmt(panel), _fmt(line), *cells)
    return table


def _run_tabular_command(name: str, argv: list[str]) -> int:
    from lpgx.bias import experiment_config, plot_tabular, run_tabular

    console = Console(stderr=True)
    try:
        opts = tyro.cli(
            TabularOptions,
            args=argv,
            prog=f"lpgx bias {name}",
            description=COMMANDS[name][1],
            config=(tyro.conf.FlagCreatePairsOff,),
        )
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    overrides = {
        field: getattr(opts, field)
        for field in (
            "num_mdps",
            "num_repeats",
            "estimators",
            "patterns",
            "num_samples",
            "alphas",
            "steps",
            "hessian_errors",
        )
        if getattr(opts, field) is not None
    }
    try:
        config = experiment_config(name, quick=opts.quick, seed=opts.seed, **overrides)
    except ValueError as err:
        console.print(f"[red]error:[/red] {name_flags(str(err), _TABULAR_FLAGS)}")
        return 2
    opts.out.mkdir(parents=True, exist_ok=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[point]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(name, total=config.num_points, point="compiling…")

        def on_point(done: int, total: int, point: dict[str, Any]) -> None:
            text = " ".join(f"{k}={_fmt(v)}" for k, v in point.items())
            progress.update(task, completed=done, total=total, point=text)

        result = run_tabular(config, progress=on_point)
    json_path = opts.out / f"{name}.json"
    png_path = opts.out / f"{name}.png"
    json_path.write_text(json.dumps(result, indent=1))
    plot_tabular(result, png_path)
    console.print(_summary_table(result))
    for s in result["slopes"]:
        console.print(
            f"log-log slope of grad_mse vs N: {s['estimator']} {s['pattern']} "
            f"α {_fmt(s['alpha'])} K {s['steps']}: {s['grad_mse_slope']:.2f}"
        )
    console.print(f"wrote [bold]{json_path}[/bold] and [bold]{png_path}[/bold]")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `lpgx bias`; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True)
    if not args or args[0] in ("-h", "--help"):
        _usage(console)
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        console.print(
            f"[red]unknown experiment {command!r}[/red]; choose one of: {', '.join(COMMANDS)}"
        )
        return 2
    module_name = COMMANDS[command][0]
    if module_name == __name__:
        return _run_tabular_command(command, rest)
    module = importlib.import_module(module_name)
    return int(module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
