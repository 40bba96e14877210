"""Entry point of the `lpgx` command: dispatches to one sub-command module per command group."""

import gc
import importlib
import sys

from rich.console import Console
from rich.table import Table

from . import _compile_cache

# command -> (module with a `main(argv: list[str]) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": (
        "lpgx_cli.train",
        "meta-train an update rule from a preset ({presets}; `--preset NAME`), with the "
        "reference's flag names",
    ),
    "eval": (
        "lpgx_cli.eval",
        "meta-test rules (runs, their untrained rule, a2c) on new tasks, side by side",
    ),
    "plot": (
        "lpgx_cli.plot",
        "PNG figures of a run directory: learning curves with the held-out result, what the "
        "learned rule outputs, the curriculum",
    ),
    "bench": (
        "lpgx_cli.bench",
        "benchmark suite: env steps, agent update, meta-step, scaling (`--suite quick|full`)",
    ),
    "levels": (
        "lpgx_cli.levels",
        "list the level sets and their optimal returns, or draw one (`levels list "
        "[--optimal]`, `levels show NAME`)",
    ),
    "bias": (
        "lpgx_cli.bias",
        "gradient-bias experiments: tabular MDPs (MAML-RL, LIRPG), LOLA-DiCE, the LPG's own",
    ),
}


def _usage(console: Console) -> None:
    from lpgx.compose import PRESETS

    table = Table(title="lpgx — meta-learning RL update rules in JAX", show_header=True)
    table.add_column("command", no_wrap=True)
    table.add_column("what it does")
    for name, (_, help_text) in COMMANDS.items():
        table.add_row(name, help_text.format(presets=", ".join(PRESETS)))
    console.print(table)
    console.print("Run `lpgx COMMAND --help` for a command's options.")
    console.print(
        "Compiled programs are cached in ~/.cache/lpgx/jax (XDG_CACHE_HOME, or "
        "LPGX_COMPILE_CACHE_DIR); `--no-compile-cache` or LPGX_COMPILE_CACHE=0 turns that off."
    )
    console.print(
        "`--fast-compile`: XLA compiles faster (about 40 % less start-up for the quick preset) "
        "and the programs run slower (up to about 18 %), with float rounding that differs from "
        "a default run's: for smoke tests and short runs."
    )


def main(argv: list[str] | None = None, *, freeze_imports: bool = False) -> int:
    """Run the `lpgx` command line; returns the exit status.

    Before the sub-command is imported, lpgx's CPU speed-ups are turned on
    (`lpgx.enable_speedups`), then the CLI's compile options and cache (`_compile_cache`). With
    ``freeze_imports`` (the console script's `run`), the objects the sub-command's imports made
    are moved out of reach of Python's garbage collector (`gc.freeze`) before it runs.
    """
    args, cache = _compile_cache.strip_flag(list(sys.argv[1:] if argv is None else argv))
    args, faster = _compile_cache.strip_faster_flag(args)
    console = Console(stderr=True)
    if not args or args[0] in ("-h", "--help"):
        _usage(Console())  # help is output: stdout
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        console.print(
            f"[red]unknown command {command!r}[/red]; choose one of: {', '.join(COMMANDS)}"
        )
        return 2
    # Before the sub-command is imported, so before anything can start a JAX backend (XLA
    # reads XLA_FLAGS only then): lpgx's speed-ups, then the CLI's own compile options.
    import lpgx

    lpgx.enable_speedups()
    _compile_cache.fast_compile_flags(faster)
    if faster:
        console.print(
            "--fast-compile: XLA's elemental emitter, no loop unrolling (programs run slower; "
            "float rounding differs from a run without the flag)"
        )
    _compile_cache.configure(cache)
    module = importlib.import_module(COMMANDS[command][0])
    if freeze_imports:
        gc.freeze()
    return int(module.main(rest))


def run() -> int:
    """The `lpgx` console script (and ``python -m lpgx_cli.main``): `main` in a process of its
    own, with Python's cyclic garbage collector tuned for a command that imports JAX and then
    traces large programs.

    By default a collection starts every 700 new container objects, and the full ones walk every
    object JAX's and lpgx's imports made. Here a collection starts every 50,000, and the
    imported objects, which live as long as the process, are frozen (`gc.freeze`) so later
    collections skip them (the start-up time this saves is in ``benchmarks/RESULTS.md``).
    Cycles are still collected; in-process callers of `main` (tests, notebooks) keep their own
    settings.
    """
    gc.set_threshold(50_000, 10, 10)
    return main(freeze_imports=True)


if __name__ == "__main__":
    sys.exit(run())
