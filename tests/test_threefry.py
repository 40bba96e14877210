"""The straight-line Threefry lowering on CPU gives JAX's random bits exactly (`lpgx._threefry`),
and registering it falls back to changing nothing where JAX's internals have moved."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpgx import _jax_private, use_straight_line_threefry
from lpgx._threefry import straight_line_enabled


def _draws(key: jax.Array) -> tuple[jax.Array, ...]:
    k1, k2, k3 = jax.random.split(key, 3)
    return (
        jax.random.key_data(jax.random.split(k1, 7)),
        jax.random.uniform(k2, (5,)),
        jax.random.randint(k3, (3,), 0, 5, dtype=jnp.int32),
        jax.random.normal(k1, (4,)),
        jax.random.bits(k2, (9,)),
    )


def _compiled(enable: bool) -> tuple[str, tuple[np.ndarray, ...]]:
    assert use_straight_line_threefry(enable)
    assert straight_line_enabled() == enable
    # A fresh function each time, so that nothing lowered under the other rule is reused.
    compiled = jax.jit(lambda k: jax.vmap(_draws)(k)).lower(jax.random.split(jax.random.key(0), 6))
    text = compiled.compile().as_text() or ""
    out = compiled.compile()(jax.random.split(jax.random.key(3), 6))
    return text, tuple(np.asarray(x) for x in out)


def test_straight_line_threefry_is_bit_identical_to_the_rolled_loop() -> None:
    try:
        rolled_text, rolled = _compiled(False)
        straight_text, straight = _compiled(True)
    finally:
        use_straight_line_threefry(True)  # as the suite's `lpgx.enable_speedups()` left it
    if jax.default_backend() == "cpu":
        assert " while(" in rolled_text
        assert " while(" not in straight_text
    for a, b in zip(rolled, straight, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_moved_private_registry_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where JAX no longer has the primitive or its CPU rule where lpgx looks, registering
    reports ``False`` and the lowering (and what lpgx says of it) stays as it was."""
    from jax._src.random import threefry2x32 as threefry

    assert use_straight_line_threefry(True)
    for name in ("threefry2x32_p", "_threefry2x32_cpu_lowering_rule"):
        with monkeypatch.context() as m:
            m.delattr(threefry, name)
            assert not _jax_private.register_cpu_threefry_lowering(None)
            assert not use_straight_line_threefry(False)
            assert straight_line_enabled()
    text = jax.jit(lambda k: jax.random.uniform(k, (3,))).lower(jax.random.key(1)).compile()
    if jax.default_backend() == "cpu":
        assert " while(" not in (text.as_text() or ""), "still the straight line"


def test_subkeys_are_the_split_keys() -> None:
    from lpgx._threefry import subkeys

    for seed in range(3):
        key = jax.random.key(seed)
        want = jax.random.key_data(jax.random.split(key, 4))
        got = jax.jit(lambda k: [jax.random.key_data(s) for s in subkeys(k, 4, (0, 2, 3))])(key)
        for i, g in zip((0, 2, 3), got, strict=True):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(want[i]))
    rbg = jax.random.key(0, impl="rbg")
    (only,) = subkeys(rbg, 3, (1,))
    np.testing.assert_array_equal(
        jax.random.key_data(only), jax.random.key_data(jax.random.split(rbg, 3)[1])
    )


def test_straight_line_hash_is_jaxs_unrolled_hash_operation_for_operation() -> None:
    """The same jaxpr as JAX's own unrolled hash (so the same program, not only the same bits),
    for counters of one shape and keys broadcast against them."""
    from jax._src.random import threefry2x32 as threefry

    from lpgx._threefry import straight_line_hash

    def jaxs(*args: jax.Array) -> tuple[jax.Array, ...]:
        return tuple(threefry._threefry2x32_lowering(*args, use_rolled_loops=False))

    u32 = np.uint32
    for key_shape, count_shape in [((), ()), ((1,), (5,)), ((3, 1), (3, 4)), ((2, 3), (2, 3))]:
        args = (
            np.full(key_shape, 7, u32),
            np.full(key_shape, 11, u32),
            np.arange(np.prod(count_shape), dtype=u32).reshape(count_shape),
            np.arange(np.prod(count_shape), dtype=u32).reshape(count_shape) + u32(5),
        )
        want, got = jax.make_jaxpr(jaxs)(*args), jax.make_jaxpr(straight_line_hash)(*args)
        assert str(got) == str(want)
        for a, b in zip(jax.jit(jaxs)(*args), jax.jit(straight_line_hash)(*args), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
