"""The plain-JAX solve that replaces LAPACK's under vmap (a jaxlib CPU deadlock)."""

import jax
import jax.numpy as jnp
import numpy as np

from lpgx._linalg import solve


def test_solve_matches_lapack_and_its_derivatives() -> None:
    keys = jax.random.split(jax.random.key(0), 8)
    # Matrices like I − γP (diagonally dominant) and general ones that need pivoting.
    p = jax.nn.softmax(jax.random.normal(keys[0], (6, 5, 5)), axis=-1)
    a = jnp.concatenate([jnp.eye(5)[None] - 0.9 * p, jax.random.normal(keys[1], (2, 5, 5))])
    b = jax.random.normal(keys[2], (8, 5))
    got = jax.vmap(solve)(a, b)
    want = jnp.linalg.solve(a, b[..., None])[..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # Matrix right-hand sides, and a gradient through the solve.
    np.testing.assert_allclose(solve(a[0], jnp.eye(5)), jnp.linalg.inv(a[0]), rtol=1e-4, atol=1e-5)
    grad = jax.grad(lambda m: jnp.sum(solve(m, b[0]) ** 2))(a[0])
    want_grad = jax.grad(lambda m: jnp.sum(jnp.linalg.solve(m, b[0]) ** 2))(a[0])
    np.testing.assert_allclose(grad, want_grad, rtol=1e-3, atol=1e-4)
