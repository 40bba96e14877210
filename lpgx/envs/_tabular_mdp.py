"""Random tabular MDPs with exact values: the ground truth of the meta-gradient bias experiments.

A `TabularMDP` (the environment) holds only static sizes; an `MDP` (its level) holds the arrays
``(P, R)``, so many MDPs stack and vmap. Transitions are Dirichlet(0.001) per ``(s, a)``, drawn in
log space (``jax.random.loggamma`` then a log-softmax) because a float32 gamma draw with such a
small concentration underflows to zero and the normalisation gives NaN. Rewards are U[0, 1) per
``(s, a)`` and deterministic. Episodes start in state 0 and last ``horizon`` steps.

The exact value of a softmax policy with logits θ is the linear solve
``V = solve(I − γ P_π, r_π)`` with ``P_π[s, s'] = Σ_a π(a|s) P(s'|s, a)`` and
``r_π[s] = Σ_a π(a|s) R(s, a)``; ``J(θ) = V(s0)``. Exact gradients, Hessians and K-step
meta-gradients are autodiff through that solve.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._linalg import solve
from .._typing import BoolScalar, FloatScalar, IntScalar, PRNGKeyArray
from ._base import AbstractEnvironment, ObsSpec

__all__ = ["MDP", "MDPState", "MDPTrajectory", "TabularMDP"]


class MDP(eqx.Module):
    """One tabular MDP (the level of a `TabularMDP`).

    ``transitions[s, a, s']`` = P(s'|s, a); ``rewards[s, a]`` = R(s, a).
    """

    transitions: Float[Array, "S A S"]
    rewards: Float[Array, "S A"]


class MDPState(eqx.Module):
    """The current state index and the time step within the episode."""

    state: Int[Array, ""]
    time: Int[Array, ""]


class MDPTrajectory(eqx.Module):
    """A batch of ``N`` trajectories of length ``T`` from the start state.

    ``states`` has ``T + 1`` entries per trajectory: the last is the state the final transition
    reached, which the estimators bootstrap from.
    """

    actions: Int[Array, "N T"]
    rewards: Float[Array, "N T"]
    states: Int[Array, "N T+1"]


class TabularMDP(AbstractEnvironment[MDP, MDPState]):
    """Random tabular MDPs (20 states, 5 actions, γ 0.8, horizon 20 by default).

    The observation is the state index. `step` resets automatically after ``horizon`` steps.
    """

    num_states: int = eqx.field(static=True, default=20)
    num_actions: int = eqx.field(static=True, default=5)
    gamma: float = eqx.field(static=True, default=0.8)
    horizon: int = eqx.field(static=True, default=20)
    concentration: float = eqx.field(static=True, default=0.001)
    start_state: int = eqx.field(static=True, default=0)

    def __check_init__(self) -> None:
        if self.num_states < 1 or self.num_actions < 1 or self.horizon < 1:
            raise ValueError(
                f"TabularMDP needs num_states, num_actions and horizon >= 1, got "
                f"{self.num_states}, {self.num_actions}, {self.horizon}"
            )
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"TabularMDP needs 0 <= gamma < 1, got {self.gamma}")
        if not 0 <= self.start_state < self.num_states:
            raise ValueError(
                f"start_state {self.start_state} is not a state; choose 0..{self.num_states - 1}"
            )

    @property
    def obs_spec(self) -> ObsSpec:
        """The state index (a tabular agent looks it up)."""
        return ObsSpec.index(self.num_states)

    def sample_level(self, key: PRNGKeyArray) -> MDP:
        """Draw an MDP: Dirichlet(concentration) transitions, U[0, 1) rewards."""
        k_p, k_r = jax.random.split(key)
        s, a = self.num_states, self.num_actions
        # Gamma(α) = exp(loggamma(α)); normalising in log space never divides 0 by 0.
        log_gamma = jax.random.loggamma(k_p, self.concentration, (s, a, s))
        transitions = jnp.exp(jax.nn.log_softmax(log_gamma, axis=-1))
        rewards = jax.random.uniform(k_r, (s, a))
        return MDP(transitions=transitions, rewards=rewards)

    def reset(self, key: PRNGKeyArray, level: MDP) -> tuple[MDPState, Int[Array, ""]]:
        """Start in the start state; the key is unused (the start is fixed)."""
        del key, level
        state = MDPState(
            state=jnp.asarray(self.start_state, jnp.int32), time=jnp.asarray(0, jnp.int32)
        )
        return state, state.state

    def step(
        self, key: PRNGKeyArray, level: MDP, state: MDPState, action: IntScalar
    ) -> tuple[MDPState, Int[Array, ""], FloatScalar, BoolScalar]:
        """One transition; after ``horizon`` steps the returned state is the start state."""
        next_state = self._transition(key, level, state.state, action)
        reward = level.rewards[state.state, action]
        time = state.time + 1
        done = time >= self.horizon
        new = MDPState(
            state=jnp.where(done, jnp.asarray(self.start_state, jnp.int32), next_state),
            time=jnp.where(done, jnp.asarray(0, jnp.int32), time),
        )
        return new, new.state, reward, done

    def _transition(
        self, key: PRNGKeyArray, level: MDP, state: IntScalar, action: IntScalar
    ) -> Int[Array, ""]:
        # log(0) = -inf is never drawn by the Gumbel-max trick inside `categorical`.
        return jax.random.categorical(key, jnp.log(level.transitions[state, action])).astype(
            jnp.int32
        )

    def policy_matrices(
        self,
        level: MDP,
        logits: Float[Array, "S A"],
        rewards: Float[Array, "S A"] | None = None,
    ) -> tuple[Float[Array, "S S"], Float[Array, " S"]]:
        """``(P_π, r_π)`` of the softmax policy; `rewards` replaces the MDP's own if given."""
        pi = jax.nn.softmax(logits, axis=-1)
        r = level.rewards if rewards is None else rewards
        p_pi = jnp.einsum("sa,sat->st", pi, level.transitions)
        r_pi = jnp.sum(pi * r, axis=-1)
        return p_pi, r_pi

    def values(
        self,
        level: MDP,
        logits: Float[Array, "S A"],
        rewards: Float[Array, "S A"] | None = None,
    ) -> Float[Array, " S"]:
        """Exact ``V^π = solve(I − γ P_π, r_π)``, differentiable in `logits` and `rewards`."""
        p_pi, r_pi = self.policy_matrices(level, logits, rewards)
        eye = jnp.eye(self.num_states, dtype=p_pi.dtype)
        return solve(eye - self.gamma * p_pi, r_pi)

    def objective(
        self,
        level: MDP,
        logits: Float[Array, "S A"],
        rewards: Float[Array, "S A"] | None = None,
    ) -> FloatScalar:
        """Exact ``J(θ) = V^π(s0)`` (under `rewards` if given)."""
        return self.values(level, logits, rewards)[self.start_state]

    def sample_trajectories(
        self, key: PRNGKeyArray, level: MDP, logits: Float[Array, "S A"], num: int
    ) -> MDPTrajectory:
        """`num` independent trajectories of length ``horizon`` from the start state.

        Sampling never carries gradients: the logits are the behaviour policy μ.
        """
        logits = jax.lax.stop_gradient(logits)

        def one(key: PRNGKeyArray) -> tuple[Array, Array, Array]:
            def body(
                s: IntScalar, key: PRNGKeyArray
            ) -> tuple[IntScalar, tuple[IntScalar, IntScalar, FloatScalar]]:
                k_a, k_s = jax.random.split(key)
                a = jax.random.categorical(k_a, logits[s]).astype(jnp.int32)
                s_next = self._transition(k_s, level, s, a)
                return s_next, (s, a, level.rewards[s, a])

            s0 = jnp.asarray(self.start_state, jnp.int32)
            s_last, (states, actions, rewards) = jax.lax.scan(
                body, s0, jax.random.split(key, self.horizon)
            )
            return jnp.concatenate([states, s_last[None]]), actions, rewards

        states, actions, rewards = jax.vmap(one)(jax.random.split(key, num))
        return MDPTrajectory(states=states, actions=actions, rewards=rewards)
