"""Straight-line Threefry on CPU (the same random bits, without a loop per random call), and
`subkeys`.

JAX lowers its Threefry-2x32 hash (behind every `jax.random` call with the default key type) to a
*rolled* ``while`` loop of five iterations on CPU, to save compile time; on every other platform
it emits the 20 rounds in a straight line. XLA's CPU runtime runs each iteration of such a loop
as several separately launched kernels. `use_straight_line_threefry` registers a straight-line
lowering for CPU too (`straight_line_hash`: JAX's unrolled hash, the same operations): the hash
computed is the same function, so every key, split and sample is bit-identical
(`tests/test_threefry.py`), and XLA can fuse the hash into its neighbours. The figures are in
``benchmarks/RESULTS.md``.

Nothing is registered when lpgx is imported: `lpgx.enable_speedups` calls
`use_straight_line_threefry` (unless ``LPGX_ROLLED_THREEFRY=1``). Registering touches a private
JAX registry (`lpgx._jax_private`): where JAX's internals have moved, nothing is registered and
`use_straight_line_threefry` returns ``False`` (results are the same either way).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Key, UInt32

from . import _jax_private

__all__ = [
    "default_enabled",
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
    `jax.lax` operations rather than `jax.numpy` ones (each `jax.numpy` operator is a function
    JAX traces and inlines, a `jax.lax` one is bound directly, so the hash traces faster at
    every call site). Arguments broadcast against each other as in JAX's."""
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
    `straight_line_hash`) or as JAX's default rolled loop (``enable=False``). Either gives the
    same bits; it affects functions lowered afterwards. `lpgx.enable_speedups` turns it on.

    **Arguments:**

    - `enable`: the straight line (``True``) or JAX's rolled loop (``False``).

    **Returns:** whether the lowering could be registered (``False`` where JAX's internals have
    moved: nothing changed then).
    """
    done = _jax_private.register_cpu_threefry_lowering(straight_line_hash if enable else None)
    if done:
        _STRAIGHT[0] = enable
    return done


_STRAIGHT = [False]


def straight_line_enabled() -> bool:
    """Whether the straight-line Threefry lowering is registered for CPU (by the last successful
    call of `use_straight_line_threefry`)."""
    return _STRAIGHT[0]


def default_enabled() -> bool:
    """Whether `lpgx.enable_speedups` registers the straight-line lowering: unless the
    environment variable ``LPGX_ROLLED_THREEFRY`` is set to anything but ``0``."""
    return os.environ.get(_ENV_VAR, "").strip() in ("", "0")


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
