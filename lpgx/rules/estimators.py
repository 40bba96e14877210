"""Policy-gradient surrogate estimators (the DiCE magic box and its relatives)."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def magic_box(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """The DiCE magic box ``exp(x − stop_gradient(x))``: 1 in value, ``∂x`` in every derivative."""
    return jnp.exp(x - jax.lax.stop_gradient(x))
