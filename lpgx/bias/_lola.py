"""LOLA-DiCE on the iterated prisoner's dilemma: sampled meta-gradients against the exact one.

LOLA (Foerster et al. 2018, Learning with Opponent-Learning Awareness) treats the opponent's next
learning step as a function of one's own parameters: player ``i`` looks ahead one plain gradient
step of the opponent, ``θ_o' = θ_o − α_in ∇_{θ_o} L_o(θ_o, θ_i)``, keeping its dependence on the
live ``θ_i`` (the LOLA term), and takes an Adam step on its own loss ``L_i(θ_i, θ_o'(θ_i))``. In the
meta-gradient framework of the gradient-bias paper, φ = ``θ_i`` and the inner step is the
opponent's. The IPD has an exact value (`IteratedPrisonersDilemma.exact_value`), so the exact
meta-gradient is autodiff through two exact steps, and at every iteration each sampled meta-gradient
is compared with it (Pearson correlation over the 5 parameters, averaged over both players).

Three pieces of the meta-gradient can each be exact or sampled (`Estimate`):

- the inner *compositional* piece — where the opponent's lookahead lands (`LolaConfig.inner`);
- the inner *Hessian* piece — the derivative of the lookahead w.r.t. the live ``θ_i``
  (`LolaConfig.hessian`; when ``None`` it comes from the same batch as the forward value). A
  separate Hessian batch is joined with the straight-through trick
  ``θ_o' = stop_gradient(θ_o + α g_comp) + (θ_h − stop_gradient(θ_h))``;
- the *outer* piece — the gradient of the player's own loss at the lookahead (`LolaConfig.outer`).

Sampled pieces use DiCE (`dice_objective`) on a fresh on-policy batch (with or without the
baseline term) or, for the inner pieces, off-policy DiCE (`off_policy_dice_objective`) on a FIFO
replay buffer of trajectories (`Estimate.kind`).

`LOLA_VARIANTS` holds the reference's 11 runs by name. The two off-policy ablations are named by
what they do (`off_policy_comp_on_policy`: on-policy compositional piece, off-policy Hessian;
`off_policy_hessian_on_policy`: the reverse); the reference's README calls the
``--comp_on_policy`` run "off_comp_on_hessian" and the ``--hessian_on_policy`` run
"on_comp_off_hessian", which is swapped against what its flags do.

Everything runs under `jit`: one iteration is a pure function of a `LolaState`, a run of
`LolaConfig.iterations` iterations is one `lax.scan`, and all seeds of a variant are one `vmap`
(`run_lola`). Both players' meta-gradients are one `vmap` over the two perspectives (player 1's
perspective is the same game with the player axis swapped).
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PyTree

from .._typing import FloatScalar, IntScalar, PRNGKeyArray
from ..envs import IPDTrajectory, IteratedPrisonersDilemma
from ._dice import dice_objective, off_policy_dice_objective, value_loss

__all__ = [
    "LOLA_VARIANTS",
    "Estimate",
    "LolaConfig",
    "LolaMetrics",
    "LolaState",
    "compile_lola",
    "exact_lola_meta_gradient",
    "get_lola_variant",
    "lola_init",
    "lola_iteration",
    "pearson",
    "run_lola",
]


@dataclasses.dataclass(frozen=True)
class Estimate:
    """How one piece of the LOLA meta-gradient is estimated.

    **Arguments:**

    - `kind`: ``"exact"`` (autodiff of the exact value), ``"dice"`` (DiCE on a fresh on-policy
      batch) or ``"off_policy"`` (off-policy DiCE on the replay buffer, inner pieces only).
    - `batch_size`: trajectories of the fresh batch (for ``"off_policy"``: the batch appended to
      the buffer before the loss is evaluated on the whole buffer). Unused by ``"exact"``.
    - `baseline`: include DiCE's baseline (variance-reduction) term.
    """

    kind: Literal["exact", "dice", "off_policy"] = "dice"
    batch_size: int = 128
    baseline: bool = True


@dataclasses.dataclass(frozen=True)
class LolaConfig:
    """One LOLA-DiCE variant; defaults are the reference's (Theoretical-GMRL's ``lola/``).

    **Arguments:**

    - `inner`: the inner compositional piece (and the Hessian piece when `hessian` is ``None``).
    - `hessian`: a separately estimated Hessian piece (the straight-through ablation), or ``None``.
    - `outer`: the outer piece (``"exact"`` or ``"dice"``). With ``"exact"`` an outer batch is
      still sampled, because the value tables learn from it.
    - `score_batch_size`: trajectories of the rollout that measures the joint return.
    - `lr_in`: the opponent's plain gradient step in the lookahead.
    - `lr_out`: Adam learning rate of each player's own θ.
    - `lr_v`: Adam learning rate of the value tables.
    - `gamma`: discount of the DiCE losses and the exact value.
    - `rollout_length`: rounds per trajectory.
    - `iterations`: LOLA iterations per run (one lookahead each, as the reference).
    - `buffer_size`: trajectories in the off-policy replay buffer (a multiple of the off-policy
      batch size), filled from the initial policies before the first iteration.
    - `description`: a one-line description for tables and plots.
    """

    inner: Estimate = Estimate()
    hessian: Estimate | None = None
    outer: Estimate = Estimate()
    score_batch_size: int = 128
    lr_in: float = 0.3
    lr_out: float = 0.1
    lr_v: float = 0.1
    gamma: float = 0.96
    rollout_length: int = 100
    iterations: int = 500
    buffer_size: int = 1024
    description: str = ""

    @property
    def uses_buffer(self) -> bool:
        pieces = (self.inner, self.hessian)
        return any(p is not None and p.kind == "off_policy" for p in pieces)

    def validate(self) -> "LolaConfig":
        """Raise a `ValueError` naming the fix for an inconsistent config; return `self`."""
        if self.outer.kind == "off_policy":
            raise ValueError(
                "the outer piece cannot be off-policy (the reference keeps it on-policy); "
                "use Estimate('dice') or Estimate('exact') for `outer`"
            )
        for name, est in (("inner", self.inner), ("hessian", self.hessian), ("outer", self.outer)):
            if est is None:
                continue
            if est.kind not in ("exact", "dice", "off_policy"):
                raise ValueError(
                    f"{name}.kind must be 'exact', 'dice' or 'off_policy', got {est.kind!r}"
                )
            if est.kind != "exact" and est.batch_size < 1:
                raise ValueError(f"{name}.batch_size must be at least 1, got {est.batch_size}")
            if est.kind == "off_policy" and self.buffer_size % est.batch_size != 0:
                raise ValueError(
                    f"buffer_size {self.buffer_size} must be a multiple of {name}.batch_size "
                    f"{est.batch_size} (the FIFO buffer is filled and replaced batch by batch)"
                )
        if self.score_batch_size < 1:
            raise ValueError(f"score_batch_size must be at least 1, got {self.score_batch_size}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if self.rollout_length < 1:
            raise ValueError(f"rollout_length must be at least 1, got {self.rollout_length}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma}")
        return self

    def env(self) -> IteratedPrisonersDilemma:
        return IteratedPrisonersDilemma(rollout_length=self.rollout_length, gamma=self.gamma)


_EXACT = Estimate("exact")
_DICE_128 = Estimate("dice", 128)
_DICE_1024 = Estimate("dice", 1024)
_OFF_POLICY = Estimate("off_policy", 128)
_ON_POLICY_NO_BASELINE = Estimate("dice", 128, baseline=False)

LOLA_VARIANTS: dict[str, LolaConfig] = {
    # lola_dice_original.py: the score rollout uses the inner batch size (128 when exact).
    "original_128_128": LolaConfig(description="LOLA-DiCE, inner 128, outer 128"),
    "original_exact_128": LolaConfig(inner=_EXACT, description="inner exact, outer 128"),
    "original_1024_128": LolaConfig(
        inner=_DICE_1024, score_batch_size=1024, description="inner 1024, outer 128"
    ),
    "original_exact_exact": LolaConfig(
        inner=_EXACT, outer=_EXACT, description="inner exact, outer exact"
    ),
    # lola_dice_ablation.py: forward value (comp) 128 and Hessian 128 unless named otherwise.
    "ablation_hessian_1024": LolaConfig(
        hessian=_DICE_1024, description="comp 128, Hessian 1024, outer 128"
    ),
    "ablation_hessian_exact": LolaConfig(
        hessian=_EXACT, description="comp 128, Hessian exact, outer 128"
    ),
    "ablation_comp_exact": LolaConfig(
        inner=_EXACT, hessian=_DICE_128, description="comp exact, Hessian 128, outer 128"
    ),
    "ablation_comp_1024": LolaConfig(
        inner=_DICE_1024, hessian=_DICE_128, description="comp 1024, Hessian 128, outer 128"
    ),
    # lola_dice_off_policy.py and its ablation. The reference's README calls the
    # --comp_on_policy run "off_comp_on_hessian" and the --hessian_on_policy run
    # "on_comp_off_hessian"; by the flags' code those names are swapped, so these are named by
    # what they do.
    "off_policy": LolaConfig(
        inner=_OFF_POLICY, description="off-policy DiCE inner (buffer 1024), outer 128"
    ),
    "off_policy_comp_on_policy": LolaConfig(
        inner=_ON_POLICY_NO_BASELINE,
        hessian=_OFF_POLICY,
        description="comp on-policy 128 (no baseline), Hessian off-policy",
    ),
    "off_policy_hessian_on_policy": LolaConfig(
        inner=_OFF_POLICY,
        hessian=_ON_POLICY_NO_BASELINE,
        description="comp off-policy, Hessian on-policy 128 (no baseline)",
    ),
}


def get_lola_variant(name: str) -> LolaConfig:
    """The registered variant `name` (see `LOLA_VARIANTS`), validated."""
    if name not in LOLA_VARIANTS:
        raise ValueError(
            f"unknown LOLA variant {name!r}; choose one of: {', '.join(LOLA_VARIANTS)}"
        )
    return LOLA_VARIANTS[name].validate()


# --- metrics ------------------------------------------------------------------------------------


def pearson(x: Float[Array, " n"], y: Float[Array, " n"]) -> FloatScalar:
    """Pearson correlation (mean-centred cosine) of two vectors; 0 when either is constant."""
    xc = x - jnp.mean(x)
    yc = y - jnp.mean(y)
    denominator = jnp.sqrt(jnp.sum(xc * xc) * jnp.sum(yc * yc))
    safe = jnp.where(denominator > 0.0, denominator, 1.0)
    return jnp.where(denominator > 0.0, jnp.sum(xc * yc) / safe, 0.0)


# --- one LOLA iteration ---------------------------------------------------------------------


class LolaState(eqx.Module):
    """Both players' parameters, value tables, Adam states and the replay buffer of one run.

    Row ``i`` of `thetas` / `values` is player ``i``'s. The buffer (``None`` when no piece is
    off-policy) holds trajectories in player 0's frame; `buffer_ptr` is the FIFO write position.
    """

    thetas: Float[Array, "2 5"]
    values: Float[Array, "2 5"]
    theta_opt: PyTree[Array]
    value_opt: PyTree[Array]
    buffer: IPDTrajectory | None
    buffer_ptr: Int[Array, ""]


class LolaMetrics(eqx.Module):
    """What one iteration records (each averaged over the two players).

    - `joint_return`: mean reward per step of a score rollout with the updated policies
      (−2 mutual defection … −1 mutual cooperation).
    - `corr`: Pearson correlation of the sampled meta-gradient (the one Adam used) with the exact
      meta-gradient (exact inner and exact outer at the same parameters).
    - `corr_outer_exact`: the same for the exact outer gradient taken at the *sampled*
      lookahead (differentiated through it); equal to `corr` when the outer piece is exact.
    - `exact_return`: ``(1 − γ) · V`` of the updated policies (the exact counterpart of
      `joint_return`, discounted).
    """

    joint_return: Float[Array, "*runs"]
    corr: Float[Array, "*runs"]
    corr_outer_exact: Float[Array, "*runs"]
    exact_return: Float[Array, "*runs"]


def _optimisers(config: LolaConfig) -> tuple[optax.GradientTransformation, ...]:
    return optax.adam(config.lr_out), optax.adam(config.lr_v)


def lola_init(config: LolaConfig, key: PRNGKeyArray) -> LolaState:
    """Zero parameters and value tables (uniform policies), fresh Adam states, and — when a
    piece is off-policy — a buffer of `buffer_size` trajectories from the initial policies."""
    theta_optimiser, value_optimiser = _optimisers(config)
    thetas = jnp.zeros((2, 5), jnp.float32)
    values = jnp.zeros((2, 5), jnp.float32)
    buffer = None
    if config.uses_buffer:
        buffer = config.env().rollout(key, thetas, config.buffer_size)
    return LolaState(
        thetas=thetas,
        values=values,
        theta_opt=theta_optimiser.init(thetas),
        value_opt=value_optimiser.init(values),
        buffer=buffer,
        buffer_ptr=jnp.zeros((), jnp.int32),
    )


def _push(
    buffer: IPDTrajectory, ptr: IntScalar, batch: IPDTrajectory
) -> tuple[IPDTrajectory, IntScalar]:
    """Overwrite the oldest ``len(batch)`` trajectories (FIFO; the size is a multiple)."""
    size, n = buffer.rewards.shape[0], batch.rewards.shape[0]
    zero = jnp.zeros((), jnp.int32)
    new = jax.tree.map(
        lambda b, x: jax.lax.dynamic_update_slice(b, x, (ptr, zero, zero)), buffer, batch
    )
    return new, (ptr + n) % size


def _inner_data(
    est: Estimate,
    config: LolaConfig,
    key: PRNGKeyArray,
    thetas: Float[Array, "2 5"],
    buffer: IPDTrajectory | None,
    ptr: IntScalar,
) -> tuple[IPDTrajectory | None, IPDTrajectory | None, IntScalar]:
    """Trajectories for one inner piece of both perspectives, in the *opponent's* frame.

    Entry ``i`` of the leading axis serves player ``i``'s lookahead, i.e. the loss of player
    ``1 − i``. On-policy pieces get a fresh batch each; an off-policy piece appends one fresh
    batch per perspective to the buffer (player 0's lookahead first, as the reference orders
    its two inner losses) and each perspective sees the buffer right after its own batch went in.

    **Returns:** `(data, buffer, ptr)`; `data` is ``None`` for an exact piece.
    """
    env = config.env()
    if est.kind == "exact":
        return None, buffer, ptr
    if est.kind == "dice":
        # Opponent frame: player 1 first for perspective 0, player 0 first for perspective 1.
        frames = jnp.stack([jnp.flip(thetas, 0), thetas])
        data = jax.vmap(lambda k, t: env.rollout(k, t, est.batch_size))(
            jax.random.split(key, 2), frames
        )
        return data, buffer, ptr
    if buffer is None:
        raise ValueError("an off-policy piece needs the replay buffer (see LolaConfig.uses_buffer)")
    k0, k1 = jax.random.split(key)
    after_0, ptr = _push(buffer, ptr, env.rollout(k0, thetas, est.batch_size))
    after_1, ptr = _push(after_0, ptr, env.rollout(k1, thetas, est.batch_size))
    data = jax.tree.map(lambda a, b: jnp.stack([a, b]), after_0.swap(), after_1)
    return data, after_1, ptr


def _opponent_gradient(
    est: Estimate,
    config: LolaConfig,
    theta_opp: Float[Array, "5"],
    theta_self: Float[Array, "5"],
    value_opp: Float[Array, "5"],
    data: IPDTrajectory | None,
) -> Float[Array, "5"]:
    """``∇_{θ_o} L_o(θ_o, θ_self)``, kept differentiable in the live `theta_self`."""
    env = config.env()

    def loss(theta_o: Float[Array, "5"]) -> FloatScalar:
        if est.kind == "exact" or data is None:
            return -env.exact_value(theta_o, theta_self)
        pair = jnp.stack([theta_o, theta_self])
        if est.kind == "dice":
            return dice_objective(data, pair, value_opp, config.gamma, est.baseline)
        return off_policy_dice_objective(data, pair, value_opp, config.gamma, est.baseline)

    return jax.grad(loss)(theta_opp)


def exact_lola_meta_gradient(
    config: LolaConfig, theta_self: Float[Array, "5"], theta_opp: Float[Array, "5"]
) -> Float[Array, "5"]:
    """The exact LOLA meta-gradient of player 0: ``d/dθ [−V(θ, θ_o − α_in ∇_{θ_o}(−V_o))]``."""
    env = config.env()

    def meta_loss(theta: Float[Array, "5"]) -> FloatScalar:
        grad_opp = jax.grad(lambda t: -env.exact_value(t, theta))(theta_opp)
        return -env.exact_value(theta, theta_opp - config.lr_in * grad_opp)

    return jax.grad(meta_loss)(theta_self)


def _perspective(
    config: LolaConfig,
    thetas: Float[Array, "2 5"],
    values: Float[Array, "2 5"],
    comp_data: IPDTrajectory | None,
    hess_data: IPDTrajectory | None,
    key: PRNGKeyArray,
) -> tuple[Float[Array, "5"], Float[Array, "5"], Float[Array, "5"], Float[Array, "5"]]:
    """Player 0's sampled meta-gradient, exact outer gradient at the sampled lookahead, exact
    meta-gradient and value-table gradient (`thetas`/`values` in player 0's frame)."""
    env = config.env()
    theta_opp = jax.lax.stop_gradient(thetas[1])
    value_opp = jax.lax.stop_gradient(values[1])
    value_self = values[0]

    def losses(theta_self: Float[Array, "5"]) -> tuple[Float[Array, "2"], IPDTrajectory]:
        # With a separate Hessian piece only the value of the compositional step is used, so its
        # gradient is taken at a constant θ_self (no second-order work for it).
        comp_self = theta_self if config.hessian is None else jax.lax.stop_gradient(theta_self)
        grad_comp = _opponent_gradient(
            config.inner, config, theta_opp, comp_self, value_opp, comp_data
        )
        lookahead = theta_opp - config.lr_in * grad_comp
        if config.hessian is not None:
            grad_hess = _opponent_gradient(
                config.hessian, config, theta_opp, theta_self, value_opp, hess_data
            )
            through = theta_opp - config.lr_in * grad_hess
            # Straight-through: the value of the compositional step, the derivative of the
            # Hessian step.
            lookahead = jax.lax.stop_gradient(lookahead) + (
                through - jax.lax.stop_gradient(through)
            )
        pair = jnp.stack([theta_self, lookahead])
        traj = env.rollout(key, pair, config.outer.batch_size)
        exact_outer = -env.exact_value(theta_self, lookahead)
        if config.outer.kind == "exact":
            sampled = exact_outer
        else:
            baseline_values = jax.lax.stop_gradient(value_self)
            sampled = dice_objective(
                traj, pair, baseline_values, config.gamma, config.outer.baseline
            )
        return jnp.stack([sampled, exact_outer]), traj

    jacobian, outer_traj = jax.jacrev(losses, has_aux=True)(thetas[0])
    exact = exact_lola_meta_gradient(config, thetas[0], theta_opp)
    value_grad = jax.grad(value_loss)(value_self, outer_traj)
    return jacobian[0], jacobian[1], exact, value_grad


def lola_iteration(
    config: LolaConfig, state: LolaState, key: PRNGKeyArray
) -> tuple[LolaState, LolaMetrics]:
    """One LOLA iteration for both players (one lookahead, one Adam step each), then a score
    rollout with the updated policies.

    **Returns:** `(state, metrics)` with scalar metrics.
    """
    env = config.env()
    k_comp, k_hess, k_outer, k_score = jax.random.split(key, 4)
    thetas, values = state.thetas, state.values
    buffer, ptr = state.buffer, state.buffer_ptr

    comp_data, buffer, ptr = _inner_data(config.inner, config, k_comp, thetas, buffer, ptr)
    hess_data = None
    if config.hessian is not None:
        hess_data, buffer, ptr = _inner_data(config.hessian, config, k_hess, thetas, buffer, ptr)

    # Perspective i puts player i first: the game is symmetric, so one function serves both.
    frames = jnp.stack([thetas, jnp.flip(thetas, 0)])
    value_frames = jnp.stack([values, jnp.flip(values, 0)])
    meta, outer_exact, exact, value_grads = jax.vmap(
        lambda t, v, c, h, k: _perspective(config, t, v, c, h, k)
    )(frames, value_frames, comp_data, hess_data, jax.random.split(k_outer, 2))

    theta_optimiser, value_optimiser = _optimisers(config)
    # optax's Adam bias correction raises a float to the int step count, which strict dtype
    # promotion rejects; the promotion is intended there.
    with jax.numpy_dtype_promotion("standard"):
        updates, theta_opt = theta_optimiser.update(meta, state.theta_opt, thetas)
        v_updates, value_opt = value_optimiser.update(value_grads, state.value_opt, values)
    new_thetas = jnp.asarray(optax.apply_updates(thetas, updates))
    new_values = jnp.asarray(optax.apply_updates(values, v_updates))

    score = env.rollout(k_score, new_thetas, config.score_batch_size)
    metrics = LolaMetrics(
        joint_return=jnp.mean(score.rewards),
        corr=jnp.mean(jax.vmap(pearson)(meta, exact)),
        corr_outer_exact=jnp.mean(jax.vmap(pearson)(outer_exact, exact)),
        exact_return=(1.0 - config.gamma) * jnp.mean(env.exact_values(new_thetas)),
    )
    new_state = LolaState(
        thetas=new_thetas,
        values=new_values,
        theta_opt=theta_opt,
        value_opt=value_opt,
        buffer=buffer,
        buffer_ptr=ptr,
    )
    return new_state, metrics


def _run_seed(config: LolaConfig, seed: IntScalar) -> tuple[LolaState, LolaMetrics]:
    key = jax.random.key(seed)
    k_init, k_run = jax.random.split(key)
    state = lola_init(config, k_init)
    keys = jax.random.split(k_run, config.iterations)
    return jax.lax.scan(lambda s, k: lola_iteration(config, s, k), state, keys)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _run_seeds(
    config: LolaConfig, seeds: Int[Array, " seeds"], seeds_per_batch: int
) -> tuple[LolaState, LolaMetrics]:
    def run(seed: IntScalar) -> tuple[LolaState, LolaMetrics]:
        return _run_seed(config, seed)

    if seeds_per_batch >= seeds.shape[0]:
        return jax.vmap(run)(seeds)
    return jax.lax.map(run, seeds, batch_size=seeds_per_batch)


def _seeds_per_batch(num_seeds: int, seeds_per_batch: int | None) -> int:
    if seeds_per_batch is None:
        return num_seeds
    if seeds_per_batch < 1:
        raise ValueError(f"seeds_per_batch must be at least 1 (or None), got {seeds_per_batch}")
    return min(seeds_per_batch, num_seeds)


def compile_lola(
    config: LolaConfig, num_seeds: int, seeds_per_batch: int | None = None
) -> Callable[[Int[Array, " seeds"]], tuple[LolaState, LolaMetrics]]:
    """Compile `run_lola` for `config` and `num_seeds` seeds ahead of time (to time compilation
    apart from running); the result takes the seeds array."""
    config.validate()
    if num_seeds < 1:
        raise ValueError(f"num_seeds must be at least 1, got {num_seeds}")
    per_batch = _seeds_per_batch(num_seeds, seeds_per_batch)
    compiled = _run_seeds.lower(config, jnp.zeros((num_seeds,), jnp.int32), per_batch).compile()
    return lambda seeds: compiled(seeds)


def run_lola(
    config: LolaConfig, seeds: Int[Array, " seeds"], seeds_per_batch: int | None = None
) -> tuple[LolaState, LolaMetrics]:
    """Run `config.iterations` LOLA iterations from each seed, all seeds in one compiled call.

    The iterations are one `lax.scan`. The seeds are one `vmap` when `seeds_per_batch` covers
    them all, else a `lax.map` over vmapped groups of `seeds_per_batch` inside the same compiled
    call, with the same results up to float rounding. The default vmaps all seeds; a smaller
    `seeds_per_batch` bounds the working set (memory), which on a CPU with few cores can be as
    fast. A second call with the same arguments reuses the compiled program.

    **Returns:** `(final_states, metrics)`; every metric has shape ``[seeds, iterations]``.
    """
    config.validate()
    if seeds.ndim != 1 or seeds.shape[0] < 1:
        raise ValueError(f"seeds must be a non-empty 1-d integer array, got shape {seeds.shape}")
    return _run_seeds(config, seeds, _seeds_per_batch(seeds.shape[0], seeds_per_batch))
