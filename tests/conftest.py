"""Test configuration: strict JAX numerics, lpgx's speed-ups and a key fixture.

The jaxtyping import hook (with beartype) is installed for `lpgx` by the
``--jaxtyping-packages`` option in ``pyproject.toml`` before this file is loaded, so importing
lpgx here still checks every annotated function and Module field in lpgx at run time.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


def _shared_compile_cache() -> Path:
    """One directory of compiled programs per test run, shared by its xdist workers (which
    inherit ``LPGX_TEST_RUN`` from the controller)."""
    return Path(tempfile.gettempdir()) / f"lpgx-tests-{os.environ['LPGX_TEST_RUN']}-xla"


def pytest_configure(config: pytest.Config) -> None:
    # Many tests compile the same small programs (a tiny run's chunk, a level set's optimum,
    # the held-out evaluation): JAX's persistent compilation cache in a directory of this run
    # alone compiles each once for the whole run, in whichever worker meets it first, and
    # starts empty every run. The programs are the same, so are the results.
    if os.environ.get("LPGX_TEST_COMPILE_CACHE", "1") == "0":
        return
    os.environ.setdefault("LPGX_TEST_RUN", str(os.getpid()))
    path = _shared_compile_cache()
    path.mkdir(exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and "LPGX_TEST_RUN" in os.environ:
        # The controller (or a run without workers), after every worker has ended.
        shutil.rmtree(_shared_compile_cache(), ignore_errors=True)


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
