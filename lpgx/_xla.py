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
"""

import os

__all__ = ["APPLIED", "SMALL_LOOP_BYTES", "apply_defaults", "default_flags"]

SMALL_LOOP_BYTES = 65536
_ENV_VAR = "LPGX_XLA_DEFAULTS"
_EXTRA = "--xla_backend_extra_options"


def default_flags() -> tuple[str, ...]:
    """The XLA flags lpgx adds to ``XLA_FLAGS`` by default."""
    return (f"{_EXTRA}=xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}",)


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
