"""PNG figures of the tabular bias experiments in the paper's layout.

One panel per (metric, group); within a panel one line per pattern, estimator, α or N against the
swept quantity, with error bars of one standard error over MDPs.
"""

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LAYOUTS", "plot_tabular"]

# experiment -> (x field, line field, panel field, metrics, log-x, log-y)
LAYOUTS: dict[str, tuple[str, str, str, tuple[str, ...], bool, bool]] = {
    "decompose": ("num_samples", "pattern", "estimator", ("corr", "var"), True, False),
    "lr": ("alpha", "pattern", "estimator", ("corr", "var"), False, False),
    "steps": ("steps", "pattern", "estimator", ("corr", "var"), False, False),
    "comp-lr": ("alpha", "estimator", "pattern", ("grad_mse", "sq_bias"), False, True),
    "comp-sample": ("num_samples", "estimator", "pattern", ("grad_mse", "sq_bias"), True, True),
    "comp-steps": ("steps", "estimator", "pattern", ("grad_mse", "sq_bias"), False, True),
    "hessian": ("hessian_error", "alpha", "pattern", ("grad_mse", "sq_bias"), False, True),
    "lirpg": ("steps", "num_samples", "estimator", ("corr", "var"), False, False),
}

_LABELS = {
    "num_samples": "trajectories per sampled piece N",
    "alpha": "inner learning rate α",
    "steps": "inner steps K",
    "hessian_error": "injected Hessian error c",
    "corr": "correlation with exact",
    "var": "Σ std over repeats",
    "grad_mse": "grad_mse",
    "sq_bias": "squared bias (variance removed)",
}


def plot_tabular(result: dict[str, Any], path: Path) -> None:
    """Write the figure of one `run_tabular` result to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experiment = result["experiment"]
    x_key, line_key, panel_key, metrics, log_x, log_y = LAYOUTS[experiment]
    records = result["records"]
    panels = list(dict.fromkeys(r[panel_key] for r in records))
    lines = list(dict.fromkeys(r[line_key] for r in records))
    fig, axes = plt.subplots(
        len(metrics),
        len(panels),
        figsize=(4.2 * len(panels), 3.2 * len(metrics)),
        squeeze=False,
        constrained_layout=True,
    )
    for row, metric in enumerate(metrics):
        for col, panel in enumerate(panels):
            ax = axes[row][col]
            for line in lines:
                sel = [r for r in records if r[panel_key] == panel and r[line_key] == line]
                if not sel:
                    continue
                sel.sort(key=lambda r: r[x_key])
                xs = [r[x_key] for r in sel]
                vals = [np.asarray(r[metric], np.float64) for r in sel]
                means = [float(v.mean()) for v in vals]
                ses = [
                    float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0 for v in vals
                ]
                ax.errorbar(xs, means, yerr=ses, marker="o", ms=3, capsize=2, label=str(line))
            if log_x:
                ax.set_xscale("log", base=2)
            if log_y and all(
                float(np.mean(r[metric])) > 0 for r in records if r[panel_key] == panel
            ):
                ax.set_yscale("log")
            ax.set_xlabel(_LABELS[x_key])
            ax.set_ylabel(_LABELS[metric])
            ax.set_title(f"{experiment}: {panel_key} {panel}")
            ax.grid(alpha=0.3)
            if row == 0 and col == len(panels) - 1:
                ax.legend(title=line_key, fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)
