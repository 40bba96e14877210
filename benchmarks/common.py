"""Shared benchmark protocol: compile separately, warm up, block, repeat, report median and spread.

Every benchmark times a function compiled ahead of time with
``jax.jit(f).lower(*args).compile()`` (the compile time is reported on its own), runs it once or
more to warm up, then times ``repeats`` calls, each ended by `jax.block_until_ready`.
A script run as ``python -m benchmarks.X`` enters through `script_main`, so it times lpgx as
the ``lpgx`` command runs it.
"""

import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

import jax

__all__ = [
    "Timing",
    "environment_info",
    "environment_lines",
    "markdown_table",
    "report_results",
    "results_table",
    "script_main",
    "time_compiled",
]


@dataclass(frozen=True)
class Timing:
    """Wall-clock timings of one compiled function, in seconds.

    **Attributes:** ``compile_s`` is the lowering plus compilation time; ``times_s`` holds one
    entry per timed repeat (after warm-up).
    """

    compile_s: float
    times_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def min_s(self) -> float:
        return min(self.times_s)

    @property
    def max_s(self) -> float:
        return max(self.times_s)

    @property
    def spread(self) -> float:
        """``(max - min) / median``: the relative spread of the repeats."""
        return (self.max_s - self.min_s) / self.median_s if self.median_s > 0 else 0.0


def time_compiled(
    f: Callable[..., Any], *args: Any, repeats: int = 5, warmup: int = 1
) -> tuple[Timing, Any]:
    """Compile `f` for `args` ahead of time, warm it up and time `repeats` calls.

    **Arguments:**

    - `f`: a JAX-traceable function of `args` (close over static configuration).
    - `args`: its array arguments (pytrees of arrays).
    - `repeats`: number of timed calls (at least 1).
    - `warmup`: untimed calls before them.

    **Returns:** `(timing, output)` with the output of the last call.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    start = time.perf_counter()
    compiled = jax.jit(f).lower(*args).compile()
    compile_s = time.perf_counter() - start
    out = None
    for _ in range(warmup):
        out = jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return Timing(compile_s=compile_s, times_s=tuple(times)), out


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def environment_info() -> dict[str, Any]:
    """Where and with what a benchmark ran: date, host, devices and library versions."""
    devices = jax.devices()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind if devices else "none",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "equinox": _version("equinox"),
        "lpgx": _version("lpgx"),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (numbers right-aligned when the cell parses as one)."""

    def is_number(text: str) -> bool:
        try:
            float(text.replace(",", "").replace("±", "").replace("%", ""))
        except ValueError:
            return False
        return True

    numeric = [bool(rows) and all(is_number(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if num else "---" for num in numeric) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def environment_lines(command: str, note: str = "") -> list[str]:
    """Markdown bullet lines for a results section: date, device, versions and `command`
    (followed by `note`, e.g. the total run time)."""
    info = environment_info()
    return [
        f"- date: {info['date']}",
        f"- device: {info['device_kind']} ({info['backend']}; {', '.join(info['devices'])}; "
        f"{info['cpu_count']} CPU cores; {info['platform']})",
        f"- versions: python {info['python']}, jax {info['jax']}, jaxlib {info['jaxlib']}, "
        f"equinox {info['equinox']}, lpgx {info['lpgx']}",
        f"- XLA_FLAGS: `{info['xla_flags'] or '(none)'}`",
        f"- command: `{command}`{note}",
    ]


def results_table(
    title: str, header: list[str], rows: list[list[str]], left_columns: int = 1
) -> Any:
    """A rich table of `rows`; the first `left_columns` are left-aligned, numbers right."""
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(header):
        # Headers may wrap, numbers may not: every column is at least as wide as its cells.
        width = max((len(row[i]) for row in rows), default=1)
        table.add_column(col, justify="left" if i < left_columns else "right", min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


def report_results(
    title: str,
    header: list[str],
    rows: list[list[str]],
    *,
    command: str,
    markdown: Path | None = None,
    left_columns: int = 1,
    note: str = "",
    protocol: Sequence[str] = (),
) -> None:
    """Print a benchmark's results as a rich table on stdout and, if `markdown` is given, write
    them there as a markdown section body: `environment_lines` (`command` and `note`), the
    `protocol` lines, then the table."""
    from rich.console import Console

    out = Console()
    if not out.is_terminal:  # piped: do not squeeze the table into 80 columns
        out = Console(width=200)
    out.print(results_table(title, header, rows, left_columns))
    if markdown is not None:
        lines = [*environment_lines(command, note), *protocol, "", markdown_table(header, rows), ""]
        markdown.write_text("\n".join(lines))
        Console(stderr=True).print(f"wrote {markdown}")


def script_main(main: Callable[[], int | None]) -> NoReturn:
    """Run a benchmark's `main` as ``python -m benchmarks.X`` and exit with its status.

    lpgx's CPU speed-ups are turned on first (`lpgx.enable_speedups`, as the ``lpgx`` command
    does), before any JAX computation, so the script times what a user of the command gets.
    Calling `main` directly (tests, notebooks) leaves JAX's settings as they are.
    """
    import lpgx

    lpgx.enable_speedups()
    status = main()
    sys.exit(0 if status is None else status)
