"""`lpgx bias lpg`: the LPG's own meta-gradient, differentiated exactly, as the GROOVE
reference does (stop-gradient on the LPG's inputs) and with the LVC Hessian, each against a
large-sample reference on a small grid world; writes ``DIR/lpg.json`` and ``DIR/lpg.png``."""

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import tyro
from rich.console import Console
from rich.table import Table

from ._output import name_flags

# Library fields named in LPGBiasConfig's errors -> this command's flags.
_FLAGS = {
    "num_agent_updates": "--num-agent-updates",
    "reference_repeats": "--reference-repeats",
    "repeats must": "--repeats must",
    "unknown differentiations": "unknown --differentiations",
}


@dataclass(frozen=True)
class LPGBiasArgs:
    quick: bool = False
    """Reduced sizes (2 agents, 4 workers × 10 steps, K 3, 4 samples, reference of 16)."""
    out: Path = Path("bias_results")
    """Folder for lpg.json and lpg.png (created if missing)."""
    env_mode: str = "dense"
    """Tasks of the agents (a level set, gymnax:NAME or a levels file)."""
    seed: int = 0
    """Seed of the rule, agents and rollouts."""
    num_agent_updates: int | None = None
    """K, the differentiated agent updates (default 5; 3 with --quick)."""
    repeats: int | None = None
    """Meta-gradient samples per method (default 16; 4 with --quick)."""
    reference_repeats: int | None = None
    """Exact meta-gradients averaged into the reference (default 128; 16 with --quick)."""
    differentiations: tuple[str, ...] = ("exact", "stop_gradient", "lvc")
    """Ways of differentiating through the agent updates to measure."""


def _figure(result: dict, path: Path) -> Path:
    from matplotlib.figure import Figure

    methods = list(result["methods"])
    records = [result["methods"][m] for m in methods]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_corr, ax_cos, ax_time = fig.subplots(1, 3)
    xs = range(len(methods))
    ax_corr.bar(xs, [r["corr_mean"] for r in records], yerr=[r["corr_se"] for r in records])
    ax_corr.set_ylabel("correlation of one sample\nwith the reference (± s.e.)")
    ax_cos.bar(xs, [r["mean_cosine"] for r in records])
    ax_cos.set_ylabel("cosine of the method's mean\nwith the reference")
    ax_time.bar(xs, [1e3 * r["seconds_per_meta_gradient"] for r in records])
    ax_time.set_ylabel("ms per meta-gradient")
    for ax in (ax_corr, ax_cos, ax_time):
        ax.set_xticks(list(xs), methods)
        ax.grid(axis="y", alpha=0.3)
    c = result["config"]
    fig.suptitle(
        f"LPG meta-gradient on {result['tasks']}: {c['num_agents']} agents × {c['workers']} × "
        f"{c['rollout_len']}, K {c['num_agent_updates']}, {c['repeats']} samples, reference of "
        f"{c['reference_repeats']} exact samples",
        fontsize=9,
    )
    fig.savefig(path, dpi=110)
    return path


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    args = tyro.cli(LPGBiasArgs, args=argv, prog="lpgx bias lpg", description=__doc__)
    from lpgx.bias import LPGBiasConfig, run_lpg_bias
    from lpgx.compose import make_tasks

    try:
        config = LPGBiasConfig.quick() if args.quick else LPGBiasConfig()
        overrides = {
            k: v
            for k, v in (
                ("num_agent_updates", args.num_agent_updates),
                ("repeats", args.repeats),
                ("reference_repeats", args.reference_repeats),
            )
            if v is not None
        }
        config = replace(
            config, seed=args.seed, differentiations=args.differentiations, **overrides
        )
        tasks = make_tasks(args.env_mode)
    except (ValueError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {name_flags(str(e), _FLAGS)}")
        return 2
    result = run_lpg_bias(tasks, config, lambda what: console.print(f"measuring {what} …"))
    table = Table(title=f"LPG meta-gradient on {result['tasks']}", title_justify="left")
    for column in ("differentiation", "corr (± s.e.)", "mean cosine", "gap", "spread", "ms"):
        table.add_column(column, justify="left" if column == "differentiation" else "right")
    for name, r in result["methods"].items():
        table.add_row(
            name,
            f"{r['corr_mean']:.3f} ± {r['corr_se']:.3f}",
            f"{r['mean_cosine']:.3f}",
            f"{r['relative_gap_to_exact']:.2%}",
            f"{r['spread']:.3g}",
            f"{1e3 * r['seconds_per_meta_gradient']:.1f}",
        )
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lpg.json").write_text(json.dumps(result, indent=1))
    console.print(f"wrote {args.out / 'lpg.json'} and {_figure(result, args.out / 'lpg.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
