"""lpgx's default XLA options for CPU, added to ``XLA_FLAGS`` by `lpgx.enable_speedups` only.

Two options of ``--xla_backend_extra_options`` (read by XLA's CPU backend when JAX starts it):

- ``xla_cpu_small_while_loop_byte_threshold`` raised to `SMALL_LOOP_BYTES`: XLA's CPU runtime
  runs a ``while`` loop (every `jax.lax.scan`) as one round of separately launched kernels per
  iteration, unless the loop touches fewer bytes per iteration than this threshold, in which case
  it compiles the whole loop as one function. Small loops (a grid-world step of a few
  environments, a rollout of a few workers) then stop paying a launch per kernel; larger ones
  (anything with a matrix product) keep their multi-threaded kernels.
- `CODEGEN_OPTIONS`, passed to LLVM, which XLA's CPU backend runs over every kernel: no loop
  strength reduction and no machine-instruction scheduling. These passes only choose how
  addresses are computed and in which order independent instructions run, never which
  arithmetic is done. LLVM ends the process at the first compilation if it does not know an
  option, so they are added only for jaxlib versions below `CODEGEN_VERIFIED_BELOW`, and only on
  a CPU-only install (no GPU or TPU plugin, whose LLVM would read them too) or with
  ``JAX_PLATFORMS=cpu`` (`codegen_options_apply`).

Neither changes a result: `tests/test_xla_defaults.py` checks a grid-world loop and a GRU's
gradient bit for bit with and without them; the figures are in ``benchmarks/RESULTS.md``.

XLA reads ``XLA_FLAGS`` once, when JAX first uses a backend, so `apply_defaults` adds the option
only while no backend is initialised, never when ``XLA_FLAGS`` already names
``--xla_backend_extra_options`` (the user's options win: a second one would replace theirs),
and not at all with ``LPGX_XLA_DEFAULTS=0``. Nothing here runs when lpgx is imported.
"""

import importlib.util
import os
from typing import Literal

from . import _jax_private

__all__ = [
    "CODEGEN_OPTIONS",
    "CODEGEN_VERIFIED_BELOW",
    "SMALL_LOOP_BYTES",
    "XlaStatus",
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


XlaStatus = Literal["added", "present", "off", "too late", "unknown"]
"""What `apply_defaults` did: ``"added"`` the flags; left ``XLA_FLAGS`` alone because it already
names ``--xla_backend_extra_options`` (``"present"``: lpgx's from an earlier call, or the user's
own), because ``LPGX_XLA_DEFAULTS=0`` (``"off"``), because a JAX backend is already running
(``"too late"``), or because this JAX gives no way to tell whether one is (``"unknown"``)."""


def apply_defaults() -> tuple[tuple[str, ...], XlaStatus]:
    """Add `default_flags` to ``XLA_FLAGS`` unless turned off (``LPGX_XLA_DEFAULTS=0``), already
    set (by the user, or by an earlier call), or too late (a JAX backend is already running).

    **Returns:** ``(added, status)``: the flags added (empty when none was) and why
    (`XlaStatus`).
    """
    if os.environ.get(_ENV_VAR, "1").strip().lower() in ("0", "false", "no"):
        return (), "off"
    flags = os.environ.get("XLA_FLAGS", "")
    if _EXTRA in flags:
        return (), "present"
    started = _jax_private.backends_initialised()
    if started is None:
        return (), "unknown"
    if started:
        return (), "too late"
    added = default_flags()
    os.environ["XLA_FLAGS"] = " ".join((flags, *added)).strip()
    return added, "added"
