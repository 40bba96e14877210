"""Figures of a run directory: learning curves from ``metrics.jsonl`` and what the learned
rule outputs."""

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._typing import PRNGKeyArray
from .run_dir import RunDir

__all__ = [
    "load_metrics",
    "plot_curriculum",
    "plot_learning_curves",
    "plot_rule_outputs",
    "rule_outputs",
]

# The curves a user looks at first, in this order; others follow alphabetically. Names,
# units and scales: `lpgx.metrics`.
_MAIN = (
    "episode_return",
    "meta/gamma",
    "meta/lambda",
    "eval_rollout_reward",
    "fitness_mean",
    "outer_pg_loss",
    "outer_loss",
    "meta_grad_norm",
    "agent/pi_hat_l2",
    "agent/y_kl",
    "agent/policy_entropy",
    "agent/value_loss",
    "ended_lifetimes",
)


def load_metrics(run_dir: Path) -> dict[str, np.ndarray]:
    """Columns of ``metrics.jsonl`` as arrays (one entry per meta-step)."""
    run = RunDir(run_dir)
    rows = run.read_metrics()
    if not rows:
        raise ValueError(
            f"{run.metrics_path} holds no metrics yet; plot again once training has run a chunk."
        )
    keys = sorted({k for r in rows for k in r})
    return {k: np.asarray([r.get(k, np.nan) for r in rows], dtype=np.float64) for k in keys}


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or y.size < window:
        return y
    kernel = np.ones(window) / window
    return np.convolve(y, kernel, mode="valid")


def _axis_scale(scale: str, y: np.ndarray) -> str:
    """The scale to draw `y` on: a log scale only where the values are positive and span
    more than a decade (symlog where signed values do)."""
    finite = y[np.isfinite(y)]
    if finite.size == 0 or scale == "linear":
        return "linear"
    magnitude = np.abs(finite[finite != 0])
    if magnitude.size == 0 or magnitude.max() / max(np.median(magnitude), 1e-30) < 10:
        return "linear"
    return "log" if scale == "log" and finite.min() > 0 else "symlog"


def _headline(ax: Any, evaluation: dict[str, Any] | None) -> None:
    """The held-out result: return of agents trained from scratch by the initial and the
    learned rule, against the optimum of the same tasks where it is known."""
    if evaluation is None:
        ax.text(
            0.5, 0.5,
            "no held-out evaluation yet (eval.json):\nit is written when `lpgx train` finishes",
            ha="center", va="center", transform=ax.transAxes, fontsize=10,
        )  # fmt: skip
        ax.set_axis_off()
        return
    rules = (("initial_rule", "initial rule", "tab:gray"), ("final_rule", "learned rule", "C0"))
    y = [evaluation[k]["final_return"] for k, _, _ in rules]
    err = [evaluation[k]["final_return_se"] for k, _, _ in rules]
    ax.barh(
        [label for _, label, _ in rules], y, xerr=err, color=[c for _, _, c in rules],
        height=0.55, capsize=4,
    )  # fmt: skip
    optimum = evaluation.get("optimal_return")
    for i, (key, _, _) in enumerate(rules):
        frac = evaluation[key].get("fraction_of_optimal")
        note = f"{y[i]:.3f} ± {err[i]:.3f}"
        if frac is not None:
            note += (
                f"  ({100 * frac:.0f} ± {100 * evaluation[key]['fraction_of_optimal_se']:.0f} %)"
            )
        ax.text(y[i] + err[i], i, "  " + note, va="center", fontsize=9)
    if optimum is not None:
        ax.axvline(optimum, color="k", linestyle="--", linewidth=1.2)
        ax.axvspan(
            optimum - evaluation["optimal_return_se"], optimum + evaluation["optimal_return_se"],
            color="k", alpha=0.08,
        )  # fmt: skip
        ax.text(optimum, 1.45, " optimal (exact)", fontsize=9, va="bottom")
    scale = "" if optimum is not None else "; optimal return unknown (not tabular)"
    ax.set_xlabel("return of one episode after a whole lifetime (mean ± s.e. over agents)")
    ax.set_xlim(0, 1.45 * max(max(y) + max(err), optimum or 0.0, 1e-6))
    ax.set_ylim(-0.6, 1.8)
    gain, se = evaluation["paired_gain"], evaluation["paired_gain_se"]
    ax.set_title(
        f"held-out: {evaluation['held_out_agents']} fresh agents per rule on "
        f"{evaluation.get('level_set', '?')} tasks, {evaluation['lifetime_updates']} updates "
        f"each; learned − initial = {gain:.3f} ± {se:.3f}{scale}",
        fontsize=10, loc="left",
    )  # fmt: skip
    ax.grid(alpha=0.3, axis="x")


def plot_learning_curves(run_dir: Path, out: Path | None = None, smooth: int = 10) -> Path:
    """Write ``learning_curves.png``: the held-out result first (``eval.json``: initial and
    learned rule against the optimum), then one panel per metric of ``metrics.jsonl`` with
    its display name and unit (`lpgx.metrics`), the raw values, their moving average, and a
    log scale where the values span decades."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .metrics import RECORD_FIELDS, describe, is_periodic_eval

    cols = load_metrics(run_dir)
    evaluation = RunDir(run_dir).evaluation()
    # Periodic held-out returns (--eval-on) come first; their s.e. is drawn as a band.
    periodic = sorted(k for k in cols if is_periodic_eval(k) and not k.endswith("_se"))
    # An online run of several seeds also writes each run's value as ``seed{i}/name``: drawn
    # thin in the panel of ``name`` (their mean).
    per_seed = [k for k in cols if k.startswith("seed") and "/" in k]
    names = (
        periodic
        + [k for k in _MAIN if k in cols]
        + sorted(
            k
            for k in cols
            if k not in RECORD_FIELDS
            and k not in _MAIN
            and not is_periodic_eval(k)
            and k not in per_seed
        )
    )
    ncols = 4
    nrows = max(1, -(-len(names) // ncols))
    fig = plt.figure(figsize=(4.2 * ncols, 2.2 + 2.9 * nrows))
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[1.25] + [1.0] * nrows)
    _headline(fig.add_subplot(grid[0, :]), evaluation)
    step = cols["step"]
    for i, name in enumerate(names):
        ax = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        info, y = describe(name), cols[name]
        for j, key in enumerate(k for k in per_seed if k.split("/", 1)[1] == name):
            seed_label = "each seed" if j == 0 else None
            ax.plot(step, cols[key], color="0.6", linewidth=0.6, alpha=0.6, label=seed_label)
        if is_periodic_eval(name):  # measured every --eval-every meta-steps: points, s.e. band
            at = np.isfinite(y)
            ax.plot(step[at], y[at], "o-", color="C2", linewidth=1.6, markersize=4,
                    label="fresh agents, whole lifetime")  # fmt: skip
            se = cols.get(name + "_se")
            if se is not None:
                ax.fill_between(step[at], y[at] - se[at], y[at] + se[at], color="C2", alpha=0.2,
                                label="± s.e. over agents")  # fmt: skip
            ax.legend(fontsize=7, loc="best")
        elif info.smooth:
            ax.plot(step, y, color="C0", alpha=0.3, linewidth=0.7, label="each meta-step")
            ys = _smooth(y, smooth)
            start = (len(step) - len(ys)) // 2  # centred: the average does not lag
            ax.plot(
                step[start : start + len(ys)], ys, color="C0", linewidth=1.6,
                label=f"moving average ({smooth} steps)",
            )  # fmt: skip
        else:  # counts of events: their running total, not a sawtooth of small integers
            y = np.cumsum(np.nan_to_num(y))
            ax.plot(step, y, color="C1", linewidth=1.6, label="total so far")
        ax.set_yscale(_axis_scale(info.scale, y))
        ax.set_title(info.name, fontsize=9)
        total = not info.smooth and not is_periodic_eval(name)
        unit = info.unit.split(" / ")[0] + " (total)" if total else info.unit
        ax.set_ylabel(unit or info.name, fontsize=8)
        ax.set_xlabel("meta-step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if i == 0 or total:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"lpgx run {run_dir.name}", fontsize=12)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.975))  # room for the suptitle
    out = out if out is not None else run_dir / "learning_curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


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
    """Write ``rule_outputs.png``: what the learned rule outputs on fresh agents' rollouts —
    π̂ against the return-to-go (coloured by the agent's age n/N for a lifetime-conditioned
    rule, with a colour bar), then, on separate axes, the mean of π̂ and its correlation with
    the return-to-go at each age."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    state, trainer = RunDir(run_dir).trained_state()
    rule = state.meta.rule
    conditioned = bool(getattr(rule, "lifetime_conditioning", False))
    fractions = (0.0, 0.25, 0.5, 0.75, 1.0)
    data = rule_outputs(trainer, rule, jax.random.key(seed), fractions)
    fig, (ax1, ax2, ax3) = plt.subplots(
        1, 3, figsize=(15, 4.4), gridspec_kw={"width_ratios": [1.6, 1, 1]}
    )
    x, y, age = data["return_to_go"], data["pi_hat"], data["fraction"]
    if conditioned:
        order = np.argsort(age, kind="stable")  # young agents drawn first, old on top
        points = ax1.scatter(
            x[order], y[order], c=age[order], cmap="viridis", vmin=0.0, vmax=1.0, s=5,
            alpha=0.5, linewidths=0,
        )  # fmt: skip
        bar = fig.colorbar(points, ax=ax1, pad=0.01)
        bar.set_label("agent's age n/N")
    else:  # the rule cannot see the age: every age gives the same points
        sel = age == fractions[0]
        ax1.scatter(x[sel], y[sel], s=5, alpha=0.4, linewidths=0, color="C0")
        ax1.text(
            0.02, 0.97, "rule not lifetime-conditioned:\nthe same at every age",
            transform=ax1.transAxes, va="top", fontsize=8,
        )  # fmt: skip
    ax1.axhline(0.0, color="k", linewidth=0.6)
    ax1.set_xlabel("discounted return-to-go in the rollout")
    ax1.set_ylabel("π̂ (the rule's policy target)")
    ax1.set_title("π̂ against the advantage-like signal", fontsize=10)
    ax1.grid(alpha=0.3)

    means, ses, corrs = [], [], []
    for f in fractions:
        sel = age == f
        xs, ys = x[sel], y[sel]
        means.append(float(np.mean(ys)))
        ses.append(float(np.std(ys, ddof=1) / np.sqrt(ys.size)))
        ok = np.std(xs) > 0 and np.std(ys) > 0
        corrs.append(float(np.corrcoef(xs, ys)[0, 1]) if ok else float("nan"))
    ax2.errorbar(fractions, means, yerr=ses, marker="o", capsize=3, color="C0")
    ax2.axhline(0.0, color="k", linewidth=0.6)
    ax2.set_xlabel("agent's age n/N")
    ax2.set_ylabel("mean π̂ (± s.e.)")
    ax2.set_title("size of the policy target with age", fontsize=10)
    ax3.plot(fractions, corrs, marker="s", color="C2")
    ax3.set_ylim(-1.05, 1.05)
    ax3.axhline(0.0, color="k", linewidth=0.6)
    ax3.set_xlabel("agent's age n/N")
    ax3.set_ylabel("correlation of π̂ with return-to-go")
    ax3.set_title("does π̂ follow the return with age?", fontsize=10)
    for ax in (ax2, ax3):
        ax.set_xticks(fractions)
        ax.grid(alpha=0.3)
    kind = "TA-LPG, lifetime-conditioned" if conditioned else "LPG, not lifetime-conditioned"
    fig.suptitle(
        f"learned rule of {run_dir.name} ({kind}): outputs on fresh agents' rollouts, "
        f"{len(x) // len(fractions)} steps per age"
    )
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

    state, _ = RunDir(run_dir).trained_state()
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
