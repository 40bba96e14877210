"""What a benchmark report says about where it ran (`versions`, `device_info`) and its figure
(`scaling_figure`)."""

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax

from .common import environment_info

__all__ = ["device_info", "scaling_figure", "versions"]


def versions() -> dict[str, str]:
    """Python and library versions."""
    info = environment_info()
    out = {k: str(info[k]) for k in ("python", "jax", "jaxlib", "equinox", "lpgx")}
    for name in ("optax", "numpy", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info(device_count: int) -> dict[str, Any]:
    """The devices, the number used (``--devices``), the host and its current load."""
    info = environment_info()
    return {
        "backend": info["backend"],
        "device_kind": info["device_kind"],
        "devices": info["devices"],
        "device_count": device_count,
        "devices_available": len(info["devices"]),
        "sharded": device_count > 1,  # agents / envs / candidates split over the devices
        "cpu_count": info["cpu_count"],
        "platform": info["platform"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "compilation_cache": getattr(jax.config, "jax_compilation_cache_dir", None),
    }


def scaling_figure(report: dict[str, Any], path: Path) -> Path:
    """Write a PNG of the scaling sweeps of `report`: meta-steps/s and env-steps/s against
    ``num_agents`` (log-log; bars span the repeats' min–max)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_meta, ax_env = fig.subplots(1, 2)
    drawn = 0
    for sweep in report["scaling"]:
        points = sweep.get("points", [])
        if not points:
            continue
        drawn += 1
        n = [p["num_agents"] for p in points]
        meta = [p["meta_steps_per_s"] for p in points]
        meta_err = [
            [m - 1 / p["max_s"] for m, p in zip(meta, points, strict=True)],
            [1 / p["min_s"] - m for m, p in zip(meta, points, strict=True)],
        ]
        env = [p["env_steps_per_s"] for p in points]
        env_err = [
            [e - p["env_steps_per_call"] / p["max_s"] for e, p in zip(env, points, strict=True)],
            [p["env_steps_per_call"] / p["min_s"] - e for e, p in zip(env, points, strict=True)],
        ]
        label = sweep.get("title", sweep["item"])
        ax_meta.errorbar(n, meta, yerr=meta_err, marker="o", capsize=3, label=label)
        ax_env.errorbar(n, env, yerr=env_err, marker="o", capsize=3, label=label)
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:.2g}")
    for ax, ylabel in ((ax_meta, "meta-steps / s"), (ax_env, "env steps / s (incl. gradients)")):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("num_agents (one mini-batch)")
        ax.set_ylabel(ylabel)
        if drawn:
            ax.set_yscale("log")
            low, high = ax.get_ylim()
            # Tick labels at 1, 2, 5 × 10^k; at every digit when the range is narrow.
            subs = (1.0, 2.0, 5.0) if high > 5 * low else tuple(float(d) for d in range(1, 10))
            ax.yaxis.set_major_locator(LogLocator(subs=subs))
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no sweep points", ha="center", va="center", transform=ax.transAxes)
        ax.grid(alpha=0.3, which="both")
    device = report["device"]
    vers = report["versions"]
    fig.suptitle(
        f"lpgx bench --suite {report['suite']}{' (tiny)' if report['tiny'] else ''}: "
        f"{device['device_kind']} ×{device['device_count']} ({device['backend']}), "
        f"jax {vers['jax']}, lpgx {vers['lpgx']}, {report['date']}",
        fontsize=9,
    )
    fig.savefig(path, dpi=110)
    return path
