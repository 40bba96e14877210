"""`lpgx eval SOURCE… --on TASKS`: meta-test rules on tasks they have never seen.

A SOURCE is ``a2c``, a run directory of ``lpgx train`` (its learned rule, from its latest
checkpoint), one of its checkpoints (``RUN/ckpt/step_NNNNNNNN.eqx``: the rule at that step),
``untrained:RUN`` (the rule that run started from), or ``LABEL=GLOB`` (the learned rules of
every run directory the glob matches, standing together as one method: e.g.
``groove='runs/groove-s*'``). Every source trains the same fresh agents on the same tasks
(common random numbers); A2C is always measured beside them, and a single run (or checkpoint)
given alone is also measured against the rule it started from.

The tables go to stdout; ``--json PATH`` writes the results as JSON to PATH, and ``--json -``
writes them to stdout, the tables then going to stderr with the progress.
"""

import glob
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import tyro
from rich.console import Console
from rich.table import Table

from ._output import (
    json_option,
    name_flags,
    path_problems,
    png_option,
    table_console,
    to_stdout,
    write_json,
)

# Names that the library's errors use for what this command calls otherwise.
_FLAGS = {"--num-agents": "--agents", "--env-mode": "--on"}


@dataclass(frozen=True)
class EvalArgs:
    sources: Annotated[tuple[str, ...], tyro.conf.Positional]
    """a2c | RUN_DIR | RUN_DIR/ckpt/step_N.eqx | untrained:RUN_DIR | LABEL=GLOB (runs as one)."""
    on: str = "all_shortlife"
    """Comma-separated task distributions: level sets (`lpgx levels list`) or gymnax:NAME."""
    agents: int = 16
    """Fresh agents per task distribution (each on its own task)."""
    lifetime: int | None = None
    """Agent updates per lifetime (default: each task's own lifetime)."""
    points: int = 10
    """Points of the lifetime at which the return is measured (the learning curve)."""
    episodes: int = 16
    """Evaluation episodes per agent and point."""
    workers: int | None = None
    """Parallel environments per agent (default: the first run's --env-workers, else 64)."""
    rollout_len: int | None = None
    """Steps per rollout (default: the first run's --train-rollout-len, else 20)."""
    seed: int = 0
    """Seed of the tasks, agents and keys (common to every source)."""
    json_out: Annotated[Path | None, json_option("the results")] = None
    png: Annotated[
        Path | None, png_option("the learning curves (return against agent updates, shaded s.e.)")
    ] = None


def _methods(
    sources: tuple[str, ...],
) -> tuple[dict[str, list[Any]], dict[str, list[str]], list[Path]]:
    from lpgx.rules import A2C
    from lpgx.run_dir import RunDir

    methods: dict[str, list[Any]] = {}
    names: dict[str, list[str]] = {}
    runs: list[Path] = []
    learned = [s for s in sources if s != "a2c" and not s.startswith("untrained:") and "=" not in s]
    if len(learned) == 1 and len(sources) == 1:
        # One run alone: what did meta-training buy? Its initial rule stands beside it.
        run, _ = RunDir.of(Path(learned[0]))
        sources = (*sources, f"untrained:{run.path}")
    for source in sources:
        if source == "a2c":
            methods["a2c"] = [A2C()]
            names["a2c"] = ["a2c"]
        elif source.startswith("untrained:"):
            run, _ = RunDir.of(Path(source.removeprefix("untrained:")))
            methods[f"untrained:{run.path.name}"] = [run.untrained_rule()]
            names[f"untrained:{run.path.name}"] = [str(run.path)]
            runs.append(run.path)
        elif "=" in source:
            label, pattern = source.split("=", 1)
            # Only directories: `runs/groove-s*` also matches the runs' log files.
            matched = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_dir())
            if not matched:
                raise FileNotFoundError(f"{source}: no run directory matches {pattern!r}")
            methods[label] = [RunDir(p).learned_rule() for p in matched]
            names[label] = [str(p) for p in matched]
            runs.extend(matched)
        else:
            run, step = RunDir.of(Path(source))
            label = run.path.name if step is None else f"{run.path.name}@{step}"
            methods[label] = [run.learned_rule(step)]
            names[label] = [source]
            runs.append(run.path)
    return methods, names, runs


def _cell(mean: float, se: float | None) -> str:
    if se is None or math.isnan(se):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {se:.3f}"


def _table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"{result['tasks']}: {result['settings']['num_agents']} fresh agents, "
        f"{result['lifetime_updates']} updates each",
        title_justify="left",
    )
    for column in ("rule", "final return", "between runs", "of optimum", "of A2C", "AUC"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for name, r in result["methods"].items():
        opt = r["fraction_of_optimum"]
        table.add_row(
            name if r["runs"] == 1 else f"{name} ({r['runs']} runs)",
            _cell(r["final_mean"], r["final_se_within"]),
            "" if r["final_se_between"] is None else f"± {r['final_se_between']:.3f}",
            "—" if opt is None else f"{opt:.2f}",
            "—" if r["fraction_of_a2c"] is None else f"{r['fraction_of_a2c']:.2f}",
            f"{r['auc']:.3f}",
        )
    return table


def _pairs_table(result: dict[str, Any]) -> Table:
    table = Table(
        title="paired differences of final return (same agents; run i against run i below a "
        "pair of several runs)",
        title_justify="left",
    )
    for column in ("a − b", "difference", "z", "between runs", "z between"):
        table.add_column(column, justify="left" if column == "a − b" else "right")

    def z(mean: float, se: float | None) -> str:
        ok = se is not None and not math.isnan(se) and se > 0
        return f"{mean / se:.1f}" if ok and se is not None else ""

    for p in result["pairs"]:
        between = p.get("diff_se_between")
        table.add_row(
            f"{p['a']} − {p['b']}",
            _cell(p["diff_mean"], p["diff_se"]),
            z(p["diff_mean"], p["diff_se"]),
            "" if between is None else f"± {between:.3f}",
            z(p["diff_mean"], between),
        )
        for r in p.get("per_run", []):
            table.add_row(
                f"  {Path(r['a']).name} − {Path(r['b']).name}",
                _cell(r["diff_mean"], r["diff_se"]),
                z(r["diff_mean"], r["diff_se"]),
                "",
                "",
            )
    return table


def _figure(results: list[dict[str, Any]], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * len(results), 4), layout="constrained")
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    for ax, result in zip(axes, results, strict=True):
        xs = result["updates"]
        for name, r in result["methods"].items():
            mean, se = r["curve_mean"], r["curve_se"]
            (line,) = ax.plot(xs, mean, marker="o", markersize=3, label=name)
            low = [m - (s if s == s else 0.0) for m, s in zip(mean, se, strict=True)]
            high = [m + (s if s == s else 0.0) for m, s in zip(mean, se, strict=True)]
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2)
        if result["optimum_mean"] is not None:
            ax.axhline(result["optimum_mean"], color="grey", ls="--", lw=1, label="optimum")
        ax.set_title(f"{result['tasks']} ({result['settings']['num_agents']} agents)")
        ax.set_xlabel("agent updates")
        ax.set_ylabel("return per episode (mean ± s.e.)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def _problems(args: EvalArgs) -> list[str]:
    """Bad values of the options, named by this command's flags, before anything loads."""
    from lpgx.compose import VEC_ENV_FAMILIES

    problems = []
    for flag, value in (
        ("--agents", args.agents),
        ("--lifetime", args.lifetime),
        ("--points", args.points),
        ("--episodes", args.episodes),
        ("--workers", args.workers),
        ("--rollout-len", args.rollout_len),
    ):
        if value is not None and value < 1:
            problems.append(f"{flag} must be at least 1, got {value}")
    for name in args.on.split(","):
        family = name.partition(":")[0]
        if family in VEC_ENV_FAMILIES:
            problems.append(
                f"--on {name}: {family} games run only online (`lpgx train --rule mgrl`); "
                "lpgx eval meta-tests on task distributions (level sets, gymnax:NAME, "
                "minatar:NAME, levels files)"
            )
    return problems + path_problems(args.json_out, args.png)


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    args = tyro.cli(EvalArgs, args=argv, prog="lpgx eval", description=__doc__)
    # Tables are output (stdout, or stderr under --json -); piped into a file or a log they
    # keep their rule names whole.
    out = table_console(args.json_out)
    if not out.is_terminal:
        out = table_console(args.json_out, width=120)
    problems = _problems(args)
    if problems:
        for problem in problems:
            console.print(f"[red]error:[/red] {problem}")
        return 2
    from lpgx.compose import make_tasks
    from lpgx.evaluation import EvalSettings, compare
    from lpgx.lifetime import AgentConfig, Learner
    from lpgx.run_dir import RunDir

    try:
        settings = EvalSettings(
            num_agents=args.agents,
            lifetime=args.lifetime,
            points=args.points,
            episodes=args.episodes,
            seed=args.seed,
        )
        all_tasks = [make_tasks(name) for name in args.on.split(",") if name]
        if not all_tasks:
            raise ValueError("--on names no task distribution; e.g. --on tabular,mazes")
        methods, run_names, runs = _methods(args.sources)
        first = RunDir(runs[0]).config() if runs else None
        workers, rollout = args.workers, args.rollout_len
        if workers is None:
            workers = first.env_workers if first else 64
        if rollout is None:
            rollout = first.train_rollout_len if first else 20
        results = []
        for tasks in all_tasks:
            learner = Learner(tasks.env(), AgentConfig(num_workers=workers, rollout_len=rollout))
            console.print(f"meta-testing on {tasks.name} …")
            result = compare(methods, tasks, learner, settings, run_names)
            results.append(result)
            out.print(_table(result))
            if result["pairs"]:
                out.print(_pairs_table(result))
    except (ValueError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {name_flags(str(e), _FLAGS)}")
        return 2
    if args.json_out is not None:
        write_json({"sources": list(args.sources), "results": results}, args.json_out)
        if not to_stdout(args.json_out):
            console.print(f"wrote {args.json_out}")
    if args.png is not None:
        console.print(f"wrote {_figure(results, args.png)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
