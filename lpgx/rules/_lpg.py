"""The Learned Policy Gradient (Oh et al. 2020), with TA-LPG's lifetime conditioning.

Per time step the LPG reads ``[r, d, γ, π(a|s), φ(y_t), φ(y_{t+1})·(1−d)]`` (plus ``n/N`` and
``log N`` when lifetime-conditioned), runs a recurrent core *backwards in time* with its carry reset
at episode ends, and emits ``π̂`` (unbounded) and ``ŷ`` (a distribution over ``y_size``). The agent
minimises ``−mean(π̂ · log π(a|s)) + α_y · mean KL(y ‖ ŷ)`` (the paper's ascent convention; the
GROOVE reference descends on ``+π̂ · log π``). The LPG's inputs are computed from the current
parameters passed in `LifetimeContext.agent`, so they are constants for the agent's gradient, yet
the meta-gradient sees how earlier updates changed them (the reference stop-gradients them instead,
which makes its meta-gradient differ from the true derivative once K > 1).
"""

from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .._typing import PRNGKeyArray, Scalar
from ..agents import Agent, Trajectory
from ._base import AbstractUpdateRule, LifetimeContext
from ._returns import entropy

__all__ = ["LPG", "LPGConfig"]

_lecun = jax.nn.initializers.lecun_normal()
_orthogonal = jax.nn.initializers.orthogonal()
_EPS = 1e-8


def _flax_like_linear(lin: eqx.nn.Linear, key: PRNGKeyArray) -> eqx.nn.Linear:
    """Lecun-normal weights and zero bias (Flax's Dense default, as in the reference)."""
    weight = _lecun(key, (lin.out_features, lin.in_features), jnp.float32)
    bias = jnp.zeros(lin.out_features, jnp.float32)
    return eqx.tree_at(lambda m: (m.weight, m.bias), lin, (weight, bias))


def _init_recurrent(
    cell: eqx.nn.GRUCell | eqx.nn.LSTMCell, key: PRNGKeyArray, gates: int
) -> eqx.Module:
    """Lecun-normal input kernels, orthogonal recurrent kernels (per gate), zero biases."""
    k_in, k_rec = jax.random.split(key)
    hidden, inputs = cell.hidden_size, cell.input_size
    w_ih = jnp.concatenate(
        [_lecun(k, (hidden, inputs), jnp.float32) for k in jax.random.split(k_in, gates)]
    )
    w_hh = jnp.concatenate(
        [_orthogonal(k, (hidden, hidden), jnp.float32) for k in jax.random.split(k_rec, gates)]
    )
    cell = eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh), cell, (w_ih, w_hh))
    if cell.bias is not None:
        cell = eqx.tree_at(lambda c: c.bias, cell, jnp.zeros_like(cell.bias))
    if isinstance(cell, eqx.nn.GRUCell) and cell.bias_n is not None:
        cell = eqx.tree_at(lambda c: c.bias_n, cell, jnp.zeros_like(cell.bias_n))
    return cell


@dataclass(frozen=True)
class LPGConfig:
    """The LPG network (reference defaults: backward GRU of 256 units, y of size 8) and the
    regularisers a meta-gradient adds to its outer loss (the LPG paper's β₀…β₃)."""

    y_size: int = 8
    hidden: int = 256
    core: Literal["gru", "lstm"] = "gru"
    embedding_width: int = 16
    lifetime_conditioning: bool = False
    gamma: float = 0.99
    y_coeff: float = 0.5
    dtype: Literal["float32", "bfloat16"] = "float32"
    policy_entropy_coeff: float = 5e-2
    y_entropy_coeff: float = 1e-3
    policy_l2_coeff: float = 5e-3
    y_l2_coeff: float = 1e-3

    def __post_init__(self) -> None:
        problems = []
        if min(self.y_size, self.hidden, self.embedding_width) < 1:
            problems.append(
                "y_size, hidden and embedding_width must be at least 1, got "
                f"{self.y_size}, {self.hidden} and {self.embedding_width}"
            )
        if self.core not in ("gru", "lstm"):
            problems.append(f"core must be gru or lstm, got {self.core!r}")
        if self.dtype not in ("float32", "bfloat16"):
            problems.append(f"dtype must be float32 or bfloat16, got {self.dtype!r}")
        if not 0.0 <= self.gamma <= 1.0:
            problems.append(f"gamma must lie in [0, 1], got {self.gamma}")
        if problems:
            raise ValueError("invalid LPG config: " + "; ".join(problems))

    def build(self, key: PRNGKeyArray) -> "LPG":
        """A freshly initialised LPG with these settings."""
        return LPG(key=key, **{f: getattr(self, f) for f in self.__dataclass_fields__})


class LPG(AbstractUpdateRule):
    """The LPG update rule; its arrays (φ, the recurrent core, the heads) are η.

    **Arguments:** ``y_size`` — prediction-vector size (8; the paper uses 30); ``hidden`` —
    recurrent width (256); ``core`` — ``"gru"`` (reference) or ``"lstm"`` (paper);
    ``embedding_width`` — φ's hidden width (16); ``lifetime_conditioning`` — TA-LPG inputs ``n/N``
    and ``log N``; ``gamma`` — the discount fed to the LPG as an input (as in the LPG paper; the
    GROOVE reference feeds none); ``y_coeff`` — α_y, the KL weight (0.5); ``policy_entropy_coeff``,
    ``y_entropy_coeff``, ``policy_l2_coeff``, ``y_l2_coeff`` — β₀…β₃ of `meta_regulariser`;
    ``dtype`` — compute dtype of the recurrent core (a GPU speed knob): ``"float32"`` (reference)
    runs it in the parameters' own dtype, with no casts; ``"bfloat16"`` casts the core's inputs,
    weights and carry to bfloat16 for the scan over time and its outputs back to the inputs' dtype
    before the heads. The parameters stay float32 either way (so do their gradients, the
    meta-optimiser and checkpoints).
    """

    phi: eqx.nn.MLP
    cell: eqx.nn.GRUCell | eqx.nn.LSTMCell
    pi_head: eqx.nn.Linear
    y_head: eqx.nn.Linear
    aux_size: int = eqx.field(static=True)  # pyright: ignore[reportIncompatibleVariableOverride]
    core: Literal["gru", "lstm"] = eqx.field(static=True)
    lifetime_conditioning: bool = eqx.field(static=True)
    gamma: float = eqx.field(static=True)
    y_coeff: float = eqx.field(static=True)
    dtype: Literal["float32", "bfloat16"] = eqx.field(static=True)
    policy_entropy_coeff: float = eqx.field(static=True)
    y_entropy_coeff: float = eqx.field(static=True)
    policy_l2_coeff: float = eqx.field(static=True)
    y_l2_coeff: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        key: PRNGKeyArray,
        y_size: int = 8,
        hidden: int = 256,
        core: Literal["gru", "lstm"] = "gru",
        embedding_width: int = 16,
        lifetime_conditioning: bool = False,
        gamma: float = 0.99,
        y_coeff: float = 0.5,
        dtype: Literal["float32", "bfloat16"] = "float32",
        policy_entropy_coeff: float = 5e-2,
        y_entropy_coeff: float = 1e-3,
        policy_l2_coeff: float = 5e-3,
        y_l2_coeff: float = 1e-3,
    ):
        if core not in ("gru", "lstm"):
            raise ValueError(f"core must be 'gru' or 'lstm', got {core!r}")
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
        if y_size < 1 or hidden < 1:
            raise ValueError(f"y_size and hidden must be positive, got {y_size} and {hidden}")
        k_phi, k_cell, k_pi, k_y = jax.random.split(key, 4)
        phi = eqx.nn.MLP(y_size, 1, embedding_width, depth=1, activation=jax.nn.relu, key=k_phi)
        self.phi = eqx.tree_at(
            lambda m: m.layers,
            phi,
            tuple(
                _flax_like_linear(lin, k)
                for lin, k in zip(phi.layers, jax.random.split(k_phi, len(phi.layers)), strict=True)
            ),
        )
        n_inputs = 6 + 2 * int(lifetime_conditioning)
        if core == "gru":
            self.cell = _init_recurrent(eqx.nn.GRUCell(n_inputs, hidden, key=k_cell), k_cell, 3)  # pyright: ignore[reportAttributeAccessIssue]
        else:
            self.cell = _init_recurrent(eqx.nn.LSTMCell(n_inputs, hidden, key=k_cell), k_cell, 4)  # pyright: ignore[reportAttributeAccessIssue]
        self.pi_head = _flax_like_linear(eqx.nn.Linear(hidden, 1, key=k_pi), k_pi)
        self.y_head = _flax_like_linear(eqx.nn.Linear(hidden, y_size, key=k_y), k_y)
        self.aux_size = y_size
        self.core = core
        self.lifetime_conditioning = lifetime_conditioning
        self.gamma = gamma
        self.y_coeff = y_coeff
        self.dtype = dtype
        self.policy_entropy_coeff = policy_entropy_coeff
        self.y_entropy_coeff = y_entropy_coeff
        self.policy_l2_coeff = policy_l2_coeff
        self.y_l2_coeff = y_l2_coeff

    @property
    def y_size(self) -> int:
        return self.aux_size

    def features(
        self,
        reward: Float[Array, "T W"],
        done: Bool[Array, "T W"],
        pi_taken: Float[Array, "T W"],
        y: Float[Array, "T+1 W Y"],
        ctx: LifetimeContext,
    ) -> Float[Array, "T W F"]:
        """The per-step LPG inputs (see the module docstring)."""
        dtype = y.dtype
        d = done.astype(dtype)
        reward = reward.astype(dtype)
        phi_y = jax.vmap(jax.vmap(self.phi))(y)[..., 0]
        cols = [
            reward,
            d,
            jnp.full_like(reward, self.gamma),
            pi_taken,
            phi_y[:-1],
            phi_y[1:] * (1.0 - d),
        ]
        if self.lifetime_conditioning:
            lifetime = jnp.maximum(ctx.lifetime, 1).astype(dtype)
            cols.append(jnp.full_like(reward, ctx.step.astype(dtype) / lifetime))
            cols.append(jnp.full_like(reward, jnp.log(lifetime)))
        return jnp.stack(cols, axis=-1)

    def __call__(
        self, x: Float[Array, "T W F"], done: Bool[Array, "T W"]
    ) -> tuple[Float[Array, "T W"], Float[Array, "T W Y"]]:
        """Run the core backwards over time: ``(π̂, ŷ)``."""
        out_dtype = x.dtype
        cell = self.cell
        if self.dtype == "bfloat16":
            # A bfloat16 copy of the cell for the scan only; the float32 parameters receive
            # float32 gradients through the casts.
            cell = jax.tree.map(
                lambda a: a.astype(jnp.bfloat16) if eqx.is_inexact_array(a) else a, cell
            )
            x = x.astype(jnp.bfloat16)
        zeros = jnp.zeros((x.shape[1], cell.hidden_size), x.dtype)

        def reset(c: Array, d_t: Bool[Array, " W"]) -> Array:
            # The carry holds the future of this trajectory; an episode end at t cuts it.
            return jnp.where(d_t[:, None], 0.0, c)

        if isinstance(cell, eqx.nn.GRUCell):
            gru = jax.vmap(cell)

            def back_gru(h: Array, inp: tuple[Array, Array]) -> tuple[Array, Array]:
                h = gru(inp[0], reset(h, inp[1]))
                return h, h

            _, h = jax.lax.scan(back_gru, zeros, (x, done), reverse=True)
        else:
            lstm = jax.vmap(cell)

            def back_lstm(
                hc: tuple[Array, Array], inp: tuple[Array, Array]
            ) -> tuple[tuple[Array, Array], Array]:
                hc = lstm(inp[0], (reset(hc[0], inp[1]), reset(hc[1], inp[1])))
                return hc, hc[0]

            _, h = jax.lax.scan(back_lstm, (zeros, zeros), (x, done), reverse=True)
        h = jax.nn.relu(h.astype(out_dtype))
        pi_hat = jax.vmap(jax.vmap(self.pi_head))(h)[..., 0]
        y_hat = jax.nn.softmax(jax.vmap(jax.vmap(self.y_head))(h), axis=-1)
        return pi_hat, y_hat

    def agent_loss(
        self, agent: Agent, traj: Trajectory, ctx: LifetimeContext
    ) -> tuple[Scalar, dict[str, Scalar]]:
        obs = traj.all_obs()
        logits, y_logits = jax.vmap(jax.vmap(agent))(obs)
        logp = jnp.take_along_axis(
            jax.nn.log_softmax(logits[:-1]), traj.action[..., None], axis=-1
        )[..., 0]
        y = jax.nn.softmax(y_logits, axis=-1)
        # The LPG's inputs come from the current parameters in `ctx`, constants for the agent.
        ref_logits, ref_y_logits = jax.vmap(jax.vmap(ctx.agent))(obs)
        ref_logp = jnp.take_along_axis(
            jax.nn.log_softmax(ref_logits[:-1]), traj.action[..., None], axis=-1
        )[..., 0]
        x = self.features(
            traj.reward,
            traj.done,
            jnp.exp(ref_logp) + _EPS,
            jax.nn.softmax(ref_y_logits, axis=-1),
            ctx,
        )
        pi_hat, y_hat = self(x, traj.done)
        y_t = y[:-1]
        kl = jnp.sum(y_t * (jnp.log(y_t + _EPS) - jnp.log(y_hat + _EPS)), axis=-1)
        policy_loss = -jnp.mean(pi_hat * ctx.log_prob_term(logp))
        y_loss = jnp.mean(kl)
        loss = policy_loss + self.y_coeff * y_loss
        return loss, {
            "policy_loss": policy_loss,
            "y_kl": y_loss,
            "pi_hat_l2": jnp.mean(pi_hat**2),
            "y_hat_l2": jnp.mean(jnp.sum(y_hat**2, axis=-1)),
            "policy_entropy": jnp.mean(entropy(logits[:-1])),
            "y_entropy": jnp.mean(entropy(y_logits[:-1])),
        }

    def meta_regulariser(
        self, agent: Agent, traj: Trajectory, diagnostics: dict[str, Scalar]
    ) -> Scalar:
        """−β₀·H(π) − β₁·H(y) of the updated agent on the update's states, plus
        β₂·mean(π̂²) + β₃·mean(Σŷ²) of the update (the LPG paper's regularisers)."""
        logits, y_logits = jax.vmap(jax.vmap(agent))(traj.obs)
        return (
            -self.policy_entropy_coeff * jnp.mean(entropy(logits))
            - self.y_entropy_coeff * jnp.mean(entropy(y_logits))
            + self.policy_l2_coeff * diagnostics["pi_hat_l2"]
            + self.y_l2_coeff * diagnostics["y_hat_l2"]
        )
