"""Estimators and exact meta-gradients on a tabular MDP.

The estimator checks follow spec §7: with the exact V and many samples the first-order gradients
of maml, lvc and loaded match the exact gradient, and the dice and loaded Hessians converge to
the exact Hessian while maml's does not. Seeds are fixed, so every check is deterministic.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array

from lpgx.envs import TabularMDP
from lpgx.rules import IntrinsicReward, MAMLInit, pattern_flags
from lpgx.rules import estimators as est

# 8 chunks of 2000 trajectories: the Hessian of one chunk and of all 16000 from one compile.
CHUNKS, CHUNK = 8, 2000


def _cos(a: Array, b: Array) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _rel(a: Array, b: Array) -> float:
    return float(np.linalg.norm(np.ravel(a) - np.ravel(b)) / np.linalg.norm(np.ravel(b)))


@pytest.fixture(scope="module")
def sampled_derivatives() -> dict[str, tuple[Array, Array, Array, Array, Array]]:
    """Exact and sampled gradients and Hessians at a random policy, for every estimator."""
    env = TabularMDP()
    mdp = env.sample_level(jax.random.key(1))
    theta = 0.5 * jax.random.normal(jax.random.key(2), (20, 5))
    exact_g = jax.grad(lambda th: env.objective(mdp, th))(theta)
    exact_h = jax.hessian(lambda th: env.objective(mdp, th))(theta).reshape(100, 100)
    v = env.values(mdp, theta)

    @jax.jit
    def chunk_derivatives(key: Array) -> dict[str, tuple[Array, Array]]:
        traj = env.sample_trajectories(key, mdp, theta, CHUNK)
        out = {}
        for name in est.ESTIMATORS:
            f = est.get_surrogate(name)
            values = jnp.zeros(traj.states.shape) if name == "dice" else v[traj.states]

            def surrogate(th: Array, f=f, values=values) -> Array:
                lp = est.log_probs(th, traj.states[:, :-1], traj.actions)
                return f(lp, traj.rewards, values, env.gamma)

            out[name] = (jax.grad(surrogate)(theta), jax.hessian(surrogate)(theta))
        return out

    per_chunk = jax.lax.map(chunk_derivatives, jax.random.split(jax.random.key(3), CHUNKS))
    return {
        name: (
            exact_g,
            exact_h,
            jnp.mean(g, axis=0),
            jnp.mean(h, axis=0).reshape(100, 100),
            h[0].reshape(100, 100),
        )
        for name, (g, h) in per_chunk.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["maml", "lvc", "loaded"])
def test_first_order_gradients_match_exact(sampled_derivatives: dict, name: str) -> None:
    exact_g, _, g, _, _ = sampled_derivatives[name]
    # Measured 0.9997 with 32000 trajectories and 0.9987 with 4000; 0.99 is the bar.
    assert _cos(g, exact_g) > 0.99


@pytest.mark.slow
def test_hessians_of_dice_and_loaded_converge_and_maml_does_not(sampled_derivatives: dict) -> None:
    errors = {
        name: (_rel(h_small, exact_h), _rel(h, exact_h))
        for name, (_, exact_h, _, h, h_small) in sampled_derivatives.items()
    }
    # Unbiased (up to the γ^20 truncation) Hessians: the error shrinks with 8× the samples and
    # is small at 16000 (measured about 0.07 for loaded, 0.3 for dice: dice has no baseline).
    for name, bound in (("loaded", 0.15), ("dice", 0.5)):
        small, large = errors[name]
        assert large < small and large < bound, (name, errors[name])
    # maml keeps only A ∇² log π, whose expectation vanishes for a softmax policy (∇² log π does
    # not depend on the action and E[A | s] = 0): its error stays about 1, far above loaded's.
    assert errors["maml"][1] > 0.9 and errors["maml"][1] > 5 * errors["loaded"][1]
    # lvc adds the ∇log π ∇log π^T term only: in between, biased (measured 0.53).
    assert errors["loaded"][1] < errors["lvc"][1] < errors["maml"][1]


def test_magic_box_is_one_forward_and_identity_backward() -> None:
    x = jnp.asarray([0.3, -2.0])
    np.testing.assert_allclose(est.magic_box(x), 1.0)
    np.testing.assert_allclose(jax.grad(lambda y: jnp.sum(est.magic_box(y)))(x), 1.0)


def test_straight_through_value_and_jacobian() -> None:
    theta = jnp.asarray([1.0, 2.0])
    g_in = jnp.asarray([10.0, -10.0])

    def step(th: Array) -> Array:
        return est.straight_through(th, g_in, th**2, 0.5)

    np.testing.assert_allclose(step(theta), theta + 0.5 * g_in)
    # d/dθ (θ + 0.5 θ²) = 1 + θ, whatever g_in was.
    np.testing.assert_allclose(jnp.diag(jax.jacobian(step)(theta)), 1.0 + theta)


def test_discounted_returns_and_gae() -> None:
    rewards = jnp.asarray([[1.0, 0.0, 2.0]])
    returns = est.discounted_returns(rewards, jnp.asarray([4.0]), 0.5)
    np.testing.assert_allclose(returns, [[1.0 + 0.0 + 0.5 + 0.5, 0.0 + 1.0 + 1.0, 2.0 + 2.0]])
    np.testing.assert_allclose(est.gae_advantages(rewards, 0.5, 1.0), [[1.5, 1.0, 2.0]])


def test_baseline_noise_is_shared_and_scaled() -> None:
    v = jnp.arange(1.0, 21.0)
    noisy = est.baseline_values(jax.random.key(0), v, 1.0)
    eps = (noisy - v) / (jnp.linalg.norm(v) / 20)
    np.testing.assert_allclose(eps, jax.random.normal(jax.random.key(0), (20,)), rtol=1e-5)
    np.testing.assert_allclose(est.baseline_values(jax.random.key(0), v, 0.0), v)


def test_bad_names_raise() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        est.get_surrogate("reinforce")
    with pytest.raises(ValueError, match="three letters"):
        pattern_flags("lx")


def test_all_exact_pattern_equals_oracle() -> None:
    env = TabularMDP()
    mdp = env.sample_level(jax.random.key(7))
    rule = MAMLInit()
    oracle = rule.exact_meta_gradient(env, mdp, 3.0, 2)
    estimate = jax.jit(
        lambda key: rule.sampled_meta_gradient(
            env,
            mdp,
            key,
            estimator="loaded",
            sampled=pattern_flags("eee"),
            num_samples=2,
            alpha=3.0,
            num_steps=2,
        )
    )(jax.random.key(8))
    np.testing.assert_allclose(estimate, oracle, rtol=1e-4, atol=1e-7)


def _central_differences(f, x: Array, directions: Array, eps: float) -> Array:
    f = jax.jit(jax.vmap(f))
    return (f(x[None] + eps * directions) - f(x[None] - eps * directions)) / (2 * eps)


def test_exact_meta_gradients_match_finite_differences_in_float64() -> None:
    with jax.enable_x64(True):
        env = TabularMDP()
        mdp = env.sample_level(jax.random.key(9))
        assert mdp.transitions.dtype == jnp.float64
        theta0 = 0.3 * jax.random.normal(jax.random.key(10), (20, 5), jnp.float64)
        directions = jax.random.normal(jax.random.key(11), (4, 20, 5), jnp.float64)

        def maml_objective(th: Array) -> Array:
            rule = MAMLInit(logits=th)
            return env.objective(mdp, rule.inner_loop(env, mdp, 3.0, 3))

        grad = jax.jit(lambda th: MAMLInit(logits=th).exact_meta_gradient(env, mdp, 3.0, 3))(theta0)
        fd = _central_differences(maml_objective, theta0, directions, 1e-5)
        # Central differences err by O(ε²) ≈ 1e-10 times the third derivative; float64 rounding
        # adds ≈ 1e-16/ε ≈ 1e-11. A 1e-6 relative tolerance is far above both, far below a bug.
        np.testing.assert_allclose(
            jnp.einsum("dsa,sa->d", directions, grad), fd, rtol=1e-6, atol=1e-10
        )

        eta0 = 0.2 * jax.random.normal(jax.random.key(12), (20, 5), jnp.float64)

        def lirpg_objective(eta: Array) -> Array:
            grad_in = jax.grad(lambda th: env.objective(mdp, th, mdp.rewards + eta))
            theta = jnp.zeros((20, 5), jnp.float64)
            for _ in range(2):
                theta = theta + 10.0 * grad_in(theta)
            return env.objective(mdp, theta)

        lirpg_grad = jax.jit(
            lambda eta: IntrinsicReward(reward=eta).exact_meta_gradient(env, mdp, 10.0, 2)
        )(eta0)
        fd = _central_differences(lirpg_objective, eta0, directions, 1e-5)
        np.testing.assert_allclose(
            jnp.einsum("dsa,sa->d", directions, lirpg_grad), fd, rtol=1e-6, atol=1e-10
        )
