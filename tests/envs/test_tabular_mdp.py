"""TabularMDP: valid random MDPs, exact values that satisfy Bellman, dynamics and trajectories."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpgx.envs import TabularMDP


@pytest.fixture(scope="module")
def env() -> TabularMDP:
    return TabularMDP()


def test_sampled_mdps_are_valid_and_nearly_deterministic(env: TabularMDP) -> None:
    mdps = jax.vmap(env.sample_level)(jax.random.split(jax.random.key(0), 50))
    p = np.asarray(mdps.transitions)
    assert p.shape == (50, 20, 5, 20) and mdps.rewards.shape == (50, 20, 5)
    # A float32 gamma draw at concentration 0.001 would underflow to 0 and give NaN rows.
    assert np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    r = np.asarray(mdps.rewards)
    assert (r >= 0).all() and (r < 1).all()
    # Dirichlet(0.001) puts almost all mass on one successor: E[max p] ≈ 1 - O(S·α).
    assert np.mean(p.max(-1) > 0.99) > 0.9


def test_values_satisfy_bellman(env: TabularMDP) -> None:
    mdp = env.sample_level(jax.random.key(1))
    logits = jax.random.normal(jax.random.key(2), (20, 5))
    v = env.values(mdp, logits)
    p_pi, r_pi = env.policy_matrices(mdp, logits)
    np.testing.assert_allclose(v, r_pi + env.gamma * p_pi @ v, rtol=1e-5)
    assert env.objective(mdp, logits) == v[0]
    # Extra reward enters linearly: V under R + 1 is V + 1/(1-γ).
    v1 = env.values(mdp, logits, mdp.rewards + 1.0)
    np.testing.assert_allclose(v1, v + 1.0 / (1.0 - env.gamma), rtol=1e-5)


def test_step_resets_after_horizon(env: TabularMDP) -> None:
    mdp = env.sample_level(jax.random.key(3))
    state, obs = env.reset(jax.random.key(0), mdp)
    assert int(obs) == 0
    step = jax.jit(env.step)
    for t in range(env.horizon):
        a = jnp.asarray(t % 5, jnp.int32)
        s = int(state.state)
        state, obs, reward, done = step(jax.random.key(t), mdp, state, a)
        assert float(reward) == pytest.approx(float(mdp.rewards[s, t % 5]))
        assert bool(done) == (t == env.horizon - 1)
    assert int(state.state) == 0 and int(state.time) == 0


def test_trajectory_returns_match_exact_value(env: TabularMDP) -> None:
    mdp = env.sample_level(jax.random.key(4))
    logits = jax.random.normal(jax.random.key(5), (20, 5))
    traj = jax.jit(env.sample_trajectories, static_argnums=3)(jax.random.key(6), mdp, logits, 4000)
    assert traj.states.shape == (4000, 21) and traj.actions.shape == (4000, 20)
    assert (np.asarray(traj.states[:, 0]) == 0).all()
    v = env.values(mdp, logits)
    disc = env.gamma ** np.arange(20)
    mc = np.asarray(traj.rewards) @ disc + env.gamma**20 * np.asarray(v[traj.states[:, -1]])
    # Returns lie in [0, 1/(1-γ)] = [0, 5]; the standard error of 4000 draws is below 0.04,
    # so 0.1 is about 2.5 s.e. at worst (seeds fixed: deterministic).
    assert abs(mc.mean() - float(v[0])) < 0.1


def test_bad_sizes_raise() -> None:
    with pytest.raises(ValueError, match="gamma"):
        TabularMDP(gamma=1.0)
    with pytest.raises(ValueError, match="start_state"):
        TabularMDP(start_state=20)
