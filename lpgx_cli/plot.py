"""`lpgx plot RUN_DIR`: PNG learning curves of a training run."""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro
from rich.console import Console


@dataclass(frozen=True)
class PlotArgs:
    run_dir: Annotated[Path, tyro.conf.Positional]
    """Run directory written by `lpgx train`."""
    out: Path | None = None
    """PNG to write (default: RUN_DIR/learning_curves.png)."""
    smooth: int = 10
    """Moving-average window, in meta-steps."""
    rule: bool = True
    """Also draw what the latest checkpoint's rule outputs (π̂ against return-to-go and n/N)."""


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    args = tyro.cli(PlotArgs, args=argv, prog="lpgx plot")
    from lpgx.plotting import plot_curriculum, plot_learning_curves, plot_rule_outputs

    try:
        # A spinner per phase on a terminal (stderr); nothing animated otherwise.
        with console.status("drawing the learning curves…") as status:
            console.print(f"wrote {plot_learning_curves(args.run_dir, args.out, args.smooth)}")
            if args.rule:
                status.update("running the learned rule on fresh agents' rollouts…")
                console.print(f"wrote {plot_rule_outputs(args.run_dir)}")
            status.update("drawing the curriculum…")
            for path in plot_curriculum(args.run_dir):
                console.print(f"wrote {path}")
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
