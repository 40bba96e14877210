"""Grid-world throughput with the GROOVE reference's protocol, for every level-set family.

The timed function samples one level per environment from the level set, resets every
environment and runs a `lax.scan` of ``steps`` vmapped `GridWorld.step`s with uniformly random
actions (automatic resets included), so level sampling and the first reset are timed too (unlike
`benchmarks.env_throughput`, which times the stepping alone). It is compiled ahead of time
(compile time reported apart), warmed up once and timed ``repeats`` times (median).
Throughput is ``num_envs · steps / median``.

Run ``python -m benchmarks.gridworld --help`` for the options, e.g.::

    python -m benchmarks.gridworld --markdown table.md
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import tyro
from rich.console import Console

from lpgx.compose import make_tasks
from lpgx.envs import AbstractTaskDistribution

from .common import report_results, script_main, time_compiled

__all__ = ["REFERENCE", "Config", "Result", "main", "make_timed", "measure", "run"]

# The GROOVE reference (jax 0.4.13) on `all_shortlife`, same protocol, measured by the author of
# issue 18 on a 2-core CPU: env steps/s by number of environments (low, high).
REFERENCE: dict[str, dict[int, tuple[float, float]]] = {
    "all_shortlife": {1: (1.5e6, 1.8e6), 64: (5.4e6, 5.7e6), 4096: (0.77e6, 0.77e6)},
}


@dataclass(frozen=True)
class Config:
    """Options of the reference-protocol grid-world benchmark."""

    level_sets: tuple[str, ...] = ("all_shortlife", "all", "tabular", "mazes", "rand_all")
    """Level sets to run (one per family: `all_*`, the LPG tabular levels, the mazes, and the
    non-tabular `rand_all`)."""
    num_envs: tuple[int, ...] = (1, 64, 4096)
    """Numbers of parallel (vmapped) environments."""
    steps: int = 500
    """Environment steps per timed call (the length of the scan)."""
    repeats: int = 5
    """Timed calls per configuration (the median is reported)."""
    seed: int = 0
    """Seed of the levels, resets and random actions."""
    markdown: Path | None = None
    """Also write the results as a markdown table (with the run's environment) to this file."""


@dataclass(frozen=True)
class Result:
    """Timings of one (level set, number of environments) configuration."""

    level_set: str
    num_envs: int
    steps: int
    compile_s: float
    median_s: float
    min_s: float
    max_s: float

    @property
    def steps_per_s(self) -> float:
        """Environment steps per second (all environments together), from the median."""
        return self.num_envs * self.steps / self.median_s


def make_timed(
    level_set: AbstractTaskDistribution, num_envs: int, steps: int
) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
    """The function timed: sample ``num_envs`` levels, reset, then ``steps`` random-action
    steps. **Returns:** ``timed(key) -> (final observations, total reward)``."""
    env = level_set.env()
    step = jax.vmap(env.step)

    def timed(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_levels, k_reset, k_run = jax.random.split(key, 3)
        levels = jax.vmap(level_set.sample)(jax.random.split(k_levels, num_envs)).level
        state, obs = jax.vmap(env.reset)(jax.random.split(k_reset, num_envs), levels)

        def body(carry: Any, key: jax.Array) -> tuple[Any, None]:
            state, obs, total = carry
            k_action, k_step = jax.random.split(key)
            actions = jax.random.randint(k_action, (num_envs,), 0, env.num_actions, dtype=jnp.int32)
            state, obs, reward, _ = step(jax.random.split(k_step, num_envs), levels, state, actions)
            return (state, obs, total + jnp.sum(reward)), None

        init = (state, obs, jnp.zeros((), jnp.float32))
        (_, obs, total), _ = jax.lax.scan(body, init, jax.random.split(k_run, steps))
        return obs, total

    return timed


def measure(name: str, num_envs: int, steps: int, repeats: int = 5, seed: int = 0) -> Result:
    """Time the reference protocol for level set `name` with `num_envs` environments."""
    if num_envs < 1 or steps < 1:
        raise ValueError(f"num_envs and steps must be positive, got {num_envs} and {steps}")
    timed = make_timed(make_tasks(name), num_envs, steps)
    timing, _ = time_compiled(timed, jax.random.key(seed), repeats=repeats)
    return Result(
        level_set=name,
        num_envs=num_envs,
        steps=steps,
        compile_s=timing.compile_s,
        median_s=timing.median_s,
        min_s=timing.min_s,
        max_s=timing.max_s,
    )


def run(config: Config, console: Console | None = None) -> list[Result]:
    """Measure every (level set, number of environments) pair of `config`."""
    for name in config.level_sets:
        make_tasks(name)  # unknown names fail before anything compiles
    results = []
    for name in config.level_sets:
        for n in config.num_envs:
            if console is not None:
                console.print(f"[dim]{name}: {n} envs × {config.steps} steps…[/dim]")
            results.append(measure(name, n, config.steps, config.repeats, config.seed))
    return results


HEADER = [
    "level set",
    "envs",
    "compile s",
    "median ms",
    "min–max ms",
    "env steps/s",
    "reference env steps/s",
]


def _reference(name: str, n: int) -> str:
    low, high = REFERENCE.get(name, {}).get(n, (0.0, 0.0))
    if not high:
        return "—"
    return f"{low / 1e6:.2f} M" if low == high else f"{low / 1e6:.2f}–{high / 1e6:.2f} M"


def rows(results: list[Result]) -> list[list[str]]:
    """The results as table cells (the columns of `HEADER`)."""
    return [
        [
            r.level_set,
            str(r.num_envs),
            f"{r.compile_s:.2f}",
            f"{1e3 * r.median_s:.1f}",
            f"{1e3 * r.min_s:.1f}–{1e3 * r.max_s:.1f}",
            f"{r.steps_per_s:,.0f}",
            _reference(r.level_set, r.num_envs),
        ]
        for r in results
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = tyro.cli(Config, args=args, prog="python -m benchmarks.gridworld")
    console = Console(stderr=True)
    results = run(config, console)
    report_results(
        "grid-world throughput, reference protocol (levels sampled and reset inside)",
        HEADER,
        rows(results),
        command=" ".join(["python -m benchmarks.gridworld", *args]),
        markdown=config.markdown,
        protocol=[
            f"- protocol: levels sampled and reset inside the timed call, {config.steps} "
            f"random-action steps in a `lax.scan`, median of {config.repeats}; reference "
            "figures: GROOVE (jax 0.4.13) on the same kind of 2-core CPU, from issue 18"
        ],
    )
    return 0


if __name__ == "__main__":
    script_main(main)
