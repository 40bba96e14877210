"""Test configuration: strict JAX numerics and a key fixture.

The jaxtyping import hook (with beartype) is installed for `lpgx` by the
``--jaxtyping-packages`` option in ``pyproject.toml``, so every annotated function and Module
field in lpgx is checked at run time during the tests.
"""

from collections.abc import Iterator

import jax
import pytest
from hypothesis import HealthCheck, settings

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
