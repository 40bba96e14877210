"""MGRL on MinAtar: A2C, MGRL and MGRL-LVC, ``--seeds`` runs each, in one command.

    python -m benchmarks.mgrl_minatar --env-steps 150000 --seeds 3 --out runs/mgrl-breakout

Runs ``lpgx train --preset a2c-online | mgrl | mgrl-lvc`` (each a run directory under
``--out``), measures the initial and the final policies' raw scores on fresh games, and draws
one figure: the episode return against environment steps (mean ± s.e. over seeds) and the
learned γ, λ and coefficients over time. Writes ``summary.json`` (wall times, throughput, the
returns and their standard errors) and ``mgrl_minatar.png``.
"""

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

from .common import script_main

METHODS = (("A2C", "a2c-online"), ("MGRL", "mgrl"), ("MGRL-LVC", "mgrl-lvc"))
COLOURS = {"A2C": "C0", "MGRL": "C1", "MGRL-LVC": "C2"}


def _se(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def _policy_scores(trainer: Any, nets: Any, key_seed: int, steps: int) -> list[float]:
    """Mean raw score per seed of the games each seed's policy finishes in `steps` steps."""
    import equinox as eqx
    import jax
    import numpy as np

    keys = jax.vmap(jax.random.key)(np.arange(trainer.seeds, dtype=np.uint32) + key_seed)
    score, ended = eqx.filter_jit(
        eqx.filter_vmap(lambda n, k: trainer.episode_returns(n, k, steps))
    )(nets, keys)
    score, ended = np.asarray(score), np.asarray(ended)
    return [float(score[i][ended[i]].mean()) for i in range(score.shape[0])]


def run_method(
    preset: str, env_mode: str, env_steps: int, seeds: int, out: Path, eval_steps: int
) -> dict[str, Any]:
    """Train one preset's ``seeds`` runs and score their initial and final policies."""
    import equinox as eqx
    import jax

    from lpgx.compose import PRESETS, build_online_trainer
    from lpgx.train import train

    config = dataclasses.replace(
        PRESETS[preset][1], env_mode=env_mode, env_steps=env_steps, seeds=seeds
    )
    t0 = time.perf_counter()
    result = train(config, out / preset, evaluate=False)
    wall = time.perf_counter() - t0
    lines = (out / preset / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(x) for x in lines]
    run_wall = records[-1]["wall_s"]
    trainer = build_online_trainer(config)
    initial = eqx.filter_jit(lambda t, k: jax.vmap(t.init_run)(k).net)(
        trainer, trainer._seed_keys()
    )
    init_scores = _policy_scores(trainer, initial, 10_000, eval_steps)
    final_scores = _policy_scores(trainer, result.state.runs.net, 10_000, eval_steps)  # pyright: ignore[reportAttributeAccessIssue]
    gain = [f - i for f, i in zip(final_scores, init_scores, strict=True)]
    summary = {
        "preset": preset,
        "wall_s_total": wall,
        "wall_s_training": run_wall,
        "env_steps_per_s": seeds * records[-1]["env_steps"] / run_wall,
        "initial_policy_return": init_scores,
        "final_policy_return": final_scores,
        "gain_mean": sum(gain) / len(gain),
        "gain_se": _se(gain),
        "final_gamma": [records[-1].get(f"seed{i}/meta/gamma") for i in range(seeds)],
        "final_lambda": [records[-1].get(f"seed{i}/meta/lambda") for i in range(seeds)],
        "meta_nan_skips": records[-1].get("meta_nan_skips"),
        "jax": jax.__version__,
    }
    (out / preset / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def run(env_mode: str, env_steps: int, seeds: int, out: Path, eval_steps: int) -> dict:
    """Every method in its own process (one compiled program each, memory returned between
    them), then the figure."""
    import subprocess
    import sys

    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "env_mode": env_mode,
        "env_steps_per_seed": env_steps,
        "seeds": seeds,
        "methods": {},
    }
    for label, preset in METHODS:
        args = ["--env-mode", env_mode, "--env-steps", str(env_steps), "--seeds", str(seeds)]
        args += ["--eval-steps", str(eval_steps), "--out", str(out), "--only", preset]
        subprocess.run([sys.executable, "-m", "benchmarks.mgrl_minatar", *args], check=True)
        summary["methods"][label] = json.loads((out / preset / "summary.json").read_text())
        print(label, json.dumps(summary["methods"][label]), flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(out, seeds)
    return summary


def plot(out: Path, seeds: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = (
        ("episode_return", "episode return (raw score, last 64 games)"),
        ("meta/gamma", "learned γ"),
        ("meta/lambda", "learned λ"),
        ("meta/value_coeff", "learned value coefficient"),
        ("meta/entropy_coeff", "learned entropy coefficient"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.6))
    summary = json.loads((out / "summary.json").read_text())
    for label, preset in METHODS:
        rows = [json.loads(x) for x in (out / preset / "metrics.jsonl").read_text().splitlines()]
        x = np.asarray([r["env_steps"] for r in rows], dtype=float)
        for ax, (key, title) in zip(axes, panels, strict=True):
            ys = np.asarray(
                [[r.get(f"seed{i}/{key}", r.get(key)) for i in range(seeds)] for r in rows],
                dtype=float,
            )
            mean = np.nanmean(ys, axis=1)
            se = np.nanstd(ys, axis=1, ddof=1) / np.sqrt(seeds) if seeds > 1 else 0 * mean
            ax.plot(x, mean, color=COLOURS[label], label=label, linewidth=1.4)
            ax.fill_between(x, mean - se, mean + se, color=COLOURS[label], alpha=0.2)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("environment steps per run", fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[-1].set_yscale("log")
    walls = ", ".join(
        f"{k} {v['wall_s_training'] / 60:.1f} min" for k, v in summary["methods"].items()
    )
    fig.suptitle(
        f"{summary['env_mode']}: {seeds} seeds each (mean ± s.e.); training wall time {walls}",
        fontsize=11,
    )
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.94))
    path = out / "mgrl_minatar.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--env-mode", default="minatar:breakout")
    parser.add_argument("--env-steps", type=int, default=150_000, help="per seed and method")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-steps", type=int, default=500, help="steps × 64 games per eval")
    parser.add_argument("--out", type=Path, default=Path("runs/mgrl-minatar"))
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure of --out")
    parser.add_argument("--only", help="run this one preset (used by the parent process)")
    args = parser.parse_args(argv)
    if args.only:
        run_method(args.only, args.env_mode, args.env_steps, args.seeds, args.out, args.eval_steps)
        return
    if args.plot_only:
        print(plot(args.out, args.seeds))
        return
    t0 = time.perf_counter()
    run(args.env_mode, args.env_steps, args.seeds, args.out, args.eval_steps)
    print(
        f"total wall time {time.perf_counter() - t0:.0f} s; figure {args.out / 'mgrl_minatar.png'}"
    )


if __name__ == "__main__":
    script_main(main)
