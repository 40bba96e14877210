"""The iterated prisoner's dilemma: dynamics, rollouts and the exact value."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lpgx
from lpgx.envs import AbstractEnvironment, IteratedPrisonersDilemma, ipd_log_prob


def test_step_pays_and_moves_both_players() -> None:
    env = IteratedPrisonersDilemma()
    state, obs = env.reset(jax.random.key(0))
    assert obs.tolist() == [0, 0]
    # (own, other) -> (payoff to player 0, payoff to player 1, state of player 0, of player 1)
    expected = {
        (0, 0): (-2.0, -2.0, 1, 1),
        (0, 1): (0.0, -3.0, 2, 3),
        (1, 0): (-3.0, 0.0, 3, 2),
        (1, 1): (-1.0, -1.0, 4, 4),
    }
    for (a0, a1), (r0, r1, s0, s1) in expected.items():
        action = jnp.asarray([a0, a1], jnp.int32)
        _, obs, reward, done = env.step(jax.random.key(0), None, state, action)
        assert reward.tolist() == [r0, r1]
        assert obs.tolist() == [s0, s1]
        assert not bool(done)
    assert isinstance(env, AbstractEnvironment)
    assert lpgx.IteratedPrisonersDilemma is IteratedPrisonersDilemma


def test_episode_resets_after_rollout_length() -> None:
    env = IteratedPrisonersDilemma(rollout_length=3)
    state, _ = env.reset(jax.random.key(0))
    action = jnp.asarray([1, 1], jnp.int32)
    dones = []
    for _ in range(3):
        state, obs, _, done = env.step(jax.random.key(0), None, state, action)
        dones.append(bool(done))
    assert dones == [False, False, True]
    assert obs.tolist() == [0, 0] and int(state.time) == 0


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="gamma must lie in"):
        IteratedPrisonersDilemma(gamma=1.0)
    with pytest.raises(ValueError, match="rollout_length"):
        IteratedPrisonersDilemma(rollout_length=0)


def test_rollout_records_states_and_behaviour_log_probs() -> None:
    env = IteratedPrisonersDilemma(rollout_length=50)
    thetas = jax.random.normal(jax.random.key(1), (2, 5))
    traj = jax.jit(env.rollout, static_argnums=2)(jax.random.key(2), thetas, 16)
    assert traj.states.shape == traj.actions.shape == traj.rewards.shape == (16, 50, 2)
    assert np.all(np.asarray(traj.states[:, 0]) == 0)
    # The state after round t encodes both actions of round t from each player's side.
    a = np.asarray(traj.actions)
    np.testing.assert_array_equal(traj.states[:, 1:, 0], 1 + 2 * a[:, :-1, 0] + a[:, :-1, 1])
    np.testing.assert_array_equal(traj.states[:, 1:, 1], 1 + 2 * a[:, :-1, 1] + a[:, :-1, 0])
    for i in range(2):
        lp = ipd_log_prob(thetas[i], traj.states[..., i], traj.actions[..., i])
        np.testing.assert_allclose(traj.log_probs[..., i], lp, rtol=1e-6, atol=1e-6)
    swapped = traj.swap()
    np.testing.assert_array_equal(swapped.rewards[..., 0], traj.rewards[..., 1])


def test_exact_value_of_pure_strategies() -> None:
    env = IteratedPrisonersDilemma()
    defect, cooperate = jnp.full((5,), 30.0), jnp.full((5,), -30.0)
    horizon = 1.0 / (1.0 - env.gamma)  # Σ γ^t
    np.testing.assert_allclose(env.exact_value(defect, defect), -2.0 * horizon, rtol=1e-5)
    np.testing.assert_allclose(env.exact_value(cooperate, cooperate), -1.0 * horizon, rtol=1e-5)
    np.testing.assert_allclose(env.exact_value(defect, cooperate), 0.0, atol=1e-4)
    np.testing.assert_allclose(env.exact_value(cooperate, defect), -3.0 * horizon, rtol=1e-5)
    # Tit-for-tat (cooperate first, then copy the opponent's last action) against itself.
    tft = jnp.asarray([-30.0, 30.0, -30.0, 30.0, -30.0])
    np.testing.assert_allclose(env.exact_value(tft, tft), -1.0 * horizon, rtol=1e-5)


def test_exact_value_matches_long_monte_carlo() -> None:
    # The exact value is the infinite-horizon discounted sum; a rollout of 400 rounds leaves out
    # at most 3 · γ^400 / (1 − γ) ≈ 6e-6 of it, far below the Monte-Carlo standard error
    # (≈ 0.07 with 4096 trajectories), so the comparison is with the untruncated value.
    env = IteratedPrisonersDilemma(rollout_length=400)
    discount = env.gamma ** jnp.arange(400, dtype=jnp.float32)
    rollout = jax.jit(env.rollout, static_argnums=2)
    for i in range(3):
        thetas = 1.5 * jax.random.normal(jax.random.key(10 + i), (2, 5))
        traj = rollout(jax.random.key(20 + i), thetas, 4096)
        returns = np.asarray(jnp.sum(traj.rewards * discount[None, :, None], axis=1))
        mc = returns.mean(axis=0)
        se = returns.std(axis=0, ddof=1) / np.sqrt(returns.shape[0])
        exact = np.asarray(env.exact_values(thetas))
        # Within 3 standard errors: a correct value fails this with probability ≈ 0.3% per
        # comparison (the keys are fixed, so the outcome is deterministic).
        assert np.all(np.abs(mc - exact) < 3.0 * se), (i, mc, exact, se)


def test_truncated_exact_value_matches_rollouts_of_that_length() -> None:
    # The default 100-round rollout estimates the value truncated at 100 rounds, which
    # `exact_value(..., horizon=100)` computes; within 3 s.e. as above.
    env = IteratedPrisonersDilemma()
    discount = env.gamma ** jnp.arange(100, dtype=jnp.float32)
    thetas = 1.5 * jax.random.normal(jax.random.key(30), (2, 5))
    traj = jax.jit(env.rollout, static_argnums=2)(jax.random.key(31), thetas, 4096)
    returns = np.asarray(jnp.sum(traj.rewards[..., 0] * discount[None, :], axis=1))
    se = returns.std(ddof=1) / np.sqrt(returns.shape[0])
    truncated = float(env.exact_value(thetas[0], thetas[1], horizon=100))
    assert abs(returns.mean() - truncated) < 3.0 * se
    # The truncation matters at this horizon: the γ^100 tail is far beyond the s.e.
    assert abs(float(env.exact_value(thetas[0], thetas[1])) - truncated) > 10.0 * se
