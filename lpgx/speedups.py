"""lpgx's CPU speed-ups, turned on by one explicit call: `enable_speedups`.

``import lpgx`` changes nothing outside lpgx: it neither edits ``XLA_FLAGS`` nor registers
anything with JAX. `enable_speedups` does both, for this process:

- lpgx's default XLA options for CPU (`lpgx._xla`: small ``while`` loops compiled as one
  function, and LLVM without loop strength reduction or instruction scheduling), added to
  ``XLA_FLAGS``;
- the straight-line Threefry lowering on CPU (`lpgx.use_straight_line_threefry`).

Neither changes a result (the same bits, `tests/test_xla_defaults.py` and
`tests/test_threefry.py`); they make small CPU programs compile and run faster (figures in
``benchmarks/RESULTS.md``). The ``lpgx`` command and the benchmark scripts call it before
anything else; the test suite does too (``tests/conftest.py``).
"""

import dataclasses
import warnings

from . import _threefry, _xla

__all__ = ["Speedups", "SpeedupsWarning", "enable_speedups"]


class SpeedupsWarning(RuntimeWarning):
    """`enable_speedups` could not add lpgx's XLA options: it was called after JAX had started a
    backend (or this JAX gives no way to tell whether it had)."""


@dataclasses.dataclass(frozen=True)
class Speedups:
    """What `enable_speedups` applied.

    **Fields:**

    - `xla_flags`: the flags it added to ``XLA_FLAGS`` (empty when it added none).
    - `xla_status`: why (`lpgx._xla.XlaStatus`): ``"added"``; ``"present"`` (``XLA_FLAGS``
      already named ``--xla_backend_extra_options``: lpgx's from an earlier call, or the user's
      own, which win); ``"off"`` (``LPGX_XLA_DEFAULTS=0``); ``"too late"`` (a JAX backend was
      already running, and XLA reads ``XLA_FLAGS`` only when it starts one); ``"unknown"`` (this
      JAX gives no way to tell whether one was, so ``XLA_FLAGS`` was left alone).
    - `straight_line_threefry`: whether the straight-line Threefry lowering is registered for
      CPU now (``False`` with ``LPGX_ROLLED_THREEFRY=1``, or where JAX's internals have moved).
    """

    xla_flags: tuple[str, ...]
    xla_status: _xla.XlaStatus
    straight_line_threefry: bool


def enable_speedups() -> Speedups:
    """Turn on lpgx's CPU speed-ups for this process: lpgx's default XLA options and the
    straight-line Threefry lowering. Results are bitwise the same with or without them.

    Call it before the first JAX computation: XLA reads ``XLA_FLAGS`` when JAX starts its
    backend, so afterwards the XLA options cannot apply, and a `SpeedupsWarning` says so (the
    Threefry lowering still applies, to functions compiled afterwards). It never replaces a
    ``--xla_backend_extra_options`` the user put in ``XLA_FLAGS``. ``LPGX_XLA_DEFAULTS=0`` turns
    the XLA options off, ``LPGX_ROLLED_THREEFRY=1`` the Threefry lowering. Calling it again adds
    nothing more to ``XLA_FLAGS``.

    **Returns:** a `Speedups` saying what is applied.
    """
    added, status = _xla.apply_defaults()
    if status == "too late":
        warnings.warn(
            "lpgx.enable_speedups() was called after JAX had started its backend, so lpgx's XLA "
            "options were not added to XLA_FLAGS (XLA reads them only when a backend starts); "
            "results are the same, small CPU programs only run slower. Call "
            "lpgx.enable_speedups() before the first JAX computation, or set XLA_FLAGS yourself "
            "before it: " + " ".join(_xla.default_flags()),
            SpeedupsWarning,
            stacklevel=2,
        )
    elif status == "unknown":
        warnings.warn(
            "lpgx.enable_speedups() cannot tell with this version of JAX whether a backend has "
            "started, so it left XLA_FLAGS as it was (results are the same). To have lpgx's XLA "
            "options, set XLA_FLAGS before the first JAX computation: "
            + " ".join(_xla.default_flags()),
            SpeedupsWarning,
            stacklevel=2,
        )
    if _threefry.default_enabled():
        _threefry.use_straight_line_threefry(True)
    return Speedups(added, status, _threefry.straight_line_enabled())
