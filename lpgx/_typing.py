"""jaxtyping aliases shared across lpgx (layer 0: imports nothing from lpgx)."""

from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

__all__ = ["BoolScalar", "FloatScalar", "IntScalar", "PRNGKeyArray", "Scalar"]

Scalar = Float[Array, ""]
FloatScalar = Float[Array, ""]
IntScalar = Int[Array, ""]
BoolScalar = Bool[Array, ""]
