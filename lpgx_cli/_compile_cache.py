"""Start-up of the `lpgx` command: JAX's persistent compilation cache and faster XLA compiles.

Compiled programs are stored under ``$XDG_CACHE_HOME/lpgx/jax`` (``~/.cache/lpgx/jax`` when
``XDG_CACHE_HOME`` is unset), or under ``LPGX_COMPILE_CACHE_DIR`` when set, so that a second
start of the same command loads them instead of compiling again. JAX keys every entry by the
program's HLO, the compile options, the XLA flags, the backend and its version and the jax and
jaxlib versions, so an entry is never reused across versions or configurations: a stale entry is
a miss, not a wrong program. Off with ``--no-compile-cache`` (anywhere on the command line) or
``LPGX_COMPILE_CACHE=0``.

`fast_compile_flags` also adds `FAST_XLA_FLAGS` to ``XLA_FLAGS`` (each unless the user set that
flag; none with ``LPGX_XLA_FAST_COMPILE=0``):

- ``--xla_llvm_disable_expensive_passes=true``: XLA's CPU backend skips LLVM's most expensive
  optimisation passes; results are bitwise the same (XLA does not let LLVM reorder
  floating-point arithmetic);
- ``--xla_disable_hlo_passes=hlo-verifier``: XLA does not re-check the program's consistency
  after each of its HLO passes. The checks change nothing; tests and library users keep them.

``--fast-compile`` (anywhere on the command line) trades run speed and bitwise agreement with a
default run for a shorter compile, for smoke tests and runs of a few meta-steps: it also adds
`FASTER_XLA_FLAGS` (XLA's older elemental emitter for fused kernels instead of its MLIR fusion
emitters) and `FASTER_EXTRA_OPTIONS` (no loop unrolling) to ``XLA_FLAGS``. Results differ from a
default run's in float rounding only (the golden metrics' tolerance, relative 2e-5, holds);
resume a run with the same choice to continue it bit for bit. The compile and run times of
both are in ``benchmarks/RESULTS.md`` (``python -m benchmarks.startup``).
"""

import os
from pathlib import Path

__all__ = [
    "FASTER_EXTRA_OPTIONS",
    "FASTER_FLAG",
    "FASTER_XLA_FLAGS",
    "FAST_XLA_FLAGS",
    "FLAG",
    "cache_dir",
    "configure",
    "fast_compile_flags",
    "strip_faster_flag",
    "strip_flag",
]

FLAG = "--no-compile-cache"
FAST_XLA_FLAGS = (
    "--xla_llvm_disable_expensive_passes=true",
    "--xla_disable_hlo_passes=hlo-verifier",
)
FASTER_FLAG = "--fast-compile"
FASTER_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)
FASTER_EXTRA_OPTIONS = ("xla_cpu_disable_loop_unrolling",)
"""Options of ``--xla_backend_extra_options`` that ``--fast-compile`` adds."""
_EXTRA = "--xla_backend_extra_options="


def fast_compile_flags(faster: bool = False) -> str:
    """Add `FAST_XLA_FLAGS` to ``XLA_FLAGS`` (each unless already named there, all unless
    ``LPGX_XLA_FAST_COMPILE=0``); with `faster` (``--fast-compile``, which that variable does
    not turn off) also `FASTER_XLA_FLAGS` (likewise) and `FASTER_EXTRA_OPTIONS`, appended to the
    last ``--xla_backend_extra_options`` in ``XLA_FLAGS`` (or as a new one when there is none).
    Call it after `lpgx.enable_speedups`, which adds lpgx's own backend options only while
    ``XLA_FLAGS`` names none. XLA reads them when JAX first uses a backend.

    **Returns:** the resulting ``XLA_FLAGS``.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    off = os.environ.get("LPGX_XLA_FAST_COMPILE", "1").strip().lower() in ("0", "false", "no")
    for flag in (() if off else FAST_XLA_FLAGS) + (FASTER_XLA_FLAGS if faster else ()):
        if flag.split("=")[0] not in flags:
            flags = f"{flags} {flag}".strip()
    if faster:
        words = flags.split()
        given = [i for i, w in enumerate(words) if w.startswith(_EXTRA)]
        if given:
            i = given[-1]
            options = [o for o in words[i].removeprefix(_EXTRA).split(",") if o]
            named = {o.split("=")[0] for o in options}
            new = [o for o in FASTER_EXTRA_OPTIONS if o.split("=")[0] not in named]
            words[i] = _EXTRA + ",".join(options + new)
        else:
            words.append(_EXTRA + ",".join(FASTER_EXTRA_OPTIONS))
        flags = " ".join(words)
    os.environ["XLA_FLAGS"] = flags
    return flags


def strip_faster_flag(argv: list[str]) -> tuple[list[str], bool]:
    """Remove ``--fast-compile`` from `argv`. **Returns:** ``(argv, given)``."""
    return [a for a in argv if a != FASTER_FLAG], FASTER_FLAG in argv


def cache_dir() -> Path:
    """Where the cache lives: ``LPGX_COMPILE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lpgx/jax``,
    else ``~/.cache/lpgx/jax``."""
    explicit = os.environ.get("LPGX_COMPILE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "lpgx" / "jax"


def strip_flag(argv: list[str]) -> tuple[list[str], bool]:
    """Remove ``--no-compile-cache`` from `argv`. **Returns:** ``(argv, enabled)``."""
    enabled = os.environ.get("LPGX_COMPILE_CACHE", "1").strip().lower() not in ("0", "false", "no")
    if FLAG in argv:
        enabled = False
        argv = [a for a in argv if a != FLAG]
    return argv, enabled


def configure(enabled: bool) -> Path | None:
    """Turn JAX's persistent compilation cache on (in `cache_dir`) or leave it off; every
    compiled program is cached, however short its compilation. **Returns:** the directory used,
    or ``None`` when off (or when the directory cannot be created)."""
    if not enabled:
        return None
    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path
