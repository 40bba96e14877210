"""XLA's CPU options lpgx sets before JAX starts its backend: a small loop as one kernel.

XLA's CPU backend runs a compiled program as a sequence of kernels ("thunks"), one per fusion,
and a `while` loop (every `lax.scan`) as one round of kernels per iteration. A loop whose
iteration does little work — a grid-world step of one or 64 environments, a rollout of a few
workers — then spends most of its time launching kernels: jax 0.4's CPU runtime compiled the whole
loop into one function instead. XLA still can, for loops that touch fewer bytes per iteration
than ``xla_cpu_small_while_loop_byte_threshold`` (an option of ``--xla_backend_extra_options``;
1 kB by default, which almost no loop meets). lpgx raises it to `SMALL_LOOP_BYTES` (64 kB):
a grid-world step of one environment runs about 3.5× faster and of 64 about 1.7× (the
reference's protocol, `benchmarks/RESULTS.md`), the quick preset's chunk compiles ~1.5 s faster, and
larger loops (4096 environments, anything with a matrix product) are left as they were, so they
keep their multi-threaded kernels. Results are the same: the test suite, its golden metrics and
the grid world's property tests pass unchanged with it.

XLA reads ``XLA_FLAGS`` once, when JAX first uses a backend, so `apply_defaults` (run when this
module is imported, the first thing ``import lpgx`` does; `APPLIED` records what it added) only
adds the option while no backend is initialised, and never when ``XLA_FLAGS`` already names
``--xla_backend_extra_options`` (the user's options win: a second one would replace theirs).
``LPGX_XLA_DEFAULTS=0`` before importing lpgx turns it off.

With the same option lpgx also passes `CODEGEN_OPTIONS` to LLVM, which XLA's CPU backend runs
over every kernel: no loop strength reduction, no machine-instruction scheduling before or after
register allocation. These passes only choose how addresses are computed and in which order
independent instructions run, never which arithmetic is done, so results are bitwise the same
(`tests/test_xla_defaults.py`, ``python -m benchmarks.xla_options``; the test suite passes
unchanged). On the 2-core development CPU the quick preset's chunk compiles with 4–11 % less CPU
time without them, a grid-world program with 21–26 % less, and the programs run no slower
(`benchmarks/RESULTS.md`, "Issue 18, seventh pass"). LLVM ends the process at the first compile
if it does not know an option, so they are added only for jaxlib versions below
`CODEGEN_VERIFIED_BELOW` (the options are a decade old in LLVM; a newer jaxlib gets them once
checked), and only when no GPU or TPU plugin is installed (XLA's GPU backend passes the same
options to its own LLVM, where they were not measured) or ``JAX_PLATFORMS=cpu``.
"""

import importlib.util
import os

__all__ = [
    "APPLIED",
    "CODEGEN_OPTIONS",
    "CODEGEN_VERIFIED_BELOW",
    "SMALL_LOOP_BYTES",
    "apply_defaults",
    "codegen_options_apply",
    "default_flags",
]

SMALL_LOOP_BYTES = 65536
CODEGEN_OPTIONS = (
    "-disable-lsr",
    "-enable-misched=false",
    "-enable-post-misched=false",
    "-post-RA-scheduler=false",
)
"""LLVM options (``--xla_backend_extra_options`` passes each to LLVM's command-line parser)."""
CODEGEN_VERIFIED_BELOW = (0, 11)
"""`CODEGEN_OPTIONS` are added only for jaxlib versions below this one."""
_ENV_VAR = "LPGX_XLA_DEFAULTS"
_EXTRA = "--xla_backend_extra_options"


def _jaxlib_version() -> tuple[int, ...] | None:
    try:
        from jaxlib.version import __version__
    except ImportError:  # pragma: no cover - jaxlib is a dependency of jax
        return None
    parts = []
    for part in __version__.split(".")[:2]:
        if not part.isdigit():
            return None
        parts.append(int(part))
    return tuple(parts)


def codegen_options_apply() -> bool:
    """Whether `default_flags` includes `CODEGEN_OPTIONS`: a jaxlib below
    `CODEGEN_VERIFIED_BELOW`, and CPU only (``JAX_PLATFORMS`` names only ``cpu``, or, when it is
    unset, no ``jax_plugins`` package, which GPU plugins install, and no ``libtpu``)."""
    version = _jaxlib_version()
    if version is None or version >= CODEGEN_VERIFIED_BELOW:
        return False
    platforms = os.environ.get("JAX_PLATFORMS", "").strip().lower()
    if platforms:
        return all(p.strip() == "cpu" for p in platforms.split(","))
    return not any(importlib.util.find_spec(name) for name in ("jax_plugins", "libtpu"))


def default_flags(codegen: bool | None = None) -> tuple[str, ...]:
    """The XLA flags lpgx adds to ``XLA_FLAGS`` by default; with `CODEGEN_OPTIONS` if `codegen`
    (``None``: where `codegen_options_apply`)."""
    if codegen is None:
        codegen = codegen_options_apply()
    options = [f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"]
    if codegen:
        options.extend(CODEGEN_OPTIONS)
    return (f"{_EXTRA}={','.join(options)}",)


def _backends_initialised() -> bool:
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - depends on JAX's private layout
        return True  # cannot tell: leave XLA_FLAGS alone
    check = getattr(xla_bridge, "backends_are_initialized", None)
    return True if check is None else bool(check())


def apply_defaults() -> tuple[str, ...]:
    """Add `default_flags` to ``XLA_FLAGS`` unless turned off (``LPGX_XLA_DEFAULTS=0``), already
    set by the user, or too late (a JAX backend is already running).

    **Returns:** the flags added (empty when none was).
    """
    if os.environ.get(_ENV_VAR, "1").strip().lower() in ("0", "false", "no"):
        return ()
    flags = os.environ.get("XLA_FLAGS", "")
    if _EXTRA in flags or _backends_initialised():
        return ()
    added = default_flags()
    os.environ["XLA_FLAGS"] = " ".join((flags, *added)).strip()
    return added


APPLIED: tuple[str, ...] = apply_defaults()
"""The flags this process got from lpgx at import (empty: none, see `apply_defaults`)."""
