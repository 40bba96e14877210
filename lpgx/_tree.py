"""Pytree helpers shared across layers (layer 0: imports nothing from lpgx).

- `tree_select`: per-agent (or whole-tree) choice between two stacked pytrees;
- `strided_split` / `strided_merge`: the strided mini-batches of a population (agent ``j`` in
  mini-batch ``j mod m``, so a block-sharded agent axis spreads every mini-batch over every
  device);
- `map_where`: a function applied only to the rows a mask selects.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, PyTree

__all__ = ["map_where", "strided_merge", "strided_split", "tree_select"]


def tree_select(pred: Bool[Array, "*batch"], on_true: PyTree, on_false: PyTree) -> PyTree:
    """Leaf-wise ``where(pred, on_true, on_false)``, with `pred` indexing the leading axes.

    A scalar `pred` picks whole pytrees; a ``[agents]`` `pred` picks per agent from stacked
    pytrees (each leaf's trailing axes are broadcast).
    """

    def pick(a: Array, b: Array) -> Array:
        return jnp.where(pred.reshape(pred.shape + (1,) * (a.ndim - pred.ndim)), a, b)

    return jax.tree.map(pick, on_true, on_false)


def strided_split(tree: PyTree, num_groups: int) -> PyTree:
    """Split every leaf's leading axis ``n`` into ``[num_groups, n / num_groups]``, group ``j``
    holding rows ``j, j + num_groups, j + 2·num_groups, …`` (see `strided_merge`)."""

    def split(x: Array) -> Array:
        n = x.shape[0]
        if n % num_groups:
            raise ValueError(f"cannot split {n} rows into {num_groups} equal strided groups")
        return jnp.swapaxes(x.reshape(n // num_groups, num_groups, *x.shape[1:]), 0, 1)

    return jax.tree.map(split, tree)


def strided_merge(tree: PyTree) -> PyTree:
    """The inverse of `strided_split`: ``[groups, rows]`` back to the original order."""

    def merge(x: Array) -> Array:
        return jnp.swapaxes(x, 0, 1).reshape(x.shape[0] * x.shape[1], *x.shape[2:])

    return jax.tree.map(merge, tree)


def map_where(
    fn: Callable[..., PyTree], mask: Bool[Array, " n"], xs: tuple, batch: int = 1
) -> PyTree:
    """``fn(*x_i)`` for every ``i`` where `mask` holds, zeros elsewhere; `xs` is a tuple of
    pytrees with a leading axis of size ``n`` (``None`` entries pass through).

    Only the selected rows are computed: they are gathered to the front and processed in
    chunks of `batch` rows (vmapped) by a loop whose trip count is ``ceil(#selected / batch)``,
    so an all-false mask costs nothing. Use ``batch = 1`` where one row fills the device
    (CPU), larger on an accelerator.
    """
    n = mask.shape[0]
    batch = max(1, min(batch, n))
    dynamic, static = eqx.partition(xs, eqx.is_array)

    def call(d: PyTree) -> PyTree:
        return fn(*eqx.combine(d, static))

    def row(d: PyTree, i: Array) -> PyTree:
        return jax.tree.map(lambda x: x[i], d)

    out_shape = jax.eval_shape(call, row(dynamic, jnp.zeros((), jnp.int32)))
    out = jax.tree.map(lambda s: jnp.zeros((n, *s.shape), s.dtype), out_shape)
    count = jnp.sum(mask, dtype=jnp.int32)
    padded = -(-n // batch) * batch
    idx = jnp.nonzero(mask, size=padded, fill_value=0)[0].astype(jnp.int32)

    def body(c: Array, out: PyTree) -> PyTree:
        start = c * batch
        sel = jax.lax.dynamic_slice(idx, (start,), (batch,))
        if batch == 1:
            res = jax.tree.map(lambda r: r[None], call(row(dynamic, sel[0])))
        else:
            res = jax.vmap(call)(row(dynamic, sel))
        valid = start + jnp.arange(batch, dtype=jnp.int32) < count
        where = jnp.where(valid, sel, n)
        return jax.tree.map(lambda o, r: o.at[where].set(r, mode="drop"), out, res)

    chunks = (count + batch - 1) // batch
    return jax.lax.fori_loop(0, chunks, body, out)
