"""Start-up time of `lpgx train`: process start to the end of the first meta-step.

Runs ``lpgx train --preset PRESET --train-steps 1 --no-evaluate`` (the ``lpgx`` command of
this interpreter's environment) as a fresh process ``repeats`` times in each of three settings,
alternating them: the persistent compilation cache off (``--no-compile-cache``), on with an
empty cache directory (a first start), and on with the cache the first start filled (a second
start). Reported, median of ``repeats``: the time from starting the process to the end of its
first meta-step (when the step's record reaches ``metrics.jsonl``: the chunk has run and its
metrics are on disk), the wall time of the whole process (also its checkpoint, writing
compiled programs to the cache and the interpreter's exit), and the compile time the command
prints.

The speed of a shared machine drifts (here by up to 50 % within an hour), so each round also
times XLA compiling a fixed small program in this process (`speed_probe`, plain JAX: lpgx's
speed-ups stay off here, so it measures the machine), and the report gives its median:
figures from different sittings compare only beside it. With ``--fast-compile`` two more
settings run in each round: a first and a second start of ``lpgx train --fast-compile`` (a
cache of their own).

Run ``python -m benchmarks.startup --help`` for the options.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from .common import report_results

__all__ = ["Config", "lpgx_command", "main", "run_once", "speed_probe"]


@dataclass(frozen=True)
class Config:
    """Options of the start-up benchmark."""

    preset: str = "quick"
    """The `lpgx train` preset."""
    repeats: int = 3
    """Processes per setting (the median is reported)."""
    markdown: Path | None = None
    """Also write the results as a markdown table (with the run's environment) to this file."""
    fast_compile: bool = False
    """Also time first and second starts of ``lpgx train --fast-compile``."""


def speed_probe() -> float:
    """Seconds XLA takes here now to compile one fixed small program (the gradient of a
    16-unit recurrent net scanned over 8 steps; about 0.2 s on the 2-core development VM): a
    yardstick for the machine's current speed at the work start-up is made of. Median of three
    compilations, each of a freshly built function (so nothing is reused)."""
    import jax
    import jax.numpy as jnp

    def once() -> float:
        def loss(ws: jax.Array, x: jax.Array) -> jax.Array:
            def step(h: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
                return jnp.tanh(h @ w) + jnp.sin(h), jnp.sum(h**2)

            h, ys = jax.lax.scan(step, x, ws)
            return jnp.sum(h) + jnp.sum(ys)

        grad = jax.jit(jax.grad(lambda ws, x: loss(ws, x) + loss(2 * ws, jnp.cos(x))))
        lowered = grad.lower(
            jax.ShapeDtypeStruct((8, 16, 16), jnp.float32),
            jax.ShapeDtypeStruct((4, 16), jnp.float32),
        )
        start = time.perf_counter()
        lowered.compile()
        return time.perf_counter() - start

    return statistics.median(once() for _ in range(3))


def lpgx_command() -> str:
    """The ``lpgx`` console script installed beside this interpreter (else the one on ``PATH``)."""
    beside = Path(sys.executable).with_name("lpgx")
    found = str(beside) if beside.is_file() else shutil.which("lpgx")
    if found is None:
        raise FileNotFoundError(
            "no `lpgx` command beside this Python or on PATH; install lpgx into this "
            "environment (`pip install -e .`) and run the benchmark again"
        )
    return found


def run_once(
    preset: str, cache: Path | None, workdir: Path, extra: tuple[str, ...] = ()
) -> tuple[float, float, float | None]:
    """One `lpgx train --train-steps 1` process (with the arguments `extra` too); `cache`
    ``None`` runs it with the cache off.

    **Returns:** ``(seconds to the first meta-step, wall seconds of the process, compile
    seconds printed by the command or None)``.
    """
    out = Path(tempfile.mkdtemp(dir=workdir)) / "run"
    cmd = [lpgx_command(), "train", "--preset", preset]
    cmd += ["--train-steps", "1", "--no-evaluate", "--out", str(out), *extra]
    env = dict(os.environ)
    env.pop("LPGX_COMPILE_CACHE", None)
    if cache is None:
        cmd.append("--no-compile-cache")
    else:
        env["LPGX_COMPILE_CACHE_DIR"] = str(cache)
    start_clock = time.time()  # the file's modification time is on this clock
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    # The record of the one meta-step is written (once) as soon as its chunk has run.
    first_step = (out / "metrics.jsonl").stat().st_mtime - start_clock
    found = re.search(r"compiled in ([0-9.]+) s", proc.stdout + proc.stderr)
    return first_step, wall, float(found.group(1)) if found else None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = tyro.cli(Config, args=args, prog="python -m benchmarks.startup")
    lpgx_command()  # fails here, before any round, when the command is missing
    settings = ("cache off", "cache on, first start", "cache on, second start")
    if config.fast_compile:
        settings += ("--fast-compile, first start", "--fast-compile, second start")
    firsts: dict[str, list[float]] = {s: [] for s in settings}
    walls: dict[str, list[float]] = {s: [] for s in settings}
    compiles: dict[str, list[float]] = {s: [] for s in settings}
    probes: list[float] = []
    workdir = Path(tempfile.mkdtemp(prefix="lpgx-startup-"))
    try:
        for i in range(config.repeats):
            probes.append(speed_probe())
            print(f"round {i + 1}: speed probe {probes[-1]:.3f} s", file=sys.stderr)
            for setting in settings:
                fast = setting.startswith("--fast-compile")
                name = f"cache{i}-fast" if fast else f"cache{i}"
                cache = None if setting == "cache off" else workdir / name
                extra = ("--fast-compile",) if fast else ()
                first, wall, compile_s = run_once(config.preset, cache, workdir, extra)
                firsts[setting].append(first)
                walls[setting].append(wall)
                if compile_s is not None:
                    compiles[setting].append(compile_s)
                print(
                    f"{setting}: first meta-step at {first:.2f} s, process {wall:.2f} s "
                    f"(compile {compile_s} s)",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [
        [
            s,
            f"{statistics.median(firsts[s]):.2f}",
            f"{min(firsts[s]):.2f}–{max(firsts[s]):.2f}",
            f"{statistics.median(walls[s]):.2f}",
            f"{statistics.median(compiles[s]):.1f}" if compiles[s] else "—",
        ]
        for s in settings
    ]
    report_results(
        f"lpgx train --preset {config.preset} --train-steps 1: process start to first meta-step",
        [
            "setting",
            "to first meta-step, median s",
            "min–max s",
            "whole process, median s",
            "compile s (median)",
        ],
        rows,
        command=" ".join(["python -m benchmarks.startup", *args]),
        markdown=config.markdown,
        protocol=[
            f"- {config.repeats} processes per setting, alternating settings",
            f"- machine speed probe (XLA compiling a fixed small program, `speed_probe`), "
            f"median of {len(probes)}: {statistics.median(probes):.3f} s",
        ],
    )
    print(f"machine speed probe, median: {statistics.median(probes):.3f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
