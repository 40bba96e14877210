"""Every use lpgx makes of JAX's private API (``jax._src``), each behind a plain fallback.

Nothing here runs when the module is imported: each function imports what it needs from
``jax._src`` when it is called, and does something plain (reports "cannot tell", registers
nothing, binds nothing) when JAX has moved it. Only opt-in code calls these:
`lpgx.enable_speedups` (the backend check, the Threefry lowering) and the cache of compiled
programs that `lpgx.train.train` uses when asked (`lpgx._executables`).
"""

import contextlib
import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "backends_initialised",
    "executable_device_ids",
    "initialize_lapack",
    "register_cpu_threefry_lowering",
    "without_persistent_cache_write",
]


def backends_initialised() -> bool | None:
    """Whether JAX has started a backend (XLA reads ``XLA_FLAGS`` only when it starts one).

    **Returns:** ``True`` or ``False``; ``None`` when this JAX gives no way to tell.
    """
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - depends on JAX's private layout
        return None
    check = getattr(xla_bridge, "backends_are_initialized", None)
    return None if check is None else bool(check())


def register_cpu_threefry_lowering(hash_fn: Callable[..., Any] | None) -> bool:
    """Register the CPU lowering of JAX's ``threefry2x32`` primitive: `hash_fn` (a function of
    ``(key1, key2, x1, x2)`` returning the pair of hashed words, lowered through
    ``mlir.lower_fun``), or JAX's own CPU rule (a rolled loop) when it is ``None``. It applies to
    functions lowered afterwards.

    **Returns:** whether it was registered (``False``: this JAX keeps the primitive or its
    lowering elsewhere, and nothing was changed).
    """
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as threefry
    except ImportError:  # pragma: no cover - depends on JAX's private layout
        return False
    primitive = getattr(threefry, "threefry2x32_p", None)
    rolled = getattr(threefry, "_threefry2x32_cpu_lowering_rule", None)
    lower_fun = getattr(mlir, "lower_fun", None)
    register = getattr(mlir, "register_lowering", None)
    if primitive is None or rolled is None or lower_fun is None or register is None:
        return False  # pragma: no cover - depends on JAX's private layout
    rule = rolled if hash_fn is None else lower_fun(hash_fn, multiple_results=True)
    try:
        register(primitive, rule, platform="cpu")
    except (TypeError, NotImplementedError):  # pragma: no cover - a changed signature
        return False
    return True


def initialize_lapack() -> bool:
    """Bind LAPACK's kernels for CPU programs (JAX binds them when it lowers a program that uses
    them; a program loaded from disk is not lowered).

    **Returns:** whether they were bound.
    """
    try:
        from jax._src.lax import linalg

        linalg.initialize_lapack()
    except (ImportError, AttributeError):  # pragma: no cover - depends on JAX's private layout
        return False
    return True


def without_persistent_cache_write() -> contextlib.AbstractContextManager[Any]:
    """A context in which this thread's compilations write no entry to JAX's persistent cache
    (JAX skips entries that took less than ``jax_persistent_cache_min_compile_time_secs`` to
    compile; the option is set for this thread alone). A no-op where JAX's internals differ."""
    try:
        from jax._src import config as jax_config

        return jax_config.persistent_cache_min_compile_time_secs(math.inf)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - JAX's private layout
        return contextlib.nullcontext()


def executable_device_ids(compiled: Any) -> list[int] | None:
    """The ids of the devices a `jax.stages.Compiled` program runs on, in its device order (what
    ``serialize_executable.deserialize_and_load`` needs to load it again).

    **Returns:** the ids, or ``None`` where this JAX keeps them elsewhere.
    """
    try:
        unloaded = getattr(compiled._executable, "_unloaded_executable")  # noqa: B009
        return [int(d.id) for d in unloaded.device_list]
    except (AttributeError, TypeError):  # pragma: no cover - depends on JAX's private layout
        return None
