"""A small dense linear solve in plain JAX operations, safe under `vmap` on CPU.

`jnp.linalg.solve` calls LAPACK through an XLA custom call; on CPU a batched (vmapped) call
splits its batch over XLA's intra-op thread pool and waits for the pieces, and jaxlib 0.10.2
deadlocks when two such calls run at once on a pool as small as a 2-core machine's (every pool
thread waits for work queued behind it; seen in CI with the tabular-MDP and IPD values).
The systems lpgx solves are tiny (the IPD's 4 × 4, a tabular MDP's states), so Gaussian
elimination with partial pivoting in ordinary operations costs nothing and cannot deadlock;
it is differentiable to any order like the rest of the program.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["solve"]


def solve(a: Float[Array, " n n"], b: Float[Array, " n *k"]) -> Float[Array, " n *k"]:
    """``x`` with ``a @ x = b``: Gauss–Jordan elimination with partial pivoting (``n`` steps of
    a `fori_loop`, no LAPACK call). For the small, well-conditioned systems of exact values."""
    n = a.shape[0]
    vector = b.ndim == 1
    rhs = b[:, None] if vector else b
    m = jnp.concatenate([a, rhs.astype(a.dtype)], axis=1)
    rows = jnp.arange(n)

    def step(i: int | Array, m: Array) -> Array:
        # Partial pivoting: the largest |entry| of column i at or below row i moves to row i.
        column = jnp.where(rows >= i, jnp.abs(m[:, i]), -1.0)
        p = jnp.argmax(column)
        row_i, row_p = m[i], m[p]
        m = m.at[p].set(row_i).at[i].set(row_p)
        pivot_row = m[i] / m[i, i]
        factors = jnp.where(rows == i, 0.0, m[:, i])
        m = m - factors[:, None] * pivot_row[None, :]
        return m.at[i].set(pivot_row)

    m = jax.lax.fori_loop(0, n, step, m)
    x = m[:, n:]
    return x[:, 0] if vector else x
