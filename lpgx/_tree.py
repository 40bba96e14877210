"""Pytree helpers shared across layers (layer 0: imports nothing from lpgx)."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, PyTree

__all__ = ["tree_select"]


def tree_select(pred: Bool[Array, "*batch"], on_true: PyTree, on_false: PyTree) -> PyTree:
    """Leaf-wise ``where(pred, on_true, on_false)``, with `pred` indexing the leading axes.

    A scalar `pred` picks whole pytrees; a ``[agents]`` `pred` picks per agent from stacked
    pytrees (each leaf's trailing axes are broadcast).
    """

    def pick(a: Array, b: Array) -> Array:
        return jnp.where(pred.reshape(pred.shape + (1,) * (a.ndim - pred.ndim)), a, b)

    return jax.tree.map(pick, on_true, on_false)
