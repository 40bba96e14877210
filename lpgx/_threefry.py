"""Straight-line Threefry on CPU: the same random bits, without a loop per random call.

JAX lowers its Threefry-2x32 hash (behind every `jax.random` call with the default key type) to a
*rolled* `while` loop of five iterations on CPU, to save compile time; on every other platform it
emits the 20 rounds in a straight line. With XLA's CPU thunk runtime each iteration of such a loop
is several separately launched kernels, so a small step function that draws a few random numbers
(a grid-world step of one environment draws three times) spends most of its time running loop
iterations rather than computing. `use_straight_line_threefry` registers JAX's straight-line
lowering for CPU too (`straight_line_hash`: JAX's unrolled hash, the same operations, traced
faster): the hash computed is the same function, so every key, split and sample is bit-identical
(`tests/test_threefry.py`), and XLA fuses the hash into its neighbours (compilation is also
faster: one fusion instead of a loop per call).

lpgx calls it once at import. Set the environment variable ``LPGX_ROLLED_THREEFRY=1`` before
importing lpgx to keep JAX's default lowering. It touches a private JAX registry: if JAX's
internals move, it does nothing and returns ``False`` (results are the same either way).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Key, UInt32

__all__ = [
    "straight_line_enabled",
    "straight_line_hash",
    "subkeys",
    "use_straight_line_threefry",
]

_ENV_VAR = "LPGX_ROLLED_THREEFRY"


_ROTATIONS = (
    tuple(np.uint32(r) for r in (13, 15, 26, 6)),
    tuple(np.uint32(r) for r in (17, 29, 16, 24)),
)


def straight_line_hash(
    key1: UInt32[Array, "..."],
    key2: UInt32[Array, "..."],
    x1: UInt32[Array, "..."],
    x2: UInt32[Array, "..."],
) -> tuple[UInt32[Array, "..."], UInt32[Array, "..."]]:
    """The Threefry-2x32 hash of the counters ``(x1, x2)`` under the key ``(key1, key2)``, 20
    rounds in a straight line: JAX's own unrolled hash (``threefry2x32._threefry2x32_lowering``
    with ``use_rolled_loops=False``) operation for operation, the same jaxpr, written with
    `jax.lax` operations rather than `jax.numpy` ones. Each `jax.numpy` operator is a function
    JAX traces and inlines; a `jax.lax` one is bound directly, so tracing the hash (once per
    call site, as each program is lowered) costs less: the quick preset's chunk lowers 0.06 s
    sooner, its initialiser 0.07 s. Arguments broadcast against each other as in JAX's."""
    ks = (key1, key2, lax.bitwise_xor(lax.bitwise_xor(key1, key2), np.uint32(0x1BD11BDA)))
    x = [lax.add(x1, ks[0]), lax.add(x2, ks[1])]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x[0] = lax.add(x[0], x[1])
            rotated = lax.bitwise_or(
                lax.shift_left(x[1], r), lax.shift_right_logical(x[1], np.uint32(32) - r)
            )
            x[1] = lax.bitwise_xor(x[0], rotated)
        x[0] = lax.add(x[0], ks[(i + 1) % 3])
        x[1] = lax.add(lax.add(x[1], ks[(i + 2) % 3]), np.uint32(i + 1))
    return x[0], x[1]


def use_straight_line_threefry(enable: bool = True) -> bool:
    """Lower `jax.random`'s Threefry hash on CPU as a straight line (``enable=True``,
    `straight_line_hash`) or as JAX's default rolled loop (``enable=False``); affects functions
    compiled afterwards.

    **Returns:** whether the lowering could be registered.
    """
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as threefry
    except ImportError:  # pragma: no cover - depends on JAX's private layout
        return False
    primitive = getattr(threefry, "threefry2x32_p", None)
    rolled = getattr(threefry, "_threefry2x32_cpu_lowering_rule", None)
    lower_fun = getattr(mlir, "lower_fun", None)
    if primitive is None or rolled is None or lower_fun is None:  # pragma: no cover - private
        return False
    rule = lower_fun(straight_line_hash, multiple_results=True) if enable else rolled
    mlir.register_lowering(primitive, rule, platform="cpu")
    _STRAIGHT[0] = enable
    return True


_STRAIGHT = [False]


def straight_line_enabled() -> bool:
    """Whether lpgx registered the straight-line Threefry lowering for CPU (last call of
    `use_straight_line_threefry`)."""
    return _STRAIGHT[0]


def _apply_default() -> bool:
    """What lpgx does at import: the straight-line lowering unless ``LPGX_ROLLED_THREEFRY=1``."""
    if os.environ.get(_ENV_VAR, "").strip() not in ("", "0"):
        return False
    return use_straight_line_threefry(True)


def subkeys(key: Key[Array, ""], num: int, which: tuple[int, ...]) -> tuple[Key[Array, ""], ...]:
    """``tuple(jax.random.split(key, num)[i] for i in which)``, computing only those subkeys.

    With Threefry keys and ``jax_threefry_partitionable`` (JAX's default), subkey ``i`` of a
    split is ``jax.random.fold_in(key, i)`` bit for bit (both hash the counter ``(0, i)``), so
    the unused subkeys cost nothing; otherwise the key is split.
    """
    if not all(0 <= i < num for i in which):
        raise ValueError(f"subkey indices {which} out of range for a split into {num}")
    if (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        and str(jax.random.key_impl(key)) == "threefry2x32"
        and jax.config.jax_threefry_partitionable  # pyright: ignore[reportAttributeAccessIssue]
    ):
        return tuple(jax.random.fold_in(key, i) for i in which)
    keys = jax.random.split(key, num)
    return tuple(keys[i] for i in which)
