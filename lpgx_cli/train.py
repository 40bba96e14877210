"""`lpgx train`: meta-train an LPG from a preset, with flags following the reference's names."""

import datetime
import math
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import tyro
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lpgx.compose import PRESETS, TrainConfig
from lpgx.metrics import is_periodic_eval
from lpgx.run_dir import RunDir
from lpgx.train import TrainCallbacks

# Metrics of the live table, in this order, where the run reports them (names, units:
# `lpgx.metrics`).
_SHOWN = (
    "episode_return",
    "meta/gamma",
    "meta/lambda",
    "meta/value_coeff",
    "meta/entropy_coeff",
    "eval_rollout_reward",
    "fitness_mean",
    "outer_pg_loss",
    "meta_grad_norm",
    "agent/pi_hat_l2",
    "agent/policy_entropy",
    "agent/value_loss",
    "curriculum/score_mean",
    "ended_lifetimes",
)


@dataclass(frozen=True)
class TrainArgs:
    config: Annotated[TrainConfig, tyro.conf.arg(name="")]
    out: Path | None = None
    """Run directory (default: runs/PRESET-YYYYmmdd-HHMMSS). Must not exist unless --resume."""
    resume: bool = False
    """Continue the run in --out from its latest checkpoint."""
    evaluate: bool = True
    """After training, train fresh agents on held-out levels with the initial and final rule."""
    tensorboard: bool = False
    """Also write TensorBoard scalars to OUT/tb (needs `pip install 'lpgx[tensorboard]'`)."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project (needs `pip install 'lpgx[wandb]'`)."""
    wandb_entity: str | None = None
    """Weights & Biases entity (user or team) of --wandb-project (default: your default
    entity)."""
    debug: bool = False
    """Run the meta-steps without compilation (jax.disable_jit) and with NaN checks
    (jax_debug_nans), so a debugger can step into the rule; very slow: use a tiny config."""
    coordinator: str | None = None
    """Multi-process run: HOST:PORT of process 0, which listens there (same on every process;
    leave out under SLURM / Open MPI, which say it)."""
    num_processes: int | None = None
    """Multi-process run: how many processes (each started with the same flags)."""
    process_id: int | None = None
    """Multi-process run: this process's number, 0 to --num-processes - 1 (0 writes the run)."""
    coordinator_timeout: int = 300
    """Seconds to wait for the coordinator and for every process to join before failing."""


def _split_preset(argv: list[str]) -> tuple[str, list[str]]:
    rest, preset, i = [], "quick", 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--preset" and i + 1 < len(argv):
            preset, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--preset="):
            preset = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return preset, rest


class _RichProgress(TrainCallbacks):
    """A spinner naming the phase (compiling, meta-steps, evaluating), a bar with ETA and a
    live table of the latest metrics, on stderr. Without a terminal nothing is animated: each
    phase and checkpoint is one line (what a scheduler's log file wants)."""

    def __init__(self, console: Console):
        self.console = console
        self.live_ui = console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task("starting", total=1)
        self.latest: dict[str, int | float] = {}
        # The latest periodic held-out return per --eval-on distribution: (mean, s.e., step).
        self.held_out: dict[str, tuple[float, float, int]] = {}
        self.live = Live(self._render(), console=console, refresh_per_second=4)

    def _render(self) -> Group:
        from lpgx.metrics import describe

        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("metric")
        table.add_column("latest", justify="right")
        table.add_column("unit", style="dim")
        for key in _SHOWN:
            if key in self.latest:
                info = describe(key)
                table.add_row(info.name, f"{self.latest[key]:.4g}", info.unit)
        for key, (value, se, step) in self.held_out.items():
            info = describe(key)
            table.add_row(info.name, f"{value:.4g} ± {se:.2g}", f"{info.unit}, step {step}")
        return Group(self.progress, table)

    def phase(self, text: str) -> None:
        self.progress.update(self.task, description=text)
        if self.live_ui:
            self.live.update(self._render())
        else:
            self.console.print(text)

    def on_start(self, start_step: int, total_steps: int) -> None:
        self.progress.update(self.task, total=total_steps, completed=start_step)
        if self.live_ui:
            self.live.start()
        self.phase(f"compiling a chunk of meta-steps (from step {start_step})")

    def on_compiled(self, seconds: float) -> None:
        self.console.print(f"compiled in {seconds:.1f} s")
        self.phase("meta-steps")

    def on_chunk(self, step: int, records: list[dict[str, int | float]]) -> None:
        if records:
            self.latest = records[-1]
            for key, value in records[-1].items():
                if is_periodic_eval(key) and key.endswith("/return"):
                    se = float(records[-1].get(key + "_se", float("nan")))
                    self.held_out[key] = (float(value), se, step)
                    if not self.live_ui:
                        name = key.removeprefix("eval/").removesuffix("/return")
                        self.console.print(
                            f"step {step}: held-out return on {name}: {float(value):.3f} ± {se:.3f}"
                        )
        self.progress.update(self.task, completed=step)
        if self.live_ui:
            self.live.update(self._render())

    def on_phase(self, text: str) -> None:
        self.phase(text)

    def on_stop_requested(self, signum: int) -> None:
        self.console.print(
            f"[yellow]{signal.Signals(signum).name}[/yellow]: stopping after the chunk that is "
            "running (a checkpoint is written); send it again to stop at once"
        )

    def on_checkpoint(self, step: int, path: Path) -> None:
        if not self.live_ui:
            self.console.print(f"step {step}: checkpoint {path}")

    def on_evaluate(self, results: dict[str, Any]) -> None:
        self.stop()
        print_evaluation(self.console, results)

    def stop(self) -> None:
        if self.live_ui and self.live.is_started:
            self.live.stop()


def _pm(value: float | None, se: float | None, fmt: str = ".3f") -> str:
    if value is None or math.isnan(value):
        return "unknown"
    if se is None or math.isnan(se):
        return format(value, fmt)
    return f"{format(value, fmt)} ± {format(se, fmt)}"


def print_evaluation(console: Console, results: dict[str, Any]) -> None:
    """The held-out evaluation of ``eval.json`` as a table that fits 80 columns: each rule's
    return and its fraction of the optimum on the same tasks, and what they were measured on."""
    table = Table(title="held-out evaluation: fresh agents trained by each rule")
    table.add_column("rule")
    table.add_column("return", justify="right")
    table.add_column("% of optimal", justify="right")
    for name in ("initial_rule", "final_rule"):
        r = results[name]
        frac, frac_se = r.get("fraction_of_optimal"), r.get("fraction_of_optimal_se")
        pct = _pm(
            None if frac is None else 100 * frac,
            None if frac_se is None else 100 * frac_se,
            ".1f",
        )
        label = "initial" if name == "initial_rule" else "learned"
        table.add_row(label, _pm(r["final_return"], r["final_return_se"]), pct)
    gain, se = results["paired_gain"], results["paired_gain_se"]
    z = gain / se if se and not math.isnan(se) and se > 0 else float("nan")
    table.add_row("learned − initial", f"{_pm(gain, se)} ({z:.1f} s.e.)", "")
    console.print(table)
    optimum = (
        f"Optimal return on the same tasks: "
        f"{_pm(results['optimal_return'], results['optimal_return_se'])} (exact)."
        if results["optimal_return"] is not None
        else "Optimal return: unknown (not a tabular level set)."
    )
    console.print(
        f"{results['held_out_agents']} agents on held-out {results['level_set']} tasks, each "
        f"trained for {results['lifetime_updates']} updates; return of one episode, mean of "
        f"{results['eval_episodes']} episodes per agent; ± one standard error. {optimum}",
        highlight=False,
    )


def _stop(progress: _RichProgress | None) -> None:
    if progress is not None:
        progress.stop()


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    preset, rest = _split_preset(argv)
    if preset not in PRESETS:
        console.print(f"[red]unknown preset {preset!r}[/red]; choose one of: {', '.join(PRESETS)}")
        return 2
    description, default = PRESETS[preset]
    if "-h" in rest or "--help" in rest:
        from .help import print_train_help

        print_train_help(Console(), preset, TrainArgs(config=default))
        return 0
    try:
        args = tyro.cli(
            TrainArgs,
            default=TrainArgs(config=default),
            args=rest,
            prog="lpgx train",
            description=f"Meta-train an LPG. Preset {preset!r}: {description}. "
            f"Presets: {', '.join(PRESETS)} (--preset NAME).",
        )
        if args.resume and args.out is not None and RunDir(args.out).config_path.exists():
            # Resume with the run's own settings; flags given now override them.
            saved = RunDir(args.out).config()
            args = tyro.cli(
                TrainArgs, default=TrainArgs(config=saved), args=rest, prog="lpgx train"
            )
    except (ValueError, TypeError) as e:
        console.print(f"[red]error:[/red] {e}")
        return 2

    # Imported here so `lpgx train --help` stays fast.
    from lpgx import distributed
    from lpgx.logging import tensorboard_sink, wandb_sink
    from lpgx.train import train

    try:
        multi = distributed.initialize(
            args.coordinator, args.num_processes, args.process_id, args.coordinator_timeout
        )
    except (ValueError, TimeoutError) as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    if multi and args.out is None:
        console.print(
            "[red]error:[/red] a multi-process run needs --out: the same run directory on a "
            "file system every process sees"
        )
        return 2
    writer = distributed.is_writer()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out if args.out is not None else Path("runs") / f"{preset}-{stamp}"
    # Only process 0 shows progress and writes; the others say who they are and fail loudly.
    progress = _RichProgress(console) if writer else None
    try:
        sinks = []
        if args.tensorboard and writer:
            sinks.append(tensorboard_sink(out / "tb"))
        if args.wandb_project and writer:
            from dataclasses import asdict

            sinks.append(wandb_sink(args.wandb_project, asdict(args.config), args.wandb_entity))
        if writer:
            console.print(f"run directory: {out}")
        else:
            import jax

            console.print(
                f"process {jax.process_index()} of {jax.process_count()}: training; process 0 "
                f"writes {out}"
            )
        result = train(
            args.config,
            out,
            resume=args.resume,
            callbacks=progress,
            sinks=sinks,
            evaluate=args.evaluate,
            debug=args.debug,
            executable_cache=True,  # used where the compile cache is on (not --no-compile-cache)
        )
    except (ValueError, FileNotFoundError) as e:
        _stop(progress)
        console.print(f"[red]error:[/red] {e}")
        return 2
    except FloatingPointError as e:  # --debug: the first NaN, where it was made
        _stop(progress)
        console.print_exception()
        console.print(f"[red]NaN found (--debug):[/red] {e}; the traceback above shows where")
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C before the first chunk: nothing to save
        _stop(progress)
        console.print("[yellow]stopped[/yellow] before the first chunk completed")
        return 130
    finally:
        _stop(progress)
    if result.interrupted:
        signum = result.stop_signal if result.stop_signal is not None else signal.SIGINT
        console.print(
            f"[yellow]stopped by {signal.Signals(signum).name}[/yellow] at step "
            f"{result.final_step}; checkpoint written. "
            f"Continue with: lpgx train --out {out} --resume"
        )
        return 128 + int(signum)
    peak = result.peak_memory_bytes
    memory = "" if peak is None else f"; peak device memory {peak / 2**30:.2f} GiB"
    console.print(f"done: {result.final_step} meta-steps in {out}{memory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
