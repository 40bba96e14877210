"""What `lpgx train --eval-on` costs at its default interval, against the meta-steps around it.

The run's chunk of meta-steps is compiled ahead of time and run once; then chunks and held-out
evaluations (`lpgx.meta_testing.PeriodicEvaluation`, compiled by its first call, which is timed
apart) alternate ``repeats`` times, so both see the same machine load. The cost is the median
evaluation time over the median time of the meta-steps between two evaluations::

    python -m benchmarks.eval_cost --preset quick --eval-on mazes
"""

import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass

import equinox as eqx
import jax
import tyro

from lpgx.compose import PRESETS, build_trainer
from lpgx.train import eval_interval, periodic_evaluation

from .common import environment_lines

__all__ = ["Config", "main", "measure"]


@dataclass(frozen=True)
class Config:
    """Options of the evaluation-cost benchmark."""

    preset: str = "quick"
    """The `lpgx train` preset whose meta-steps are timed."""
    eval_on: str = "mazes"
    """Held-out task distributions (`--eval-on`)."""
    eval_every: int | None = None
    """`--eval-every` (default: the run's default interval)."""
    repeats: int = 3
    """Alternating chunk / evaluation timings (medians reported)."""


def measure(config: Config) -> dict[str, float]:
    """Median meta-step and evaluation times, the interval and the evaluation's share."""
    if config.preset not in PRESETS:
        raise ValueError(f"unknown preset {config.preset!r}; choose one of {', '.join(PRESETS)}")
    train_config = dataclasses.replace(
        PRESETS[config.preset][1], eval_on=config.eval_on, eval_every=config.eval_every
    )
    trainer = build_trainer(train_config)
    periodic = periodic_evaluation(train_config)
    assert periodic is not None
    interval = eval_interval(train_config, periodic, trainer)
    state = trainer.init()
    chunk = eqx.filter_jit(trainer.run_chunk).lower(state).compile()  # pyright: ignore[reportFunctionMemberAccess]
    state, _ = jax.block_until_ready(chunk(state))
    t0 = time.perf_counter()
    periodic(state.meta.rule)
    first_s = time.perf_counter() - t0
    chunks, evals = [], []
    for _ in range(config.repeats):
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(chunk(state))
        chunks.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        periodic(state.meta.rule)
        evals.append(time.perf_counter() - t0)
    step_s = statistics.median(chunks) / train_config.chunk_size
    eval_s = statistics.median(evals)
    return {
        "meta_step_s": step_s,
        "eval_s": eval_s,
        "eval_first_call_s": first_s,
        "interval": float(interval),
        "eval_env_steps": float(periodic.env_steps),
        "meta_step_env_steps": float(trainer.env_steps_per_meta_step),
        "share_of_meta_step_time": eval_s / (interval * step_s),
    }


def main(argv: list[str] | None = None) -> int:
    config = tyro.cli(Config, args=argv, description=__doc__)
    r = measure(config)
    command = "python -m benchmarks.eval_cost " + " ".join(argv if argv is not None else [])
    print("\n".join(environment_lines(command.strip())))
    print(
        f"{config.preset}, --eval-on {config.eval_on}: meta-step {1e3 * r['meta_step_s']:.0f} ms; "
        f"one evaluation {r['eval_s']:.2f} s ({r['eval_env_steps'] / 1e6:.2f} M env steps; "
        f"first call with compilation {r['eval_first_call_s']:.1f} s); interval "
        f"{r['interval']:.0f} meta-steps ({r['meta_step_env_steps']:.0f} env steps each): "
        f"evaluation = {100 * r['share_of_meta_step_time']:.1f} % of the meta-step time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
