"""Online meta-gradient RL (MGRL): one agent lifetime whose own hyperparameters are
meta-learned every window of ``K`` updates, and the same loop with the meta-update off (A2C).

A *window* (one step of `OnlineTrainer`, read top to bottom in `OnlineTrainer.window`):

1. ``K`` inner updates through Adam, each on a batch of ``W`` environments × ``T`` steps.
   The first batch is the previous window's outer batch (values and returns recomputed with
   the current meta γ, λ); every other batch is collected fresh by the policy just updated.
   The updates stay differentiable in the meta-parameters: Adam's moments are differentiated,
   the gradient clip's norm is under `stop_gradient` (the reference's).
2. A fresh outer batch from the updated policy; the outer A2C loss on it (fixed γ 0.99,
   λ 0.95) is differentiated through the ``K`` updates into the four meta-logits.
3. Meta-Adam steps the logits, unless the meta-gradient is not finite: then the step is
   skipped and counted. Parameters and optimiser state move on detached.

Every inner update consumes exactly one fresh batch, so a window is ``K · W · T`` environment
steps (plus the first window's first batch). ``--seeds N`` runs are vmapped, each with its own
meta-parameters; the whole window is a pure function, scanned over a chunk of windows inside
one compiled call.
"""

from dataclasses import dataclass
from typing import ClassVar, Literal, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh
from jaxtyping import Array, Bool, Float, Int, Key, PyTree, UInt32

from .._typing import PRNGKeyArray, Scalar
from ..agents import Trajectory
from ..chunked import AbstractChunkedTrainer
from ..rules import DIFFERENTIATIONS, Differentiation
from ..sharding import agent_mesh, replicate
from ._networks import ActorCritic, Torso
from ._rule import HYPERPARAMETER_NAMES, MetaHyperparams, inner_loss, outer_advantages, outer_loss
from ._vecenv import AbstractVecEnv

__all__ = [
    "OnlineConfig",
    "OnlineRun",
    "OnlineTrainState",
    "OnlineTrainer",
    "inner_update",
    "rollout",
    "unrolled_outer_loss",
]

RETURNS_WINDOW = 64
"""The reported return is the mean raw score of the last this many finished games (the
reference's ``eprewmean``)."""


@dataclass(frozen=True)
class OnlineConfig:
    """Settings of an online MGRL / A2C run (the reference's defaults)."""

    num_envs: int = 64
    """Parallel environments (W)."""
    rollout_len: int = 5
    """Steps per batch (T); one inner update per batch."""
    num_inner_updates: int = 3
    """K: differentiable inner updates per window (one meta-update)."""
    learning_rate: float | None = None
    """Inner Adam learning rate (default 7e-4, the reference's), decayed linearly to 0 over
    the run when ``lr_decay``."""
    lr_decay: bool = True
    """Decay the inner learning rate linearly to 0 over the run (the reference)."""
    max_grad_norm: float = 0.5
    """Global-norm clip of the inner gradient (its norm under stop_gradient)."""
    meta_learning_rate: float = 1e-3
    """Adam learning rate on the meta-logits."""
    meta_learn: bool = True
    """Meta-learn γ, λ and the coefficients; False is the A2C baseline (the same loop)."""
    differentiation: Differentiation = "exact"
    """How the meta-gradient goes through the inner updates: exact (the true derivative),
    stop_gradient (the reference: the values behind the returns and the critic's γ input
    detached), lvc (exact, with
    log π as π/sg(π) in the inner loss: a lower-bias Hessian)."""
    outer_gamma: float = 0.99
    outer_lambda: float = 0.95
    torso: Torso | Literal["auto"] = "auto"
    """Network torso: nature (Atari), minatar, mlp, or auto (chosen from the observation:
    nature for 84×84 frames, minatar for other images, else mlp)."""
    hidden: tuple[int, ...] | None = None
    """Widths of the mlp torso (default (64,))."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("num_envs", "rollout_len", "num_inner_updates"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("learning_rate", "max_grad_norm", "meta_learning_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.differentiation not in DIFFERENTIATIONS:
            problems.append(
                f"differentiation must be exact, stop_gradient or lvc, got {self.differentiation!r}"
            )
        if self.hidden is not None and (not self.hidden or any(h < 1 for h in self.hidden)):
            problems.append(f"hidden widths must be positive, got {self.hidden}")
        if not (0.0 <= self.outer_gamma <= 1.0 and 0.0 <= self.outer_lambda <= 1.0):
            problems.append("outer_gamma and outer_lambda must lie in [0, 1]")
        if problems:
            raise ValueError("invalid MGRL config: " + "; ".join(problems))

    @property
    def inner_learning_rate(self) -> float:
        return 7e-4 if self.learning_rate is None else self.learning_rate

    def torso_for(self, obs_shape: tuple[int, ...]) -> Torso:
        """The torso for observations of `obs_shape` (``auto`` resolved)."""
        if self.torso != "auto":
            return self.torso
        if len(obs_shape) == 3:
            return "nature" if obs_shape[1:] == (84, 84) else "minatar"
        return "mlp"

    @property
    def env_steps_per_window(self) -> int:
        return self.num_inner_updates * self.num_envs * self.rollout_len


class OnlineRun(eqx.Module):
    """One run between windows: the agent, its optimiser, the meta-parameters and theirs,
    the environments, the pending batch (the next window's first) and the score record."""

    net: ActorCritic
    opt_state: PyTree
    rule: MetaHyperparams
    meta_opt_state: PyTree
    env_state: PyTree
    obs: Array
    batch: Trajectory
    returns: Float[Array, " R"]
    num_returns: Int[Array, ""]
    updates: Int[Array, ""]
    nan_skips: Int[Array, ""]
    key: UInt32[Array, " key"]


class OnlineTrainState(eqx.Module):
    """Independent runs stacked along a leading seed axis, and the windows done."""

    runs: OnlineRun
    step: Int[Array, ""]


def _adam() -> optax.GradientTransformation:
    # eps_root keeps d√v/dv finite where a gradient entry is exactly 0 (a conv filter over an
    # always-empty MinAtar channel), which would otherwise make the meta-gradient NaN.
    return optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=1e-8)


def inner_update(
    rule: MetaHyperparams,
    net: ActorCritic,
    opt_state: PyTree,
    traj: Trajectory,
    learning_rate: Scalar,
    max_grad_norm: float,
    differentiation: Differentiation = "exact",
) -> tuple[ActorCritic, PyTree, dict[str, Scalar]]:
    """One differentiable inner update: clip (norm under stop_gradient) then Adam.

    The meta-gradient flows through the update into `rule` (γ, λ through the returns, the
    coefficients through the loss) and through Adam's moments.
    """
    reference = differentiation == "stop_gradient"
    current = jax.lax.stop_gradient(net) if reference else net
    surrogate = "lvc" if differentiation == "lvc" else "log"
    (_, diag), grads = eqx.filter_value_and_grad(inner_loss, has_aux=True)(
        net, current, rule, traj, surrogate, reference
    )
    norm = jax.lax.stop_gradient(optax.tree.norm(grads))
    # torch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) where that is below 1.
    scale = jnp.minimum(1.0, max_grad_norm / (norm + 1e-6)).astype(norm.dtype)
    grads = jax.tree.map(lambda g: g * scale, grads)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: int ** float
        updates, opt_state = _adam().update(grads, opt_state, params)
    lr = learning_rate.astype(norm.dtype)
    params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
    return eqx.combine(params, static), opt_state, {**diag, "grad_norm": norm}


def rollout(
    env: AbstractVecEnv,
    net: ActorCritic,
    env_state: PyTree,
    obs: Array,
    key: PRNGKeyArray,
    length: int,
) -> tuple[PyTree, Array, Trajectory, Bool[Array, "T W"], Float[Array, "T W"]]:
    """``length`` steps of every environment with `net`'s policy (not differentiated).

    **Returns:** ``(env_state, obs, traj, ended, score)``: the trajectory, where games ended
    and their raw scores.
    """
    net = jax.lax.stop_gradient(net)

    def step(
        carry: tuple[PyTree, Array], k: PRNGKeyArray
    ) -> tuple[tuple[PyTree, Array], tuple[Array, ...]]:
        env_state, obs = carry
        k_act, k_env = jax.random.split(k)
        logits = jax.vmap(net.logits)(obs)
        action = jax.random.categorical(k_act, logits).astype(jnp.int32)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
        env_state, out = env.step(env_state, k_env, action)
        reward = out.reward.astype(logits.dtype)
        return (env_state, out.obs), (obs, action, reward, out.done, logp, out.ended, out.score)

    (env_state, last), (o, a, r, d, lp, ended, score) = jax.lax.scan(
        step, (env_state, obs), jax.random.split(key, length)
    )
    traj = Trajectory(obs=o, action=a, reward=r, done=d, logp=lp, last_obs=last)
    return env_state, last, traj, ended, score


def unrolled_outer_loss(
    rule: MetaHyperparams,
    net: ActorCritic,
    opt_state: PyTree,
    batches: Trajectory,
    outer_batch: Trajectory,
    outer_adv: Float[Array, "T W"],
    learning_rate: float,
    max_grad_norm: float,
    differentiation: Differentiation = "exact",
) -> Scalar:
    """The outer loss after ``K`` inner updates on fixed `batches` (stacked ``[K, …]``), with
    the outer advantages given as data: the function whose gradient in `rule` a window's
    meta-gradient is (used to check it against finite differences)."""

    def body(carry: tuple[ActorCritic, PyTree], traj: Trajectory) -> tuple[tuple, None]:
        n, s = carry
        lr = jnp.asarray(learning_rate, traj.reward.dtype)
        n, s, _ = inner_update(rule, n, s, traj, lr, max_grad_norm, differentiation)
        return (n, s), None

    (net, _), _ = jax.lax.scan(body, (net, opt_state), batches)
    return outer_loss(net, outer_batch, outer_adv)[0]


def _record_scores(
    returns: Float[Array, " R"],
    num: Int[Array, ""],
    ended: Bool[Array, "*steps"],
    score: Float[Array, "*steps"],
) -> tuple[Float[Array, " R"], Int[Array, ""]]:
    """Append the scores of ended games (in time order) to a ring buffer of the last R."""
    size = returns.shape[0]
    ended, score = jnp.ravel(ended), jnp.ravel(score)
    rank = jnp.cumsum(ended.astype(jnp.int32)) - 1
    total = rank[-1] + 1
    keep = jnp.logical_and(ended, rank >= total - size)
    index = jnp.where(keep, (num + rank) % size, size)
    returns = returns.at[index].set(score.astype(returns.dtype), mode="drop")
    return returns, num + total


class OnlineTrainer(AbstractChunkedTrainer[OnlineTrainState]):
    """Online MGRL (or A2C with ``meta_learn=False``) on a vectorised environment.

    **Arguments:** ``env`` — the `AbstractVecEnv`; ``config`` — `OnlineConfig`;
    ``train_steps`` — windows in the run; ``chunk_size`` — windows per compiled call;
    ``seeds`` — independent runs (vmapped); ``seed`` — the first run's seed.

    The host loop (`lpgx.train.train`) drives it like the population `lpgx.Trainer`, through
    `lpgx.chunked.AbstractChunkedTrainer`: one step is one window of every run. It runs on one
    process and has no held-out evaluation (its learning curves are the result).
    """

    env: AbstractVecEnv
    config: OnlineConfig = eqx.field(static=True)
    train_steps: int = eqx.field(static=True)
    chunk_size: int = eqx.field(static=True, default=25)
    seeds: int = eqx.field(static=True, default=1)
    seed: int = eqx.field(static=True, default=0)
    dtype: str = eqx.field(static=True, default="float32")
    runs_on_several_processes: ClassVar[bool] = False

    def __check_init__(self) -> None:
        if self.seeds < 1 or self.train_steps < 1 or self.chunk_size < 1:
            raise ValueError(
                f"--seeds, --train-steps and --chunk-size must be at least 1, got {self.seeds}, "
                f"{self.train_steps}, {self.chunk_size}"
            )
        if self.seeds > 1 and not self.env.vmappable:
            raise ValueError(
                f"--seeds {self.seeds}: this environment runs in the host process and cannot "
                "be vmapped; run the seeds one after another (--seeds 1 --seed S)"
            )

    @property
    def env_steps_per_meta_step(self) -> int:
        return self.config.env_steps_per_window

    @property
    def total_updates(self) -> int:
        return self.train_steps * self.config.num_inner_updates

    def new_net(self, key: PRNGKeyArray) -> ActorCritic:
        cfg = self.config
        return ActorCritic(
            self.env.obs_shape,
            self.env.num_actions,
            cfg.torso_for(self.env.obs_shape),
            (64,) if cfg.hidden is None else cfg.hidden,
            jnp.dtype(self.dtype),
            key=key,
        )

    # --- Initialisation ---------------------------------------------------------------

    def init_run(self, key: PRNGKeyArray) -> OnlineRun:
        """A fresh run: new network, meta-parameters at their initial values, reset
        environments and a first batch from the initial policy."""
        k_net, k_env, k_roll, k_loop = jax.random.split(key, 4)
        net = self.new_net(k_net)
        rule = MetaHyperparams(dtype=jnp.dtype(self.dtype))
        env_state, obs = self.env.reset(k_env)
        env_state, obs, batch, ended, score = rollout(
            self.env, net, env_state, obs, k_roll, self.config.rollout_len
        )
        returns, num = _record_scores(
            jnp.zeros(RETURNS_WINDOW, jnp.float32),
            jnp.zeros((), jnp.int32),
            ended,
            score,
        )
        with jax.numpy_dtype_promotion("standard"):
            meta_opt_state = optax.adam(self.config.meta_learning_rate).init(rule.logits)
        return OnlineRun(
            net=net,
            opt_state=_adam().init(eqx.filter(net, eqx.is_inexact_array)),
            rule=rule,
            meta_opt_state=meta_opt_state,
            env_state=env_state,
            obs=obs,
            batch=batch,
            returns=returns,
            num_returns=num,
            updates=jnp.zeros((), jnp.int32),
            nan_skips=jnp.zeros((), jnp.int32),
            key=jax.random.key_data(k_loop),
        )

    def _seed_keys(self) -> Key[Array, " seeds"]:
        return jax.vmap(jax.random.key)(jnp.arange(self.seeds, dtype=jnp.uint32) + self.seed)

    def init(self, mesh: Mesh | None = None) -> OnlineTrainState:
        runs = eqx.filter_jit(self._over_seeds)(self.init_run, self._seed_keys())
        state = OnlineTrainState(runs=runs, step=jnp.zeros((), jnp.int32))
        return state if mesh is None else self.shard(state, mesh)

    def _over_seeds(self, fn, xs):  # a vmap over the seed axis, typed by its callers
        if self.env.vmappable:
            return jax.vmap(fn)(xs)
        out = fn(jax.tree.map(lambda x: x[0], xs))
        return jax.tree.map(lambda x: x[None], out)

    # --- One window -------------------------------------------------------------------

    def _lr(self, updates: Int[Array, ""]) -> Float[Array, ""]:
        cfg = self.config
        lr = jnp.asarray(cfg.inner_learning_rate, jnp.float32)
        if not cfg.lr_decay:
            return lr
        frac = updates.astype(jnp.float32) / jnp.asarray(self.total_updates, jnp.float32)
        return lr * jnp.maximum(1.0 - frac, 0.0)

    def _unroll(
        self, logits: Float[Array, " 4"], run: OnlineRun, key: PRNGKeyArray
    ) -> tuple[Scalar, tuple]:
        """The window's ``K`` updates and rollouts; the outer loss on the last batch."""
        cfg = self.config
        rule = MetaHyperparams(logits)

        def body(carry: tuple, k: PRNGKeyArray) -> tuple[tuple, tuple]:
            net, opt_state, env_state, obs, batch, updates = carry
            net, opt_state, diag = inner_update(
                rule,
                net,
                opt_state,
                batch,
                self._lr(updates),
                cfg.max_grad_norm,
                cfg.differentiation,
            )
            env_state, obs, batch, ended, score = rollout(
                self.env, net, env_state, obs, k, cfg.rollout_len
            )
            return (net, opt_state, env_state, obs, batch, updates + 1), (diag, ended, score)

        carry = (run.net, run.opt_state, run.env_state, run.obs, run.batch, run.updates)
        keys = jax.random.split(key, cfg.num_inner_updates)
        carry, (diag, ended, score) = jax.lax.scan(body, carry, keys)
        net, _, _, _, batch, _ = carry
        if cfg.meta_learn:
            adv = jax.lax.stop_gradient(
                outer_advantages(net, batch, cfg.outer_gamma, cfg.outer_lambda)
            )
            loss, _ = outer_loss(net, batch, adv)
        else:
            loss = jnp.zeros((), batch.reward.dtype)
        return loss, (carry, diag, ended, score)

    def window(self, run: OnlineRun) -> tuple[OnlineRun, dict[str, Scalar]]:
        """One window of ``K`` inner updates and (with ``meta_learn``) one meta-update."""
        cfg = self.config
        key, k_window = jax.random.split(jax.random.wrap_key_data(run.key))
        logits = run.rule.logits
        meta_opt_state, nan_skips = run.meta_opt_state, run.nan_skips
        if cfg.meta_learn:
            (loss, aux), grad = jax.value_and_grad(self._unroll, has_aux=True)(
                logits, run, k_window
            )
            finite = jnp.all(jnp.isfinite(grad))
            with jax.numpy_dtype_promotion("standard"):
                step, new_opt = optax.adam(cfg.meta_learning_rate).update(grad, meta_opt_state)
            logits = jnp.where(finite, logits + cast(Array, step), logits)
            meta_opt_state = jax.tree.map(
                lambda a, b: jnp.where(finite, a, b), new_opt, meta_opt_state
            )
            nan_skips = nan_skips + jnp.logical_not(finite).astype(jnp.int32)
            grad_norm = jnp.where(finite, jnp.linalg.norm(grad), jnp.nan)
        else:
            loss, aux = self._unroll(logits, run, k_window)
            grad_norm = jnp.zeros((), logits.dtype)
        carry, diag, ended, score = jax.lax.stop_gradient(aux)
        net, opt_state, env_state, obs, batch, updates = carry
        returns, num = _record_scores(run.returns, run.num_returns, ended, score)
        filled = jnp.minimum(num, returns.shape[0])
        mask = jnp.arange(returns.shape[0]) < filled
        mean_return = jnp.where(
            filled > 0,
            jnp.sum(jnp.where(mask, returns, 0.0)) / jnp.maximum(filled, 1).astype(jnp.float32),
            jnp.nan,
        )
        new_run = OnlineRun(
            net=net,
            opt_state=opt_state,
            rule=MetaHyperparams(logits),
            meta_opt_state=meta_opt_state,
            env_state=env_state,
            obs=obs,
            batch=batch,
            returns=returns,
            num_returns=num,
            updates=updates,
            nan_skips=nan_skips,
            key=jax.random.key_data(key),
        )
        f32 = jnp.float32
        values = jax.nn.sigmoid(logits)
        metrics = {
            "episode_return": mean_return,
            "episodes_ended": jnp.sum(ended).astype(f32),
            **{f"meta/{n}": values[i].astype(f32) for i, n in enumerate(HYPERPARAMETER_NAMES)},
            "outer_pg_loss": loss.astype(f32),
            "meta_grad_norm": grad_norm.astype(f32),
            "meta_nan_skips": nan_skips.astype(f32),
            "agent/policy_entropy": jnp.mean(diag["policy_entropy"]).astype(f32),
            "agent/value_loss": jnp.mean(diag["value_loss"]).astype(f32),
            "agent/grad_norm": jnp.mean(diag["grad_norm"]).astype(f32),
            "agent/learning_rate": self._lr(updates),
        }
        return new_run, metrics

    # --- The host loop's interface ----------------------------------------------------

    def meta_step(self, state: OnlineTrainState) -> tuple[OnlineTrainState, dict[str, Array]]:
        """One window of every run; metrics are ``[seeds]``."""
        runs, metrics = self._over_seeds(self.window, state.runs)
        return OnlineTrainState(runs, state.step + 1), metrics

    def mesh(self, num_devices: int | None = None) -> Mesh:
        """One device: an online run is one sequential lifetime (its seeds are vmapped)."""
        del num_devices
        return agent_mesh(1)

    def shard(self, state: OnlineTrainState, mesh: Mesh) -> OnlineTrainState:
        return replicate(state, mesh)

    def episode_returns(
        self, net: ActorCritic, key: PRNGKeyArray, steps: int
    ) -> tuple[Float[Array, "T W"], Bool[Array, "T W"]]:
        """Raw scores of the games `net`'s policy finishes in `steps` steps of fresh
        environments (``(score, ended)``; the scores are where ``ended``)."""
        k_env, k_roll = jax.random.split(key)
        env_state, obs = self.env.reset(k_env)
        _, _, _, ended, score = rollout(self.env, net, env_state, obs, k_roll, steps)
        return score, ended
