"""`lpgx train`: meta-train an LPG from a preset, with flags following the reference's names."""

import datetime
import math
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
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lpgx.compose import PRESETS, TrainConfig

_SHOWN = (
    ("eval_rollout_reward", "reward / step"),
    ("outer_pg_loss", "outer PG loss"),
    ("meta_grad_norm", "meta-grad norm"),
    ("agent/pi_hat_l2", "mean π̂²"),
    ("agent/policy_entropy", "policy entropy"),
    ("agent/value_loss", "critic loss"),
    ("ended_lifetimes", "ended lifetimes"),
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


class _RichProgress:
    """Progress bar with ETA and a live table of the latest metrics (stderr)."""

    def __init__(self, console: Console):
        self.console = console
        self.live_ui = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]meta-steps"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task("train", total=1)
        self.latest: dict[str, int | float] = {}
        self.live = Live(self._render(), console=console, refresh_per_second=4)

    def _render(self) -> Group:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("metric")
        table.add_column("latest", justify="right")
        for key, label in _SHOWN:
            if key in self.latest:
                table.add_row(label, f"{self.latest[key]:.4g}")
        return Group(self.progress, table)

    def on_start(self, start_step: int, total_steps: int) -> None:
        self.progress.update(self.task, total=total_steps, completed=start_step)
        self.console.print(f"compiling one chunk of meta-steps (from step {start_step}) …")
        if self.live_ui:
            self.live.start()

    def on_compiled(self, seconds: float) -> None:
        self.console.print(f"compiled in {seconds:.1f} s")

    def on_chunk(self, step: int, records: list[dict[str, int | float]]) -> None:
        if records:
            self.latest = records[-1]
        self.progress.update(self.task, completed=step)
        if self.live_ui:
            self.live.update(self._render())

    def on_checkpoint(self, step: int, path: Path) -> None:
        if not self.live_ui:
            self.console.print(f"step {step}: checkpoint {path}")

    def on_evaluate(self, results: dict[str, Any]) -> None:
        self.stop()
        table = Table(title="held-out evaluation: fresh agents trained for a whole lifetime")
        table.add_column("rule")
        table.add_column("mean return (± s.e.)", justify="right")
        for name in ("initial_rule", "final_rule"):
            r = results[name]
            table.add_row(
                name.replace("_", " "), f"{r['final_return']:.3f} ± {r['final_return_se']:.3f}"
            )
        gain, se = results["paired_gain"], results["paired_gain_se"]
        z = gain / se if se and not math.isnan(se) and se > 0 else float("nan")
        table.add_row("final − initial (paired)", f"{gain:.3f} ± {se:.3f}  ({z:.1f} s.e.)")
        self.console.print(table)

    def stop(self) -> None:
        if self.live_ui and self.live.is_started:
            self.live.stop()


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    preset, rest = _split_preset(argv)
    if preset not in PRESETS:
        console.print(f"[red]unknown preset {preset!r}[/red]; choose one of: {', '.join(PRESETS)}")
        return 2
    description, default = PRESETS[preset]
    try:
        args = tyro.cli(
            TrainArgs,
            default=TrainArgs(config=default),
            args=rest,
            prog="lpgx train",
            description=f"Meta-train an LPG. Preset {preset!r}: {description}. "
            f"Presets: {', '.join(PRESETS)} (--preset NAME).",
        )
        if args.resume and args.out is not None and (args.out / "config.json").exists():
            # Resume with the run's own settings; flags given now override them.
            from lpgx.train import read_config

            saved = TrainConfig.from_dict(read_config(args.out / "config.json"))
            args = tyro.cli(
                TrainArgs, default=TrainArgs(config=saved), args=rest, prog="lpgx train"
            )
    except (ValueError, TypeError) as e:
        console.print(f"[red]error:[/red] {e}")
        return 2

    # Imported here so `lpgx train --help` stays fast.
    from lpgx.logging import tensorboard_sink, wandb_sink
    from lpgx.train import train

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out if args.out is not None else Path("runs") / f"{preset}-{stamp}"
    progress = _RichProgress(console)
    try:
        sinks = []
        if args.tensorboard:
            sinks.append(tensorboard_sink(out / "tb"))
        if args.wandb_project:
            from dataclasses import asdict

            sinks.append(wandb_sink(args.wandb_project, asdict(args.config), args.wandb_entity))
        console.print(f"run directory: {out}")
        result = train(
            args.config,
            out,
            resume=args.resume,
            callbacks=progress,
            sinks=sinks,
            evaluate=args.evaluate,
        )
    except (ValueError, FileNotFoundError) as e:
        progress.stop()
        console.print(f"[red]error:[/red] {e}")
        return 2
    finally:
        progress.stop()
    if result.interrupted:
        console.print(
            f"[yellow]interrupted[/yellow] at step {result.final_step}; checkpoint written. "
            f"Continue with: lpgx train --preset {preset} --out {out} --resume"
        )
        return 130
    peak = result.peak_memory_bytes
    memory = "" if peak is None else f"; peak device memory {peak / 2**30:.2f} GiB"
    console.print(f"done: {result.final_step} meta-steps in {out}{memory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
