"""`lpgx bias lola`: LOLA-DiCE on the iterated prisoner's dilemma, sampled against exact.

``lpgx bias lola --variant NAME… [--seeds 10] [--iterations 500] [--out DIR] [--quick]`` runs each
named variant (see `lpgx.bias.LOLA_VARIANTS`, or ``all``) for all seeds in one compiled call and
writes ``DIR/lola.json`` (per variant and seed: joint return, meta-gradient correlation with the
exact one and the exact-outer correlation at every iteration, plus summaries) and
``DIR/lola.png`` (joint return and correlation against iteration, one line per variant, shaded
± one standard error over seeds). Progress and the summary table go to stderr.
"""

import dataclasses
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from jaxtyping import Array
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lpgx.bias import LOLA_VARIANTS, LolaConfig, compile_lola, get_lola_variant

__all__ = ["LolaArgs", "main", "plot_lola", "summarise"]

# --quick: enough to see every variant compile and run, not to read its curves.
_QUICK_SEEDS = 2
_QUICK_ITERATIONS = 20


@dataclasses.dataclass(frozen=True)
class LolaArgs:
    variant: tuple[str, ...] = ("original_128_128",)
    """Variants to run (names from `lpgx.bias.LOLA_VARIANTS`), or `all`."""
    seeds: int = 10
    """Seeds 0 … seeds−1, vmapped in one compiled call per variant."""
    iterations: int = 500
    """LOLA iterations per run."""
    out: Path = Path("results/lola")
    """Folder for lola.json and lola.png (created if missing)."""
    seeds_per_batch: int | None = None
    """Seeds vmapped together (default: all); fewer are looped inside the same compiled call."""
    quick: bool = False
    """A smoke-test size: 2 seeds and 20 iterations (overrides --seeds and --iterations)."""


def _variant_names(requested: tuple[str, ...]) -> list[str]:
    names = list(LOLA_VARIANTS) if "all" in requested else list(dict.fromkeys(requested))
    unknown = [n for n in names if n not in LOLA_VARIANTS]
    if unknown or not names:
        shown = ", ".join(repr(n) for n in unknown) or "none given"
        raise ValueError(
            f"unknown LOLA variant(s) {shown}; choose from: {', '.join(LOLA_VARIANTS)} (or all)"
        )
    return names


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and standard error over the first axis (s.e. 0 for one seed)."""
    n = x.shape[0]
    se = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return float(np.mean(x)), se


def summarise(metrics: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-variant summary of ``[seeds, iterations]`` metric arrays.

    ``final_joint_return``: each seed's joint return averaged over the last 10% of iterations
    (at least one), then mean ± s.e. over seeds; ``*_corr``: each seed's correlation averaged
    over all iterations, then mean ± s.e. over seeds.
    """
    joint = metrics["joint_return"]
    tail = max(1, joint.shape[1] // 10)
    out: dict[str, float] = {}
    for key, per_seed in (
        ("final_joint_return", joint[:, -tail:].mean(axis=1)),
        ("final_exact_return", metrics["exact_return"][:, -tail:].mean(axis=1)),
        ("mean_corr", metrics["corr"].mean(axis=1)),
        ("mean_corr_outer_exact", metrics["corr_outer_exact"].mean(axis=1)),
    ):
        mean, se = _mean_se(per_seed)
        out[key] = mean
        out[f"{key}_se"] = se
    return out


def plot_lola(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """Joint return and correlation against iteration, one line per variant, ± s.e. bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    # 11 variants: the default colour cycle has only 10.
    colours = [plt.get_cmap("tab20")(i / 19) for i in range(20)]
    iterations = len(next(iter(results.values()))["corr"][0]) if results else 1
    # One iteration's correlation is a noisy 5-dimensional statistic: show a moving average.
    window = max(1, min(20, iterations // 10))
    panels = (
        ("joint_return", "joint return (mean reward per step)", 1),
        ("corr", f"corr (moving average over {window} iterations)", window),
    )
    for ax, (key, label, w) in zip(axes, panels, strict=True):
        for i, (name, res) in enumerate(results.items()):
            x = np.asarray(res[key], dtype=np.float64)
            if w > 1:
                kernel = np.ones(w) / w
                x = np.stack([np.convolve(row, kernel, mode="valid") for row in x])
            mean = x.mean(axis=0)
            se = x.std(axis=0, ddof=1) / math.sqrt(x.shape[0]) if x.shape[0] > 1 else 0 * mean
            steps = np.arange(x.shape[1]) + w
            colour = colours[i % len(colours)]
            ax.plot(steps, mean, label=name, linewidth=1.2, color=colour)
            ax.fill_between(steps, mean - se, mean + se, color=colour, alpha=0.2)
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].set_title("Pearson correlation with the exact meta-gradient")
    axes[0].set_title("LOLA-DiCE on the IPD (band: ± s.e. over seeds)")
    axes[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "equinox", "optax", "lpgx"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _config_dict(config: LolaConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def run(args: LolaArgs, console: Console) -> int:
    """Run the variants of `args`; returns the exit status."""
    seeds = _QUICK_SEEDS if args.quick else args.seeds
    iterations = _QUICK_ITERATIONS if args.quick else args.iterations
    # Every user error is reported here, before anything compiles.
    try:
        names = _variant_names(args.variant)
        if seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {seeds}")
        if iterations < 1:
            raise ValueError(f"--iterations must be at least 1, got {iterations}")
        if args.seeds_per_batch is not None and args.seeds_per_batch < 1:
            raise ValueError(f"--seeds-per-batch must be at least 1, got {args.seeds_per_batch}")
        configs = {
            n: dataclasses.replace(get_lola_variant(n), iterations=iterations).validate()
            for n in names
        }
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file; give a folder")
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    seed_array = jnp.arange(seeds, dtype=jnp.int32)
    results: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )

    def compile_timed(config: LolaConfig) -> tuple[Callable[[Array], Any], float]:
        t0 = time.perf_counter()
        compiled = compile_lola(config, seeds, args.seeds_per_batch)
        return compiled, time.perf_counter() - t0

    # Compilation is mostly single-threaded and a run keeps both cores only partly busy, so the
    # next variants compile on a worker thread while the current one runs (XLA releases the GIL
    # in both). Each variant's compile time is still measured on its own.
    compiler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lola-compile")
    try:
        pending = {name: compiler.submit(compile_timed, c) for name, c in configs.items()}
        with progress:
            task = progress.add_task("variants", total=len(names))
            for name, config in configs.items():
                progress.update(task, description=f"{name} (compiling)")
                compiled, compile_s = pending[name].result()
                t1 = time.perf_counter()
                progress.update(task, description=f"{name} ({seeds} seeds × {iterations} it.)")
                _, metrics = compiled(seed_array)
                metrics = jax.block_until_ready(metrics)
                run_s = time.perf_counter() - t1
                arrays = {
                    k: np.asarray(getattr(metrics, k))
                    for k in ("joint_return", "corr", "corr_outer_exact", "exact_return")
                }
                results[name] = {
                    "description": config.description,
                    "config": _config_dict(config),
                    "compile_s": compile_s,
                    "run_s": run_s,
                    "summary": summarise(arrays),
                    **{k: v.tolist() for k, v in arrays.items()},
                }
                progress.advance(task)
                if not console.is_terminal:
                    console.print(f"{name}: compiled in {compile_s:.1f} s, ran in {run_s:.1f} s")
    finally:
        # On an error or Ctrl-C, do not wait for compilations nobody will run.
        compiler.shutdown(wait=False, cancel_futures=True)
    total = time.perf_counter() - start

    payload = {
        "seeds": list(range(seeds)),
        "iterations": iterations,
        "seeds_per_batch": args.seeds_per_batch or seeds,
        "total_s": total,
        "device": str(jax.devices()[0]),
        "versions": _versions(),
        "metrics": {
            "joint_return": "mean reward per step of a score rollout, both players averaged",
            "corr": "Pearson(sampled meta-gradient, exact meta-gradient), players averaged",
            "corr_outer_exact": "Pearson(exact outer gradient at the sampled lookahead, exact)",
            "exact_return": "(1 - gamma) * exact discounted value, players averaged",
        },
        "variants": results,
    }
    json_path = args.out / "lola.json"
    json_path.write_text(json.dumps(payload))
    png_path = plot_lola(results, args.out / "lola.png")

    table = Table(title=f"LOLA-DiCE on the IPD — {seeds} seeds × {iterations} iterations")
    table.add_column("variant", no_wrap=True)
    for col in ("final joint return", "mean corr", "corr (exact outer)", "compile s"):
        table.add_column(col, justify="right")
    table.add_column("run s", justify="right")
    for name, res in results.items():
        s = res["summary"]
        table.add_row(
            name,
            f"{s['final_joint_return']:.3f} ± {s['final_joint_return_se']:.3f}",
            f"{s['mean_corr']:.3f} ± {s['mean_corr_se']:.3f}",
            f"{s['mean_corr_outer_exact']:.3f} ± {s['mean_corr_outer_exact_se']:.3f}",
            f"{res['compile_s']:.1f}",
            f"{res['run_s']:.1f}",
        )
    console.print(table)
    console.print(
        f"total {total:.1f} s; wrote [bold]{json_path}[/bold] and [bold]{png_path}[/bold]"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `lpgx bias lola`; returns the exit status."""
    console = Console(stderr=True)
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = tyro.cli(
            LolaArgs,
            args=args_list,
            prog="lpgx bias lola",
            description="LOLA-DiCE on the iterated prisoner's dilemma: sampled meta-gradients "
            "against the exact one. Variants: " + ", ".join(LOLA_VARIANTS) + ".",
            config=(tyro.conf.FlagCreatePairsOff,),
        )
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return run(args, console)


if __name__ == "__main__":
    sys.exit(main())
