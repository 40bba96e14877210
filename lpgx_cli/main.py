"""Entry point of the `lpgx` command: dispatches to one sub-command module per command group."""

import importlib
import sys

from rich.console import Console
from rich.table import Table

# command -> (module with a `main(argv: list[str]) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("lpgx_cli.train", "meta-train an LPG (`--preset quick|lpg`, reference flag names)"),
    "eval": (
        "lpgx_cli.eval",
        "meta-test rules (runs, their untrained rule, a2c) on new tasks, side by side",
    ),
    "plot": ("lpgx_cli.plot", "PNG learning curves of a run directory"),
    "bench": (
        "lpgx_cli.bench",
        "benchmark suite: env steps, agent update, meta-step, scaling (`--suite quick|full`)",
    ),
    "levels": (
        "lpgx_cli.levels",
        "list the level sets, or draw one (`levels list`, `levels show NAME`)",
    ),
    "bias": (
        "lpgx_cli.bias",
        "gradient-bias experiments: tabular MDPs (MAML-RL, LIRPG) and LOLA-DiCE",
    ),
}


def _usage(console: Console) -> None:
    table = Table(title="lpgx — meta-learning RL update rules in JAX", show_header=True)
    table.add_column("command")
    table.add_column("what it does")
    for name, (_, help_text) in COMMANDS.items():
        table.add_row(name, help_text)
    console.print(table)
    console.print("Run `lpgx COMMAND --help` for a command's options.")


def main(argv: list[str] | None = None) -> int:
    """Run the `lpgx` command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True)
    if not args or args[0] in ("-h", "--help"):
        _usage(console)
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        console.print(
            f"[red]unknown command {command!r}[/red]; choose one of: {', '.join(COMMANDS)}"
        )
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
