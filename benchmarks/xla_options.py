"""Two sets of XLA options side by side: how fast they compile, and what they compile.

lpgx passes LLVM options to XLA's CPU backend by default (`lpgx._xla.CODEGEN_OPTIONS`) because
they compile faster while the programs compute bitwise the same results no slower. This
benchmark checks all three claims for the programs start-up and throughput rest on: the
``quick`` preset's chunk of meta-steps and the reference-protocol grid-world programs
(`benchmarks.gridworld`: ``all_shortlife`` with 1, 64 and 4096 environments).

- Compile: each option set in fresh processes (XLA reads ``XLA_FLAGS`` once per process),
  alternating, ``rounds`` processes each: wall and CPU seconds (user + system, all threads) of
  every program's ``.compile()``.
- Run: the executables of the last round are serialised, loaded into one process and called in
  turn ``run_rounds`` times each, so the machine's drifts hit both alike; reported are the
  medians and the median of the per-call ratio B / A.
- Results: every output of A's and B's executables on the same inputs, compared bit for bit.

Run ``python -m benchmarks.xla_options --help`` for the options.
"""

import functools
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tyro

from .common import report_results

__all__ = ["Config", "compile_programs", "main", "programs"]

_GRID_STEPS = {1: 2000, 64: 500, 4096: 50}


@dataclass(frozen=True)
class Config:
    """Options of the XLA-options benchmark."""

    a: str | None = None
    """``XLA_FLAGS`` of setting A (``--a='--xla_...'``); default: lpgx's defaults without
    `CODEGEN_OPTIONS`."""
    b: str | None = None
    """``XLA_FLAGS`` of setting B; default: lpgx's defaults (with `CODEGEN_OPTIONS` where they
    apply)."""
    cli_flags: bool = True
    """Add the flags `lpgx train` adds (``--xla_llvm_disable_expensive_passes=true``) to both."""
    rounds: int = 3
    """Compiling processes per setting (alternating)."""
    run_rounds: int = 15
    """Calls of each executable when timing them in turn."""
    chunk: bool = True
    """The ``quick`` preset's chunk of meta-steps."""
    chunk_steps: int = 10
    """Meta-steps in the timed ``quick`` chunk."""
    gridworld: bool = True
    """Also the grid-world programs (1, 64, 4096 environments)."""
    markdown: Path | None = None
    """Also write the results as a markdown table (with the run's environment) to this file."""


def programs(
    chunk_steps: int | None, gridworld: bool, inputs: bool
) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    """The programs compared: name -> (jitted function, arguments): the ``quick`` chunk of
    `chunk_steps` meta-steps (none if ``None``) and the grid-world ones if `gridworld`. The
    arguments are shapes unless `inputs` (then the chunk's initial state is computed)."""
    import jax

    from lpgx.compose import make_tasks

    from .gridworld import make_timed

    out = {} if chunk_steps is None else _chunk(chunk_steps, inputs)
    if gridworld:
        tasks = make_tasks("all_shortlife")
        for n, steps in _GRID_STEPS.items():
            name = f"grid world, {n} env{'s' if n > 1 else ''} × {steps} steps"
            out[name] = (jax.jit(make_timed(tasks, n, steps)), (jax.random.key(0),))
    return out


def _chunk(chunk_steps: int, inputs: bool) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    import equinox as eqx
    import jax

    from lpgx.compose import PRESETS, build

    trainer = build(replace(PRESETS["quick"][1], train_steps=chunk_steps))
    if inputs:
        like = trainer.init()
    else:
        like = trainer.shard(eqx.filter_eval_shape(trainer.init), trainer.mesh(None))

    def is_leaf(x: Any) -> bool:
        return isinstance(x, jax.Array | jax.ShapeDtypeStruct)

    dynamic, static = eqx.partition(like, is_leaf)
    leaves, structure = jax.tree.flatten(dynamic)

    def chunk(*flat: Any) -> list[Any]:
        state = eqx.combine(jax.tree.unflatten(structure, flat), static)
        return jax.tree.leaves(eqx.filter(trainer.run_chunk(state), eqx.is_array))

    return {f"quick chunk ({chunk_steps} meta-steps)": (jax.jit(chunk), tuple(leaves))}


def compile_programs(path: Path, chunk_steps: int | None, gridworld: bool) -> None:
    """Compile every program in this process; pickle ``name -> (serialised executable, wall s,
    CPU s)`` to `path`."""
    import resource

    from jax.experimental import serialize_executable

    result = {}
    for name, (fn, args) in programs(chunk_steps, gridworld, inputs=False).items():
        lowered = fn.lower(*args)
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        compiled = lowered.compile()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        result[name] = (serialize_executable.serialize(compiled), wall, cpu)
    path.write_bytes(pickle.dumps(result))


def _compile_in_process(flags: str, path: Path, config: Config) -> dict[str, Any]:
    code = (
        "from pathlib import Path; from benchmarks.xla_options import compile_programs; "
        f"compile_programs(Path({str(path)!r}), {_chunk_steps(config)}, {config.gridworld})"
    )
    env = {**os.environ, "XLA_FLAGS": flags}
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"compiling with XLA_FLAGS={flags!r} failed:\n{proc.stderr[-2000:]}")
    return pickle.loads(path.read_bytes())


def _chunk_steps(config: Config) -> int | None:
    return config.chunk_steps if config.chunk else None


def _bits(outputs: Any) -> list[bytes]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    def raw(x: Any) -> bytes:
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x).tobytes()

    return [raw(x) for x in jax.tree.leaves(outputs)]


def _time_in_turn(
    calls: list[Callable[[], Any]], rounds: int
) -> tuple[list[float], list[float], bool]:
    """Call each of `calls` in turn `rounds` times. **Returns:** (median seconds per call,
    per-round ratios of the second to the first, whether all outputs are equal bit for bit)."""
    import jax

    firsts = [jax.block_until_ready(call()) for call in calls]
    same = all(_bits(out) == _bits(firsts[0]) for out in firsts[1:])
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[i].append(time.perf_counter() - start)
    ratios = [b / a for a, b in zip(times[0], times[1], strict=True)]
    return [statistics.median(t) for t in times], ratios, same


def default_settings(cli_flags: bool) -> tuple[str, str]:
    """XLA_FLAGS of the default settings A (no `CODEGEN_OPTIONS`) and B (lpgx's defaults)."""
    from lpgx import _xla
    from lpgx_cli._compile_cache import FAST_XLA_FLAGS

    extra = FAST_XLA_FLAGS if cli_flags else ()
    a = " ".join((*_xla.default_flags(codegen=False), *extra))
    return a, " ".join((*_xla.default_flags(), *extra))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = tyro.cli(Config, args=args, prog="python -m benchmarks.xla_options")
    if config.rounds < 1 or config.run_rounds < 1 or config.chunk_steps < 1:
        raise SystemExit("--rounds, --run-rounds and --chunk-steps must be positive")
    if not (config.chunk or config.gridworld):
        raise SystemExit("nothing to compare: --no-chunk and --no-gridworld leave no program")
    default_a, default_b = default_settings(config.cli_flags)
    flags = {"A": config.a or default_a, "B": config.b or default_b}
    if flags["A"] == flags["B"]:
        raise SystemExit(f"settings A and B are the same ({flags['A']!r}): nothing to compare")
    compiled: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="lpgx-xla-options-") as tmp:
        for i in range(config.rounds):
            for setting in ("A", "B"):
                path = Path(tmp) / f"{setting}{i}.pkl"
                compiled[setting].append(_compile_in_process(flags[setting], path, config))
                walls = ", ".join(f"{w:.2f}" for _, w, _ in compiled[setting][-1].values())
                print(f"round {i + 1} {setting}: compile s {walls}", file=sys.stderr)
    # The run's programs: arguments with values; the executables of the last round.
    from jax.experimental import serialize_executable

    rows = []
    for name, (_, inputs) in programs(_chunk_steps(config), config.gridworld, True).items():
        exes = [serialize_executable.deserialize_and_load(*compiled[s][-1][name][0]) for s in "AB"]
        calls = [functools.partial(exe, *inputs) for exe in exes]
        medians, ratios, same = _time_in_turn(calls, config.run_rounds)
        wall = {s: statistics.median(r[name][1] for r in compiled[s]) for s in "AB"}
        cpu = {s: statistics.median(r[name][2] for r in compiled[s]) for s in "AB"}
        rows.append(
            [
                name,
                f"{wall['A']:.2f} → {wall['B']:.2f}",
                f"{cpu['A']:.2f} → {cpu['B']:.2f}",
                f"{medians[0] * 1e3:.1f} → {medians[1] * 1e3:.1f}",
                f"{statistics.median(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f})",
                "yes" if same else "**no**",
            ]
        )
    report_results(
        "XLA options A → B: compile time, run time, results",
        [
            "program",
            "compile wall s (median)",
            "compile CPU s (median)",
            "run ms (median)",
            "run B / A, median (range)",
            "bitwise equal",
        ],
        rows,
        command=" ".join(["python -m benchmarks.xla_options", *args]),
        markdown=config.markdown,
        protocol=[
            f"- A: `XLA_FLAGS={flags['A']}`",
            f"- B: `XLA_FLAGS={flags['B']}`",
            f"- compile: {config.rounds} processes per setting, alternating; run: the last "
            f"round's executables in one process, called in turn {config.run_rounds} times",
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
