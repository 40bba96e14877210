"""Grid-world throughput: random-action environment steps per second, vmapped over environments.

One jitted call samples nothing and resets nothing: it runs a `lax.scan` of ``steps`` vmapped
`GridWorld.step`s with uniformly random actions over ``num_envs`` environments (each on its own
sampled level), carrying the observations so that none of the step's work is dead code.
Throughput is ``num_envs · steps / median time``; the compile time is reported separately.

Run ``python -m benchmarks.env_throughput --help`` for the options, e.g.::

    python -m benchmarks.env_throughput --num-envs 1 64 4096 --steps 500 --markdown table.md
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
from lpgx.sharding import agent_mesh, shard_agents

from .common import report_results, script_main, time_compiled

__all__ = ["Config", "Result", "main", "make_rollout", "measure", "run"]


@dataclass(frozen=True)
class Config:
    """Options of the environment-throughput benchmark."""

    level_sets: tuple[str, ...] = ("all", "rand_all")
    """Task distributions to run: level sets (one tabular, one non-tabular by default), or
    gymnax:NAME (MinAtar, classic control)."""
    num_envs: tuple[int, ...] = (1, 64, 4096)
    """Numbers of parallel (vmapped) environments."""
    steps: int = 500
    """Environment steps per timed call (the length of the scan)."""
    repeats: int = 5
    """Timed calls per configuration (the median is reported)."""
    seed: int = 0
    """Seed of the sampled levels and the random actions."""
    devices: int = 1
    """Devices the environments are split over (a 1-D mesh); every ``num_envs`` must divide
    by it."""
    markdown: Path | None = None
    """Also write the results as a markdown table (with the run's environment) to this file."""


@dataclass(frozen=True)
class Result:
    """Timings of one (level set, number of environments) configuration."""

    level_set: str
    tabular: bool
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


Carry = tuple[Any, jax.Array, jax.Array]


def make_rollout(
    level_set: AbstractTaskDistribution, num_envs: int, steps: int
) -> Callable[[jax.Array, Any, Any, jax.Array], Carry]:
    """The function timed: ``steps`` vmapped random-action steps from a given state.

    **Returns:** ``rollout(key, levels, state, obs) -> (state, obs, total_reward)``.
    """
    env = level_set.env()
    step = jax.vmap(env.step)

    def rollout(key: jax.Array, levels: Any, state: Any, obs: jax.Array) -> Carry:
        def body(carry: Carry, key: jax.Array) -> tuple[Carry, None]:
            state, obs, total = carry
            k_action, k_step = jax.random.split(key)
            actions = jax.random.randint(k_action, (num_envs,), 0, env.num_actions, dtype=jnp.int32)
            state, obs, reward, _ = step(jax.random.split(k_step, num_envs), levels, state, actions)
            return (state, obs, total + jnp.sum(reward)), None

        init = (state, obs, jnp.zeros((), jnp.float32))
        out, _ = jax.lax.scan(body, init, jax.random.split(key, steps))
        return out

    return rollout


def _initial(
    level_set: AbstractTaskDistribution, num_envs: int, key: jax.Array
) -> tuple[Any, Any, Any]:
    env = level_set.env()
    k_levels, k_reset = jax.random.split(key)
    tasks = jax.jit(jax.vmap(level_set.sample))(jax.random.split(k_levels, num_envs))
    state, obs = jax.jit(jax.vmap(env.reset))(jax.random.split(k_reset, num_envs), tasks.level)
    return tasks.level, state, obs


def measure(
    name: str, num_envs: int, steps: int, repeats: int = 5, seed: int = 0, devices: int = 1
) -> Result:
    """Time ``steps`` random-action steps of ``num_envs`` environments of level set `name`,
    split over `devices` devices."""
    if num_envs < 1 or steps < 1:
        raise ValueError(f"num_envs and steps must be positive, got {num_envs} and {steps}")
    mesh = agent_mesh(devices)
    if num_envs % devices:
        raise ValueError(
            f"{num_envs} environments cannot be split over {devices} devices: use a multiple "
            f"of {devices} environments, or fewer --devices."
        )
    level_set = make_tasks(name)
    key = jax.random.key(seed)
    k_init, k_run = jax.random.split(key)
    levels, state, obs = shard_agents(_initial(level_set, num_envs, k_init), mesh)
    rollout = make_rollout(level_set, num_envs, steps)
    timing, _ = time_compiled(rollout, k_run, levels, state, obs, repeats=repeats)
    return Result(
        level_set=name,
        tabular=bool(getattr(level_set, "tabular", False)),
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
            results.append(
                measure(name, n, config.steps, config.repeats, config.seed, config.devices)
            )
    return results


HEADER = [
    "level set",
    "tabular",
    "envs",
    "steps/call",
    "compile s",
    "median ms",
    "min–max ms",
    "env steps/s",
]


def rows(results: list[Result]) -> list[list[str]]:
    """The results as table cells (the columns of `HEADER`)."""
    return [
        [
            r.level_set,
            "yes" if r.tabular else "no",
            str(r.num_envs),
            str(r.steps),
            f"{r.compile_s:.2f}",
            f"{1e3 * r.median_s:.1f}",
            f"{1e3 * r.min_s:.1f}–{1e3 * r.max_s:.1f}",
            f"{r.steps_per_s:,.0f}",
        ]
        for r in results
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = tyro.cli(Config, args=args, prog="python -m benchmarks.env_throughput")
    console = Console(stderr=True)
    results = run(config, console)
    report_results(
        "grid-world throughput (random actions)",
        HEADER,
        rows(results),
        command=" ".join(["python -m benchmarks.env_throughput", *args]),
        markdown=config.markdown,
    )
    return 0


if __name__ == "__main__":
    script_main(main)
