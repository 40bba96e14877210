"""`lpgx plot RUN_DIR`: PNG learning curves of a training run.

Writes the learning curves to ``--png PATH`` (default ``RUN_DIR/learning_curves.png``), and
what the learned rule outputs and the curriculum figures into RUN_DIR.
"""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro
from rich.console import Console

from ._output import path_problems, png_option


@dataclass(frozen=True)
class PlotArgs:
    run_dir: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """Run directory written by `lpgx train`."""
    png: Annotated[
        Path | None, png_option("the learning curves", "default: RUN_DIR/learning_curves.png")
    ] = None
    smooth: int = 10
    """Moving-average window, in meta-steps."""
    rule: bool = True
    """Also draw what the latest checkpoint's rule outputs (π̂ against return-to-go and n/N)."""


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    args = tyro.cli(PlotArgs, args=argv, prog="lpgx plot", description=__doc__)
    problems = path_problems(png=args.png)
    for problem in problems:
        console.print(f"[red]error:[/red] {problem}")
    if problems:
        return 2
    from lpgx.plotting import plot_curriculum, plot_learning_curves, plot_rule_outputs

    try:
        # A spinner per phase on a terminal (stderr); nothing animated otherwise.
        with console.status("drawing the learning curves…") as status:
            console.print(f"wrote {plot_learning_curves(args.run_dir, args.png, args.smooth)}")
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
