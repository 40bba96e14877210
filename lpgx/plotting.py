"""Figures of a run directory: learning curves from ``metrics.jsonl`` and what the learned
rule outputs."""

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._typing import PRNGKeyArray

__all__ = [
    "load_metrics",
    "load_trained_rule",
    "load_trained_state",
    "plot_curriculum",
    "plot_learning_curves",
    "plot_rule_outputs",
    "rule_outputs",
]

# The curves a user looks at first, in this order; others follow alphabetically.
_MAIN = (
    "eval_rollout_reward",
    "outer_pg_loss",
    "outer_loss",
    "meta_grad_norm",
    "agent/pi_hat_l2",
    "agent/y_kl",
    "agent/policy_entropy",
    "agent/value_loss",
)


def load_metrics(run_dir: Path) -> dict[str, np.ndarray]:
    """Columns of ``metrics.jsonl`` as arrays (one entry per meta-step)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory of `lpgx train`?")
    from .train import read_metrics

    rows = read_metrics(path)
    if not rows:
        raise ValueError(f"{path} holds no metrics yet; plot again once training has run a chunk.")
    keys = sorted({k for r in rows for k in r})
    return {k: np.asarray([r.get(k, np.nan) for r in rows], dtype=np.float64) for k in keys}


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or y.size < window:
        return y
    kernel = np.ones(window) / window
    return np.convolve(y, kernel, mode="valid")


def plot_learning_curves(run_dir: Path, out: Path | None = None, smooth: int = 10) -> Path:
    """Write a PNG grid of learning curves (raw in light colour, moving average on top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = load_metrics(run_dir)
    skip = {"step", "env_steps", "wall_s"}
    names = [k for k in _MAIN if k in cols] + sorted(
        k for k in cols if k not in skip and k not in _MAIN
    )
    n = len(names)
    ncols = 4
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.8 * nrows), squeeze=False)
    step = cols["step"]
    for ax, name in zip(axes.flat, names, strict=False):
        y = cols[name]
        ax.plot(step, y, color="tab:blue", alpha=0.25, linewidth=0.8)
        ys = _smooth(y, smooth)
        ax.plot(step[len(step) - len(ys) :], ys, color="tab:blue", linewidth=1.6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("meta-step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"lpgx run {run_dir.name}", fontsize=11)
    fig.tight_layout()
    out = out if out is not None else run_dir / "learning_curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def load_trained_state(run_dir: Path) -> tuple[Any, Any]:
    """The latest checkpoint's `TrainState` of a run directory, and the run's `Trainer`."""
    from .checkpoint import latest_checkpoint, load_checkpoint
    from .compose import build_trainer
    from .train import load_config

    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} not found: is {run_dir} a run directory?")
    trainer = build_trainer(load_config(config_path))
    step = latest_checkpoint(run_dir)
    if step is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet; train for a while first.")
    skeleton = eqx.filter_eval_shape(trainer.init)
    state, _ = load_checkpoint(run_dir, step, skeleton)
    return state, trainer


def load_trained_rule(run_dir: Path) -> tuple[Any, Any]:
    """The latest checkpoint's rule of a run directory, and the run's `Trainer`."""
    state, trainer = load_trained_state(run_dir)
    return state.meta.rule, trainer


def rule_outputs(
    trainer: Any, rule: Any, key: PRNGKeyArray, fractions: tuple[float, ...], num_tasks: int = 8
) -> dict[str, np.ndarray]:
    """π̂ of `rule` on fresh agents' rollouts, as if each agent were at lifetime fraction n/N.

    **Returns:** flat arrays ``pi_hat``, ``return_to_go`` (discounted return from t to the end
    of the rollout or episode: the advantage-like signal π̂ should follow) and ``fraction``.
    """
    from .agents import reset_workers, rollout
    from .rules import LifetimeContext

    learner, levels = trainer.learner, trainer.tasks
    gamma = rule.gamma

    def one(k: PRNGKeyArray) -> tuple[Array, Array]:
        k_task, k_agent, k_env, k_roll = jax.random.split(k, 4)
        task = levels.sample(k_task)
        params = learner.init_params(k_agent, rule.aux_size)
        env_state, obs = reset_workers(learner.env, task.level, k_env, learner.config.num_workers)
        _, _, traj = rollout(
            learner.env,
            task.level,
            params.policy,
            env_state,
            obs,
            k_roll,
            learner.config.rollout_len,
        )
        logits, y_logits = jax.vmap(jax.vmap(params))(traj.all_obs())
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits[:-1]), traj.action[..., None], axis=-1)
        y = jax.nn.softmax(y_logits, axis=-1)

        def at(frac: float) -> Array:
            lifetime = task.lifetime
            step = jnp.round(frac * lifetime.astype(jnp.float32)).astype(jnp.int32)
            ctx = LifetimeContext(step=step, lifetime=lifetime, agent=params)
            x = rule.features(traj.reward, traj.done, jnp.exp(logp[..., 0]) + 1e-8, y, ctx)
            return rule(x, traj.done)[0]

        not_done = 1.0 - traj.done.astype(jnp.float32)

        def back(g: Array, inp: tuple[Array, Array]) -> tuple[Array, Array]:
            r, nd = inp
            g = r + gamma * nd * g
            return g, g

        _, rtg = jax.lax.scan(
            back, jnp.zeros_like(traj.reward[0]), (traj.reward, not_done), reverse=True
        )
        return jnp.stack([at(f) for f in fractions]), rtg

    pi_hat, rtg = jax.jit(jax.vmap(one))(jax.random.split(key, num_tasks))
    n_frac = len(fractions)
    frac = np.broadcast_to(np.asarray(fractions)[None, :, None, None], pi_hat.shape)
    return {
        "pi_hat": np.asarray(pi_hat).reshape(-1),
        "return_to_go": np.broadcast_to(np.asarray(rtg)[:, None], pi_hat.shape).reshape(-1),
        "fraction": frac.reshape(-1),
        "num_fractions": np.asarray(n_frac),
    }


def plot_rule_outputs(run_dir: Path, out: Path | None = None, seed: int = 0) -> Path:
    """What the learned rule outputs: π̂ against the return-to-go, and against the agent's age
    n/N (TA-LPG rules can change with age; unconditioned rules cannot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rule, trainer = load_trained_rule(run_dir)
    fractions = (0.0, 0.25, 0.5, 0.75, 1.0)
    data = rule_outputs(trainer, rule, jax.random.key(seed), fractions)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    cmap = plt.get_cmap("viridis")
    for i, f in enumerate(fractions):
        sel = data["fraction"] == f
        ax1.scatter(
            data["return_to_go"][sel], data["pi_hat"][sel], s=4, alpha=0.35,
            color=cmap(i / max(len(fractions) - 1, 1)), label=f"n/N = {f:.2f}",
        )  # fmt: skip
    ax1.set_xlabel("discounted return-to-go in the rollout")
    ax1.set_ylabel("π̂ (the rule's policy target)")
    ax1.set_title("π̂ against the advantage-like signal")
    ax1.legend(fontsize=8, markerscale=3)
    ax1.grid(alpha=0.3)
    means, corrs = [], []
    for f in fractions:
        sel = data["fraction"] == f
        means.append(float(np.mean(data["pi_hat"][sel])))
        x, y = data["return_to_go"][sel], data["pi_hat"][sel]
        corrs.append(float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 and np.std(y) > 0 else 0.0)
    ax2.plot(fractions, means, "o-", label="mean π̂")
    ax2.plot(fractions, corrs, "s-", label="corr(π̂, return-to-go)")
    ax2.set_xlabel("agent's age n/N")
    ax2.set_title("does the rule change with the agent's age?")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    conditioned = getattr(rule, "lifetime_conditioning", False)
    fig.suptitle(f"rule of {run_dir.name} ({'TA-LPG' if conditioned else 'LPG, not conditioned'})")
    fig.tight_layout()
    out = out if out is not None else run_dir / "rule_outputs.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_curriculum(run_dir: Path, top: int = 4) -> list[Path]:
    """Curriculum figures of a PLR run: the replay fraction and buffer scores over time, the
    score distribution of the buffer's scored levels, and a picture of the `top` highest-scoring
    (for GROOVE: highest-regret) levels. Returns the files written (none for a run whose
    curriculum has no buffer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .envs import plot_levels

    state, _ = load_trained_state(run_dir)
    buffer = getattr(state.curriculum, "buffer", None)
    if buffer is None:
        return []
    cols = load_metrics(run_dir)
    step = cols["step"]
    replayed, fresh = cols.get("curriculum/replayed"), cols.get("curriculum/fresh")
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.8))
    if replayed is not None and fresh is not None:
        window = 25
        r = np.convolve(replayed, np.ones(window), mode="valid")
        n = np.convolve(replayed + fresh, np.ones(window), mode="valid")
        frac = np.where(n > 0, r / np.maximum(n, 1), np.nan)
        ax1.plot(step[window - 1 :], frac)
    ax1.set_ylim(-0.05, 1.05)
    ax1.set_title(f"replay fraction of new tasks ({25}-step window)")
    ax1.set_xlabel("meta-step")
    for key, label in (("curriculum/score_mean", "mean"), ("curriculum/score_max", "max")):
        if key in cols:
            ax2.plot(step, cols[key], label=label)
    ax2.set_title("scores of the buffer's scored levels")
    ax2.set_xlabel("meta-step")
    ax2.legend(fontsize=8)
    seen = np.asarray(buffer.filled) & np.asarray(buffer.seen)
    scores = np.asarray(buffer.score)[seen]
    ax3.hist(scores, bins=30, color="tab:purple")
    ax3.set_title(f"score distribution ({seen.sum()} scored levels)")
    ax3.set_xlabel("score")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out1 = run_dir / "curriculum.png"
    fig.savefig(out1, dpi=110)
    plt.close(fig)
    written = [out1]
    if seen.any():
        order = np.argsort(np.where(seen, np.asarray(buffer.score), -np.inf))[::-1][:top]
        order = [int(i) for i in order if seen[i]]
        levels = [jax.tree.map(lambda x, i=i: x[i], buffer.tasks.level) for i in order]
        titles = [f"score {float(buffer.score[i]):.3f}" for i in order]
        out2 = run_dir / "top_levels.png"
        plot_levels(levels, out2, titles=titles)
        written.append(out2)
    return written
