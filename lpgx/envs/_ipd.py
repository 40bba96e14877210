"""The iterated prisoner's dilemma: a two-player environment with an exact value.

Each player sees one of five states: ``0`` at the start, then ``1 + 2·a_own + a_other`` after a
round in which it played ``a_own`` and its opponent ``a_other``. Action ``0`` is *defect* and
``1`` *cooperate*; the payoff to a player for ``(own, other)`` is ``(0,0) → −2``, ``(0,1) → 0``,
``(1,0) → −3``, ``(1,1) → −1``. A tabular policy is a vector ``θ ∈ R⁵`` with
``P(action 0 | s) = sigmoid(θ_s)`` (the convention of LOLA-DiCE). Two players' parameters are
stacked as ``thetas[2, 5]``, row ``i`` for player ``i``; swapping the rows gives the other
player's perspective, so every loss is written once, for player 0.

Because both policies are tabular in the previous joint outcome, the game is a 4-state Markov
chain after the first round and its discounted value is a 4×4 linear solve (`exact_value`).
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._linalg import solve
from .._typing import BoolScalar, FloatScalar, PRNGKeyArray
from ._base import AbstractEnvironment, ObsSpec

__all__ = ["IPDState", "IPDTrajectory", "IteratedPrisonersDilemma", "ipd_log_prob"]

NUM_STATES = 5
# Payoff to the player whose action is the row, against the column (0 defect, 1 cooperate).
_PAYOFF = ((-2.0, 0.0), (-3.0, -1.0))
# The opponent's state for each of a player's states: (own, other) swapped, i.e. 2 <-> 3.
_SWAP_STATES = (0, 1, 3, 2, 4)


class IPDState(eqx.Module):
    """Both players' current states (``obs[i]`` is player ``i``'s) and the round number."""

    obs: Int[Array, "2"]
    time: Int[Array, ""]


class IPDTrajectory(eqx.Module):
    """A batch of IPD rollouts, batch-major, with a trailing player axis.

    ``states[..., t, i]`` is the state player ``i`` saw before round ``t``; ``actions``,
    ``log_probs`` (of the behaviour policy that sampled the action) and ``rewards`` are
    indexed the same way.
    """

    states: Int[Array, "*batch T 2"]
    actions: Int[Array, "*batch T 2"]
    log_probs: Float[Array, "*batch T 2"]
    rewards: Float[Array, "*batch T 2"]

    def swap(self) -> "IPDTrajectory":
        """The same rollouts seen from the other player (the player axis reversed)."""
        return jax.tree.map(lambda x: jnp.flip(x, axis=-1), self)


def ipd_log_prob(
    theta: Float[Array, "5"], states: Int[Array, "*shape"], actions: Int[Array, "*shape"]
) -> Float[Array, "*shape"]:
    """``log π_θ(action | state)`` with ``P(0 | s) = sigmoid(θ_s)``, computed stably."""
    logits = theta[states]
    return jnp.where(actions == 0, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))


class IteratedPrisonersDilemma(AbstractEnvironment[None, IPDState]):
    """The two-player iterated prisoner's dilemma of LOLA-DiCE (see the module docstring).

    The environment has no levels (pass ``None``). An action is the pair of both players'
    actions and the reward the pair of both players' payoffs; an episode lasts
    `rollout_length` rounds and then resets automatically.

    **Arguments:**

    - `rollout_length`: rounds per episode (100 in the reference).
    - `gamma`: discount of `exact_value` (0.96 in the reference).
    """

    rollout_length: int = eqx.field(static=True, default=100)
    gamma: float = 0.96
    num_actions: ClassVar[int] = 2  # pyright: ignore[reportIncompatibleVariableOverride]
    num_states: ClassVar[int] = NUM_STATES

    def __check_init__(self) -> None:
        if self.rollout_length < 1:
            raise ValueError(f"rollout_length must be at least 1, got {self.rollout_length}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must lie in [0, 1) for a finite value, got {self.gamma}")

    @property
    def obs_spec(self) -> ObsSpec:
        """One player's observation: an index into the 5 states (start, then 1 + 2·own +
        other); the observation this environment returns holds both players' (shape 2)."""
        return ObsSpec.index(5)

    def reset(self, key: PRNGKeyArray, level: None = None) -> tuple[IPDState, Int[Array, "2"]]:
        del key, level
        state = IPDState(obs=jnp.zeros((2,), jnp.int32), time=jnp.zeros((), jnp.int32))
        return state, state.obs

    def step(
        self, key: PRNGKeyArray, level: None, state: IPDState, action: Int[Array, "2"]
    ) -> tuple[IPDState, Int[Array, "2"], Float[Array, "2"], BoolScalar]:
        """One round; `action` is ``(a_0, a_1)`` and the reward ``(r_0, r_1)``."""
        payoff = jnp.asarray(_PAYOFF, jnp.float32)
        other = jnp.flip(action)
        reward = payoff[action, other]
        obs = 1 + 2 * action + other
        time = state.time + 1
        done = time >= self.rollout_length
        reset_state, _ = self.reset(key, level)
        next_state = IPDState(obs=obs, time=time)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
        return next_state, next_state.obs, reward, done

    def rollout(
        self, key: PRNGKeyArray, thetas: Float[Array, "2 5"], batch_size: int
    ) -> IPDTrajectory:
        """`batch_size` independent episodes of `rollout_length` rounds from the start state.

        Time is a `lax.scan`, the batch a `vmap`; the parameters are not differentiated
        through (actions are discrete samples), so the log-probs are the behaviour policy's.

        **Returns:** an `IPDTrajectory` of shape ``[batch_size, rollout_length, 2]``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        thetas = jax.lax.stop_gradient(thetas)
        # One draw of all uniforms: far cheaper on CPU than splitting a key every round.
        uniforms = jax.random.uniform(key, (batch_size, self.rollout_length, 2))
        # The sequential part runs on the joint outcome ``j`` (0 at the start, then
        # ``1 + 2·a_0 + a_1``): player 0's state is ``j`` and player 1's ``swap(j)``. Only the
        # probability look-up and the comparison stay inside the scan; states, log-probs and
        # rewards follow from the sampled actions afterwards, vectorised over batch and time
        # (the same numbers as a `step`-by-`step` rollout, in a fifth less time on CPU).
        swap = jnp.asarray(_SWAP_STATES, jnp.int32)
        defect = jax.nn.sigmoid(thetas)
        defect_by_joint = jnp.stack([defect[0], defect[1][swap]], axis=-1)  # [5, 2]

        def round_(
            joint: Int[Array, " batch"], u: Float[Array, "batch 2"]
        ) -> tuple[Int[Array, " batch"], tuple[Int[Array, " batch"], Int[Array, "batch 2"]]]:
            # Cooperate (1) with probability 1 - sigmoid(θ_s).
            action = (u >= defect_by_joint[joint]).astype(jnp.int32)
            return 1 + 2 * action[:, 0] + action[:, 1], (joint, action)

        start = jnp.zeros((batch_size,), jnp.int32)
        _, (joints, actions) = jax.lax.scan(round_, start, jnp.swapaxes(uniforms, 0, 1))
        joints = joints.T
        actions = jnp.swapaxes(actions, 0, 1)
        states = jnp.stack([joints, swap[joints]], axis=-1)
        log_probs = jnp.stack(
            [
                ipd_log_prob(thetas[0], states[..., 0], actions[..., 0]),
                ipd_log_prob(thetas[1], states[..., 1], actions[..., 1]),
            ],
            axis=-1,
        )
        rewards = jnp.asarray(_PAYOFF, jnp.float32)[actions, jnp.flip(actions, axis=-1)]
        return IPDTrajectory(states=states, actions=actions, log_probs=log_probs, rewards=rewards)

    def exact_value(
        self,
        theta_self: Float[Array, "5"],
        theta_other: Float[Array, "5"],
        horizon: int | None = None,
    ) -> FloatScalar:
        """Discounted value ``Σ_t γᵗ r_t`` (from round 0) of the first player.

        ``V = p₀ᵀ (I − γP)⁻¹ r`` over the four joint outcomes ``(own, other)`` in the order
        ``(0,0), (0,1), (1,0), (1,1)`` (the states ``1…4``): `p₀` is the distribution of the
        first round, ``P[j, k]`` the probability of outcome ``k`` after outcome ``j``. The
        opponent's parameters are re-indexed ``[0, 1, 3, 2, 4]`` into the first player's states.
        With `horizon` ``H`` the sum stops after ``H`` rounds (``p₀ᵀ Σ_{t<H} (γP)ᵗ r``: the value
        a rollout of ``H`` rounds estimates). Differentiable in both parameter vectors.
        """
        p_self = jax.nn.sigmoid(theta_self)
        p_other = jax.nn.sigmoid(theta_other[jnp.asarray(_SWAP_STATES, jnp.int32)])

        def outcomes(x: Array, y: Array) -> Array:
            # (own, other) = (D, D), (D, C), (C, D), (C, C); x, y are the defect probabilities.
            return jnp.stack([x * y, x * (1.0 - y), (1.0 - x) * y, (1.0 - x) * (1.0 - y)], -1)

        p0 = outcomes(p_self[0], p_other[0])
        transition = outcomes(p_self[1:], p_other[1:])
        rewards = jnp.asarray(_PAYOFF, jnp.float32).reshape(4)
        if horizon is None:
            eye = jnp.eye(4, dtype=transition.dtype)
            discounted = solve(eye - self.gamma * transition, rewards)
        else:
            if horizon < 1:
                raise ValueError(f"horizon must be at least 1, got {horizon}")

            def add_round(_: int | Array, carry: tuple[Array, Array]) -> tuple[Array, Array]:
                term, total = carry
                term = self.gamma * (transition @ term)
                return term, total + term

            _, discounted = jax.lax.fori_loop(0, horizon - 1, add_round, (rewards, rewards))
        return jnp.dot(p0, discounted)

    def exact_values(self, thetas: Float[Array, "2 5"]) -> Float[Array, "2"]:
        """`exact_value` of both players: ``(V_0, V_1)``."""
        return jnp.stack(
            [self.exact_value(thetas[0], thetas[1]), self.exact_value(thetas[1], thetas[0])]
        )
