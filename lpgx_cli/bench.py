"""`lpgx bench`: run the benchmark suite (`benchmarks.suite`) and report it.

``lpgx bench [--suite quick|full] [--json PATH] [--png PATH] [--devices N]`` times every item
(environment stepping, one agent update, one meta-gradient step, one ES generation, a chunk with
the PLR/GROOVE curriculum) and sweeps the meta-gradient step over the number of agents.
Progress and tables go to stderr; ``--json PATH`` writes the complete report (every item with
its config, the device and the versions) to PATH, ``--json -`` to stdout.
"""

import math
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro
from rich.console import Console
from rich.table import Table

from ._output import json_option, path_problems, png_option, to_stdout, write_json

__all__ = ["BenchArgs", "main"]


@dataclass(frozen=True)
class BenchArgs:
    """Time lpgx's core (env stepping, agent update, meta-gradient step, ES generation,
    PLR/GROOVE step) and sweep the meta-gradient step over the number of agents."""

    suite: Literal["quick", "full"] = "quick"
    """quick: CPU-sized, about two minutes on 2 cores; full: reference sizes, sweep to 4096."""
    json_out: Annotated[
        Path | None,
        json_option("the complete report (every item with its config, the device, the versions)"),
    ] = None
    png: Annotated[
        Path | None,
        png_option("the scaling sweep (meta-steps/s and env steps/s against num_agents)"),
    ] = None
    devices: int | None = None
    """Devices to split every item's population (environments, agents, ES candidates) over;
    all when left out."""
    tiny: bool = False
    """Test-sized items: checks in seconds that everything runs; the timings mean little."""
    max_agents: int | None = None
    """Largest num_agents of the sweep; the suite's when left out."""
    point_time_limit: float | None = None
    """Seconds a sweep point may take; the suite's when left out."""
    time_budget: float | None = None
    """Seconds into the run after which the sweep starts no new point (quick: 110; inf: none)."""
    repeats: int | None = None
    """Timed calls per item; the suite's when left out."""
    seed: int = 0
    """Seed of every item."""


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{1e3 * seconds:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _fmt_rate(rate: float | None, digits: int = 0) -> str:
    return "—" if rate is None else f"{rate:,.{digits}f}"


def _fmt_mem(peak: int | None) -> str:
    return "n/a" if peak is None else f"{peak / 2**20:,.0f} MiB"


def _config_text(config: dict[str, Any] | None) -> str:
    if not config:
        return ""
    skip = {"repeats", "seed", "tabular", "task_pool"}
    return ", ".join(f"{k}={v}" for k, v in config.items() if k not in skip)


def _items_table(report: dict[str, Any]) -> Table:
    table = Table(
        title=f"lpgx bench --suite {report['suite']}" + (" (tiny)" if report["tiny"] else "")
    )
    for col, justify in (
        ("item", "left"),
        ("config", "left"),
        ("compile", "right"),
        ("median", "right"),
        ("min–max", "right"),
        ("spread", "right"),
        ("env steps/s", "right"),
        ("meta-steps/s", "right"),
        ("peak mem", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=col != "config")  # pyright: ignore[reportArgumentType]
    for r in report["items"]:
        if r["status"] != "ok":
            note = r.get("reason") or r.get("error", "")
            style = "dim italic" if r["status"] == "not yet available" else "red"
            table.add_row(r["title"], f"[{style}]{r['status']}: {note}[/{style}]", *[""] * 7)
            continue
        table.add_row(
            r["title"],
            _config_text(r["config"]),
            _fmt_s(r["compile_s"]),
            _fmt_s(r["median_s"]),
            f"{_fmt_s(r['min_s'])}–{_fmt_s(r['max_s'])}",
            f"{100 * r['spread']:.0f}%",
            _fmt_rate(r["env_steps_per_s"]),
            _fmt_rate(r["meta_steps_per_s"], 3),
            _fmt_mem(r["peak_memory_bytes"]),
        )
    return table


def _sweep_table(sweep: dict[str, Any]) -> Table:
    table = Table(title=f"scaling: {sweep.get('title', sweep['item'])} over num_agents")
    for col in ("agents", "compile", "median", "min–max", "meta-steps/s", "env steps/s", "mem"):
        table.add_column(col, justify="right", no_wrap=True)
    for p in sweep["points"]:
        table.add_row(
            str(p["num_agents"]),
            _fmt_s(p["compile_s"]),
            _fmt_s(p["median_s"]),
            f"{_fmt_s(p['min_s'])}–{_fmt_s(p['max_s'])}",
            _fmt_rate(p["meta_steps_per_s"], 3),
            _fmt_rate(p["env_steps_per_s"]),
            _fmt_mem(p["peak_memory_bytes"]),
        )
    return table


def main(argv: list[str] | None = None) -> int:
    """Run `lpgx bench`; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True)
    try:
        args = tyro.cli(
            BenchArgs,
            args=args_list,
            prog="lpgx bench",
            config=(tyro.conf.FlagCreatePairsOff,),
        )
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)

    # Imported here so `lpgx bench --help` stays fast.
    from benchmarks import suite as bench_suite

    description, sizes = bench_suite.SUITES[args.suite]
    if args.tiny:
        sizes = bench_suite.TINY
    problems = []
    for name in ("max_agents", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name in ("point_time_limit", "time_budget"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            problems.append(f"--{name.replace('_', '-')} must be positive, got {value}")
    problems += path_problems(args.json_out, args.png)
    try:
        device_count = bench_suite.validate_devices(args.devices)
    except ValueError as err:
        problems.append(str(err))
        device_count = 0
    if problems:
        for p in problems:
            console.print(f"[red]error:[/red] {p}")
        return 2
    if args.max_agents is not None:
        sizes = replace(sizes, sweep_max_agents=args.max_agents)
    if args.point_time_limit is not None:
        sizes = replace(sizes, sweep_time_limit_s=args.point_time_limit)
    if args.time_budget is not None:
        budget = None if math.isinf(args.time_budget) else args.time_budget
        sizes = replace(sizes, time_budget_s=budget)
    if args.repeats is not None:
        sizes = replace(sizes, repeats=args.repeats, meta=replace(sizes.meta, repeats=args.repeats))
    if device_count:
        try:
            bench_suite.check_sizes(sizes, device_count)
        except ValueError as err:
            console.print(f"[red]error:[/red] {err}")
            return 2

    console.print(
        f"[bold]lpgx bench --suite {args.suite}[/bold]"
        + (" [yellow](tiny sizes)[/yellow]" if args.tiny else f": {description}")
    )
    start = time.perf_counter()
    with console.status("starting…") as status:

        def log(message: str) -> None:
            status.update(f"{message} ({time.perf_counter() - start:.0f} s)")
            if not console.is_terminal:
                console.print(f"[dim]{message}[/dim]")

        report = bench_suite.run_suite(
            sizes,
            suite=args.suite,
            tiny=args.tiny,
            seed=args.seed,
            device_count=device_count,
            log=log,
            command=shlex.join(["lpgx", "bench", *args_list]),
        )

    out = console if console.is_terminal else Console(stderr=True, width=160)
    out.print(_items_table(report))
    for sweep in report["scaling"]:
        if sweep.get("status") == "error":
            out.print(f"[red]scaling sweep of {sweep['item']} failed:[/red] {sweep['error']}")
            continue
        out.print(_sweep_table(sweep))
        out.print(f"sweep stopped: {sweep['stopped']}")
    dev, vers = report["device"], report["versions"]
    out.print(
        f"device: {dev['device_kind']} ({dev['backend']}; using {dev['device_count']} of "
        f"{dev['devices_available']}: {', '.join(dev['devices'])}; {dev['cpu_count']} CPU "
        f"cores; load average {' '.join(f'{x:g}' for x in dev['load_average'])})"
    )
    if dev["cpu_count"] and dev["load_average"][0] > dev["cpu_count"]:
        out.print(
            f"[yellow]note:[/yellow] load average {dev['load_average'][0]:g} on "
            f"{dev['cpu_count']} CPU cores: other jobs share this host, so these timings are "
            "upper bounds."
        )
    out.print(
        "versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + f"; seed {report['seed']}"
    )
    if report["not_yet_available"]:
        out.print(f"not yet available: {', '.join(report['not_yet_available'])}")
    out.print(f"suite wall time: {report['wall_s']:.1f} s")
    if args.png is not None:
        bench_suite.scaling_figure(report, args.png)
        console.print(f"wrote {args.png}")
    if args.json_out is not None:
        write_json(report, args.json_out, indent=2, allow_nan=False)
        if not to_stdout(args.json_out):
            console.print(f"wrote {args.json_out}")
    failed = [r["name"] for r in report["items"] if r["status"] == "error"]
    failed += [s["item"] for s in report["scaling"] if s.get("status") == "error"]
    if failed:
        console.print(f"[red]failed:[/red] {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
