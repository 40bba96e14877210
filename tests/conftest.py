"""Test configuration: strict JAX numerics, lpgx's speed-ups and a key fixture.

The jaxtyping import hook (with beartype) is installed for `lpgx` by the
``--jaxtyping-packages`` option in ``pyproject.toml`` before this file is loaded, so importing
lpgx here still checks every annotated function and Module field in lpgx at run time.
"""

import os
from collections.abc import Iterator

import jax
import pytest
from hypothesis import HealthCheck, settings

import lpgx

# The CLI turns on JAX's persistent compilation cache in ~/.cache/lpgx and adds XLA flags;
# tests calling it must neither depend on nor write to the user's cache, nor change XLA_FLAGS.
os.environ.setdefault("LPGX_COMPILE_CACHE", "0")
os.environ.setdefault("LPGX_XLA_FAST_COMPILE", "0")

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

# The suite runs as the `lpgx` command does, with lpgx's CPU speed-ups (the same bits, shorter
# compiles): before any test can start a JAX backend, as XLA reads XLA_FLAGS only then.
lpgx.enable_speedups()

# Compilation dominates the first example of a property; deadlines would only measure it.
settings.register_profile(
    "lpgx",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    max_examples=25,
)
settings.load_profile("lpgx")


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code() -> Iterator[None]:
    """Drop JAX's compiled executables after each test module: a pytest worker runs dozens of
    modules, and their caches would otherwise only grow for the whole run."""
    yield
    jax.clear_caches()
