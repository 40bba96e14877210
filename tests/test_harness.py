"""The test harness really is strict: jaxtyping+beartype on lpgx, strict promotion."""

import jax
import jax.numpy as jnp
import pytest

from lpgx.envs import place_in_free_cells


def test_import_hook_checks_lpgx_signatures(key: jax.Array) -> None:
    with pytest.raises(Exception, match="free"):
        place_in_free_cells(key, jnp.zeros(4, jnp.float32), jnp.ones(2, bool))  # type: ignore[arg-type]


def test_strict_promotion() -> None:
    with pytest.raises(Exception, match="promot"):
        _ = jnp.ones(2, jnp.int32) + jnp.ones(2, jnp.float32)
    with pytest.raises(ValueError, match="rank"):
        _ = jnp.ones((2, 3)) + jnp.ones(3)
