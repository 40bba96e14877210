"""The meta-gradient is the derivative of the outer loss, and the LPG network behaves."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpgx.agents import Agent
from lpgx.envs import get_level_set
from lpgx.lifetime import Learner
from lpgx.meta import MetaGradient, MetaGradientConfig
from lpgx.rules import LPG, LifetimeContext


def _to_f64(tree: object) -> object:
    return jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, tree)


def test_meta_gradient_matches_finite_differences() -> None:
    """⟨∇η L, v⟩ equals (L(η + εv) − L(η − εv)) / 2ε for the same keys, in float64."""
    jax.config.update("jax_enable_x64", True)
    try:
        # Mixed f32 environment values meet f64 parameters here; this test is about numerics.
        with jax.numpy_dtype_promotion("standard"):
            levels = get_level_set("all_shortlife")
            learner = Learner.for_tasks(levels, num_workers=3, rollout_len=6)
            mg = MetaGradient(learner, MetaGradientConfig(num_agent_updates=2), num_mini_batches=2)
            rule = _to_f64(LPG(key=jax.random.key(0), hidden=8, y_size=4))
            tasks = jax.vmap(levels.sample)(jax.random.split(jax.random.key(1), 2))
            agents = _to_f64(mg.init_agents(jax.random.key(2), tasks, rule))
            key = jax.random.key(3)
            params, static = eqx.partition(rule, eqx.is_inexact_array)

            grads, _, _ = eqx.filter_jit(mg.meta_gradient)(rule, agents, key)

            @eqx.filter_jit
            def loss(p: object) -> jax.Array:
                r = eqx.combine(p, static)
                keys = jax.random.split(key, 2).reshape(2, 1)
                # Same key layout as meta_gradient: mini-batches of one agent each.
                losses = [
                    mg.agent_meta_loss(r, jax.tree.map(lambda x, i=i: x[i], agents), keys[i, 0])[0]
                    for i in range(2)
                ]
                return (losses[0] + losses[1]) / 2

            leaves, treedef = jax.tree.flatten(params)
            vkeys = jax.random.split(jax.random.key(4), len(leaves))
            v = jax.tree.unflatten(
                treedef,
                [
                    jax.random.normal(k, x.shape, x.dtype)
                    for k, x in zip(vkeys, leaves, strict=True)
                ],
            )
            eps = 1e-6
            plus = loss(jax.tree.map(lambda p, d: p + eps * d, params, v))
            minus = loss(jax.tree.map(lambda p, d: p - eps * d, params, v))
            fd = float((plus - minus) / (2 * eps))
            analytic = float(
                sum(
                    jnp.sum(g * d)
                    for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(v), strict=True)
                )
            )
            assert abs(analytic) > 1e-6  # the check is not vacuous
            assert abs(fd - analytic) / abs(analytic) < 1e-3, (fd, analytic)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_lpg_parameter_count_matches_reference_plus_gamma() -> None:
    # GROOVE's LPG has 203,946 parameters; lpgx adds γ as an input (decision 9), which adds
    # one column to the GRU's three input kernels: 3 × 256 = 768 more.
    rule = LPG(key=jax.random.key(0))
    n = sum(x.size for x in jax.tree.leaves(eqx.filter(rule, eqx.is_inexact_array)))
    assert n == 203_946 + 768
    conditioned = LPG(key=jax.random.key(0), lifetime_conditioning=True)
    m = sum(x.size for x in jax.tree.leaves(eqx.filter(conditioned, eqx.is_inexact_array)))
    assert m == n + 2 * 3 * 256


@pytest.mark.parametrize("core", ["gru", "lstm"])
def test_lpg_is_backward_and_resets_at_episode_ends(core: str) -> None:
    """π̂ at t depends only on steps t … end of its episode (the core runs backwards)."""
    rule = LPG(key=jax.random.key(0), hidden=16, core=core)  # pyright: ignore[reportArgumentType]
    T, W = 8, 2
    x = jax.random.normal(jax.random.key(1), (T, W, 6))
    done = jnp.zeros((T, W), bool).at[3, :].set(True)
    pi, y = rule(x, done)
    assert pi.shape == (T, W) and y.shape == (T, W, 8)
    np.testing.assert_allclose(jnp.sum(y, -1), 1.0, rtol=1e-5)
    # Changing an input after the episode end at t=3 leaves t <= 3 untouched ...
    x2 = x.at[5].add(1.0)
    pi2, _ = rule(x2, done)
    np.testing.assert_array_equal(pi[:4], pi2[:4])
    assert not np.allclose(pi[4:6], pi2[4:6])
    # ... and changing an early input leaves later outputs untouched.
    x3 = x.at[1].add(1.0)
    pi3, _ = rule(x3, done)
    np.testing.assert_array_equal(pi[2:], pi3[2:])


def test_lifetime_features_are_fraction_and_log() -> None:
    rule = LPG(key=jax.random.key(0), hidden=8, lifetime_conditioning=True)
    T, W = 3, 2
    agent = Agent.create(4, 5, 8, (), key=jax.random.key(1))
    ctx = LifetimeContext(
        step=jnp.asarray(25, jnp.int32), lifetime=jnp.asarray(100, jnp.int32), agent=agent
    )
    feats = rule.features(
        jnp.zeros((T, W)),
        jnp.zeros((T, W), bool),
        jnp.ones((T, W)),
        jnp.ones((T + 1, W, 8)) / 8,
        ctx,
    )
    assert feats.shape == (T, W, 8)
    np.testing.assert_allclose(feats[..., 6], 0.25)
    np.testing.assert_allclose(feats[..., 7], np.log(100.0), rtol=1e-6)
    np.testing.assert_allclose(feats[..., 2], 0.99)  # γ input (decision 9)


def _meta_gradients(num_agent_updates: int) -> dict[str, np.ndarray]:
    levels = get_level_set("dense")
    learner = Learner.for_tasks(levels, num_workers=4, rollout_len=8)
    rule = LPG(key=jax.random.key(0), hidden=8, y_size=4)
    tasks = jax.vmap(levels.sample)(jax.random.split(jax.random.key(1), 2))
    out = {}
    for way in ("exact", "stop_gradient", "lvc"):
        config = MetaGradientConfig(num_agent_updates=num_agent_updates, differentiation=way)  # type: ignore[arg-type]
        mg = MetaGradient(learner, config)
        agents = mg.init_agents(jax.random.key(2), tasks, rule)
        grads, _, _ = eqx.filter_jit(mg.meta_gradient)(rule, agents, jax.random.key(3))
        out[way] = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads)])
    return out


@pytest.mark.slow
def test_ways_of_differentiating_agree_on_one_update_and_differ_after() -> None:
    """With K = 1 the rule's inputs come from the fresh agent (no path through an earlier
    update) and the LVC form changes only the agent loss's Hessian in θ, which K = 1 never
    uses: all three meta-gradients agree. With K = 2 the reference's stop-gradient drops the
    path through the first update's effect on the inputs, and LVC changes that Hessian."""
    one = _meta_gradients(1)
    np.testing.assert_allclose(one["stop_gradient"], one["exact"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one["lvc"], one["exact"], rtol=1e-4, atol=1e-6)
    two = _meta_gradients(2)
    for way in ("stop_gradient", "lvc"):
        gap = np.linalg.norm(two[way] - two["exact"]) / np.linalg.norm(two["exact"])
        assert gap > 1e-3, (way, gap)
        # Yet the same first-order information: the directions stay close.
        cosine = two[way] @ two["exact"] / np.linalg.norm(two[way]) / np.linalg.norm(two["exact"])
        assert cosine > 0.5, (way, cosine)


def test_an_unknown_way_of_differentiating_is_refused() -> None:
    with pytest.raises((ValueError, TypeError), match="differentiation"):
        MetaGradientConfig(differentiation="dice")  # type: ignore[arg-type]
