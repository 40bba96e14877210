"""Figures of a run directory: learning curves from ``metrics.jsonl``."""

import json
from pathlib import Path

import numpy as np

__all__ = ["load_metrics", "plot_learning_curves"]

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
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
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
