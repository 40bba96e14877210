"""MGRL: the LVC inner loss, the window's meta-gradient against finite differences, and the
online loop (A2C keeps its hyperparameters, MGRL moves them, a NaN meta-gradient is skipped)."""

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Int, PyTree

from lpgx._typing import PRNGKeyArray
from lpgx.agents import Trajectory
from lpgx.mgrl import (
    AbstractVecEnv,
    ActorCritic,
    MetaHyperparams,
    OnlineConfig,
    OnlineTrainer,
    StepOut,
    inner_loss,
    inner_update,
    outer_advantages,
    unrolled_outer_loss,
)

T, W, OBS, ACTIONS = 4, 3, 5, 3


def _batch(key: PRNGKeyArray, dtype: jnp.dtype = jnp.float64) -> Trajectory:
    k_obs, k_act, k_rew, k_done, k_last = jax.random.split(key, 5)
    return Trajectory(
        obs=jax.random.normal(k_obs, (T, W, OBS), dtype),
        action=jax.random.randint(k_act, (T, W), 0, ACTIONS, jnp.int32),
        reward=jax.random.normal(k_rew, (T, W), dtype),
        done=jax.random.bernoulli(k_done, 0.2, (T, W)),
        logp=jnp.zeros((T, W), dtype),
        last_obs=jax.random.normal(k_last, (W, OBS), dtype),
    )


def _net(key: PRNGKeyArray) -> ActorCritic:
    # Built in one compiled call (the orthogonal initialiser is a scan per layer shape).
    return eqx.filter_jit(lambda k: ActorCritic((OBS,), ACTIONS, "mlp", (8,), jnp.float64, key=k))(
        key
    )


def test_lvc_inner_loss_same_gradient_different_hessian() -> None:
    with jax.enable_x64(True):
        net = _net(jax.random.key(0))
        rule = MetaHyperparams(dtype=jnp.float64)
        traj = _batch(jax.random.key(1))
        params, static = eqx.partition(net, eqx.is_inexact_array)

        def grad(surrogate: str):
            def loss(p: PyTree) -> Array:
                n = eqx.combine(p, static)
                # The values behind the returns come from the parameters being differentiated
                # as constants, as for the agent (its gradient), so only log π differs.
                return inner_loss(n, jax.lax.stop_gradient(n), rule, traj, surrogate)[0]  # pyright: ignore[reportArgumentType]

            return jax.jit(jax.grad(loss))

        g_log, g_lvc = grad("log")(params), grad("lvc")(params)
        for a, b in zip(jax.tree.leaves(g_log), jax.tree.leaves(g_lvc), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)

        direction = jax.tree.map(
            lambda x: jax.random.normal(jax.random.key(2), x.shape, x.dtype), params
        )
        hvp_log = jax.jit(lambda p, d: jax.jvp(grad("log"), (p,), (d,))[1])(params, direction)
        hvp_lvc = jax.jit(lambda p, d: jax.jvp(grad("lvc"), (p,), (d,))[1])(params, direction)
        diff = jax.tree.map(lambda a, b: a - b, hvp_log, hvp_lvc)
        flat_diff = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(diff)])
        flat_log = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(hvp_log)])
        # LVC adds E[A ∇log π ∇log π^T] to the Hessian: a difference of the same order as
        # the Hessian-vector product itself, not rounding.
        assert float(jnp.linalg.norm(flat_diff)) > 1e-3 * float(jnp.linalg.norm(flat_log))


def test_window_meta_gradient_matches_finite_differences() -> None:
    with jax.enable_x64(True):
        net = _net(jax.random.key(3))
        rule = MetaHyperparams(dtype=jnp.float64)
        keys = jax.random.split(jax.random.key(4), 6)
        warmup = jax.tree.map(lambda *x: jnp.stack(x), *[_batch(k) for k in keys[:2]])
        batches = jax.tree.map(lambda *x: jnp.stack(x), *[_batch(k) for k in keys[2:5]])
        outer = _batch(keys[5])
        params = eqx.filter(net, eqx.is_inexact_array)
        import optax

        opt = optax.scale_by_adam(eps_root=1e-8).init(params)
        # Two warm-up updates give Adam moments of their own: the very first Adam step is
        # ≈ lr · sign(g), whose derivative in the meta-parameters is almost 0.
        lr, clip = 0.05, 1e6  # the clip inactive: its norm is under stop_gradient by design
        warm = jax.jit(lambda n, o, b: inner_update(rule, n, o, b, jnp.asarray(lr), clip)[:2])
        for i in range(2):
            net, opt = warm(net, opt, jax.tree.map(lambda x, i=i: x[i], warmup))
        adv = jax.jit(outer_advantages)(net, outer)

        def f(logits: Array) -> Array:
            return unrolled_outer_loss(
                MetaHyperparams(logits), net, opt, batches, outer, adv, lr, clip
            )

        grad = jax.jit(jax.grad(f))(rule.logits)
        eps = 1e-5
        basis = jnp.eye(4, dtype=jnp.float64)
        fd = jax.jit(jax.vmap(lambda e: f(rule.logits + eps * e) - f(rule.logits - eps * e)))(
            basis
        ) / (2 * eps)
        assert float(jnp.max(jnp.abs(grad))) > 1e-6  # a real signal, not 0 = 0
        # Central differences err by O(ε²) times the third derivative, float64 rounding by
        # ≈ 1e-16/ε; both far below this tolerance, a wrong term far above it.
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)


class _Chain(AbstractVecEnv):
    """A toy vectorised environment: a random observation, reward 1 for action 0, episodes
    of 4 steps."""

    num_envs: int = eqx.field(static=True, default=8)  # pyright: ignore[reportIncompatibleVariableOverride]
    num_actions: int = eqx.field(static=True, default=2)  # pyright: ignore[reportIncompatibleVariableOverride]
    obs_shape: tuple[int, ...] = eqx.field(static=True, default=(3,))  # pyright: ignore[reportIncompatibleVariableOverride]

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Array]:
        return (
            (jnp.zeros(self.num_envs, jnp.int32), jnp.zeros(self.num_envs, jnp.float32)),
            jax.random.normal(key, (self.num_envs, 3)),
        )

    def step(
        self, state: PyTree, key: PRNGKeyArray, action: Int[Array, " W"]
    ) -> tuple[PyTree, StepOut]:
        t, running = state
        reward = (action == 0).astype(jnp.float32)
        t = t + 1
        done = t >= 4
        total = running + reward
        out = StepOut(
            obs=jax.random.normal(key, (self.num_envs, 3)),
            reward=reward,
            done=done,
            ended=done,
            score=jnp.where(done, total, 0.0),
        )
        return (jnp.where(done, 0, t), jnp.where(done, 0.0, total)), out


def _trainer(meta_learn: bool) -> OnlineTrainer:
    config = OnlineConfig(
        num_envs=8,
        rollout_len=4,
        torso="mlp",
        hidden=(8,),
        meta_learn=meta_learn,
        meta_learning_rate=0.05,
        learning_rate=0.01,
        differentiation="lvc",
    )
    return OnlineTrainer(_Chain(), config, train_steps=10, chunk_size=4, seeds=2)


def test_online_loop() -> None:
    meta_learn = True  # the loop without meta-learning (A2C) is test_online_run_resumes_exactly's
    trainer = _trainer(meta_learn)
    state = trainer.init()
    run = eqx.filter_jit(eqx.debug.assert_max_traces(trainer.run_chunk, max_traces=1))
    state, m1 = run(state)
    gamma = np.asarray(m1["meta/gamma"][-1])
    assert gamma.shape == (2,)
    if meta_learn:
        assert np.all(np.abs(gamma - 0.99) > 1e-5)
        assert not np.allclose(gamma[0], gamma[1])  # the seeds are independent runs
    else:
        np.testing.assert_allclose(gamma, 0.99, rtol=1e-6)
    # Episodes of 4 steps: 8 envs × 12 steps per window end 24 games.
    assert np.all(np.asarray(m1["episodes_ended"]) == 24)
    assert np.all(np.isfinite(np.asarray(m1["episode_return"][-1])))

    # A NaN in seed 0's pending batch makes its meta-gradients NaN: each window's
    # meta-update is skipped and counted; seed 1 goes on untouched.
    runs = state.runs
    reward = runs.batch.reward.at[0].set(jnp.nan)
    state = eqx.tree_at(lambda s: s.runs.batch.reward, state, reward)
    logits = np.asarray(runs.rule.logits)
    state, m2 = run(state)
    skips = np.asarray(m2["meta_nan_skips"])
    if meta_learn:
        np.testing.assert_array_equal(skips[:, 0], [1, 2, 3, 4])
        np.testing.assert_array_equal(skips[:, 1], 0)
        np.testing.assert_array_equal(np.asarray(state.runs.rule.logits)[0], logits[0])
        assert not np.allclose(np.asarray(state.runs.rule.logits)[1], logits[1])

    state, m3 = run(state)  # runs past train_steps: skipped windows, no recompilation
    assert int(state.step) == 10
    valid = np.concatenate([m1["valid"], m2["valid"], m3["valid"]])
    np.testing.assert_array_equal(valid, [1] * 10 + [0] * 2)


def test_online_run_resumes_exactly(tmp_path: Path) -> None:
    import dataclasses
    import json
    import shutil

    from lpgx.compose import PRESETS
    from lpgx.train import train

    config = dataclasses.replace(
        PRESETS["a2c-online"][1],
        env_mode="gymnax:CartPole-v1",
        env_steps=None,
        train_steps=4,
        seeds=2,
        env_workers=4,
        train_rollout_len=2,
        agent_hidden=(8,),
        chunk_size=2,
        checkpoint_every=2,
    )
    full = tmp_path / "full"
    train(config, full, evaluate=False)
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "ckpt" / "step_00000004.json").unlink()
    train(config, cut, resume=True, evaluate=False)

    def records(run: Path) -> list[dict]:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]

    assert records(cut) == records(full)
    last = records(full)[-1]
    assert "seed1/episode_return" in last
    assert last["seed0/meta/gamma"] == last["seed1/meta/gamma"] == pytest.approx(0.99)
