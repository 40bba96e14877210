"""Test configuration: strict JAX numerics and a key fixture.

The jaxtyping import hook (with beartype) is installed for `lpgx` by the
``--jaxtyping-packages`` option in ``pyproject.toml``, so every annotated function and Module
field in lpgx is checked at run time during the tests.
"""

import os
from collections.abc import Iterator

import jax
import pytest
from hypothesis import HealthCheck, settings

# The CLI turns on JAX's persistent compilation cache in ~/.cache/lpgx and adds XLA flags;
# tests calling it must neither depend on nor write to the user's cache, nor change XLA_FLAGS.
os.environ.setdefault("LPGX_COMPILE_CACHE", "0")
os.environ.setdefault("LPGX_XLA_FAST_COMPILE", "0")

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

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
