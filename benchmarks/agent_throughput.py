"""Agent-update throughput: `agent_update` (rollout + gradient step) vmapped over agents.

One jitted call runs a `lax.scan` of ``updates`` calls of `agent_update` with the A2C rule,
vmapped (`eqx.filter_vmap`) over ``agents`` agents, each on its own sampled task. Each call of
`agent_update` is one rollout of ``workers × rollout_len`` environment steps and one optimiser
step, so throughput is ``agents · workers · rollout_len · updates / median time`` environment
steps per second *including* the loss, gradient and optimiser step. Every timed call starts from
the same fresh agents, so all updates are inside the agents' lifetimes (none are gated off).
The compile time is reported separately.

Run ``python -m benchmarks.agent_throughput --help`` for the options, e.g.::

    python -m benchmarks.agent_throughput --num-agents 1 8 64 --updates 10 --markdown table.md
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import tyro
from rich.console import Console

from lpgx.envs import LevelSet, Task, get_level_set
from lpgx.lifetime import AgentState, Learner, agent_update
from lpgx.rules import A2C, AbstractUpdateRule
from lpgx.sharding import agent_mesh, check_divisible, shard_agents

from .common import report_results, script_main, time_compiled

__all__ = ["Config", "Result", "init_agents", "main", "make_updates", "measure", "run"]


@dataclass(frozen=True)
class Config:
    """Options of the agent-update throughput benchmark."""

    level_sets: tuple[str, ...] = ("all_shortlife", "rand_all")
    """Level sets to run (one tabular, one non-tabular with the MLP agent by default)."""
    num_agents: tuple[int, ...] = (1, 8, 64)
    """Numbers of agents updated in parallel (vmapped)."""
    updates: int = 10
    """`agent_update` calls per timed call (the length of the scan)."""
    workers: int = 64
    """Parallel environments (workers) per agent."""
    rollout_len: int = 20
    """Environment steps per worker per update."""
    repeats: int = 5
    """Timed calls per configuration (the median is reported)."""
    seed: int = 0
    """Seed of the sampled tasks, the agents and the updates."""
    devices: int = 1
    """Devices the agents are split over (a 1-D ``"agents"`` mesh); every ``num_agents``
    must divide by it."""
    markdown: Path | None = None
    """Also write the results as a markdown table (with the run's environment) to this file."""


@dataclass(frozen=True)
class Result:
    """Timings of one (level set, number of agents) configuration."""

    level_set: str
    tabular: bool
    num_agents: int
    workers: int
    rollout_len: int
    updates: int
    compile_s: float
    median_s: float
    min_s: float
    max_s: float

    @property
    def env_steps(self) -> int:
        """Environment steps per timed call (all agents together)."""
        return self.num_agents * self.workers * self.rollout_len * self.updates

    @property
    def steps_per_s(self) -> float:
        """Environment steps per second, gradient steps included, from the median."""
        return self.env_steps / self.median_s

    @property
    def updates_per_s(self) -> float:
        """Agent updates (one rollout + one optimiser step each) per second, all agents."""
        return self.num_agents * self.updates / self.median_s


def init_agents(
    level_set: LevelSet, learner: Learner, rule: AbstractUpdateRule, num_agents: int, key: jax.Array
) -> AgentState:
    """``num_agents`` fresh agents (stacked), each on its own task sampled from `level_set`."""
    k_tasks, k_agents = jax.random.split(key)
    tasks = jax.jit(jax.vmap(level_set.sample))(jax.random.split(k_tasks, num_agents))

    @eqx.filter_jit
    def init(keys: jax.Array, tasks: Task) -> AgentState:
        return eqx.filter_vmap(lambda k, t: learner.init(k, t, rule))(keys, tasks)

    return init(jax.random.split(k_agents, num_agents), tasks)


def make_updates(
    learner: Learner, rule: AbstractUpdateRule, num_agents: int, updates: int
) -> Callable[[AgentState, jax.Array], tuple[AgentState, jax.Array]]:
    """The function timed: ``updates`` vmapped `agent_update` calls from the given agents.

    **Returns:** ``run(agents, key) -> (agents, losses)`` with ``losses[update, agent]``.
    """

    def update_one(agent: AgentState, key: jax.Array) -> tuple[AgentState, jax.Array]:
        agent, metrics = agent_update(learner, rule, agent, key)
        return agent, metrics["loss"]

    update_all = eqx.filter_vmap(update_one)

    def run(agents: AgentState, key: jax.Array) -> tuple[AgentState, jax.Array]:
        def body(agents: AgentState, k: jax.Array) -> tuple[AgentState, jax.Array]:
            return update_all(agents, jax.random.split(k, num_agents))

        return jax.lax.scan(body, agents, jax.random.split(key, updates))

    return run


def measure(
    name: str,
    num_agents: int,
    updates: int = 10,
    workers: int = 64,
    rollout_len: int = 20,
    repeats: int = 5,
    seed: int = 0,
    devices: int = 1,
) -> Result:
    """Time ``updates`` A2C updates of ``num_agents`` agents on level set `name`, the agents
    split over `devices` devices."""
    if min(num_agents, updates, workers, rollout_len) < 1:
        raise ValueError(
            "num_agents, updates, workers and rollout_len must be positive, got "
            f"{num_agents}, {updates}, {workers} and {rollout_len}"
        )
    mesh = agent_mesh(devices)
    check_divisible(num_agents, 1, mesh)
    level_set = get_level_set(name)
    learner = Learner.for_tasks(level_set, num_workers=workers, rollout_len=rollout_len)
    rule = A2C()
    k_init, k_run = jax.random.split(jax.random.key(seed))
    agents = shard_agents(init_agents(level_set, learner, rule, num_agents, k_init), mesh)
    timing, (_, losses) = time_compiled(
        make_updates(learner, rule, num_agents, updates), agents, k_run, repeats=repeats
    )
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise FloatingPointError(f"{name}: non-finite A2C loss in the timed updates")
    return Result(
        level_set=name,
        tabular=level_set.tabular,
        num_agents=num_agents,
        workers=workers,
        rollout_len=rollout_len,
        updates=updates,
        compile_s=timing.compile_s,
        median_s=timing.median_s,
        min_s=timing.min_s,
        max_s=timing.max_s,
    )


def run(config: Config, console: Console | None = None) -> list[Result]:
    """Measure every (level set, number of agents) pair of `config`."""
    for name in config.level_sets:
        get_level_set(name)  # unknown names fail before anything compiles
    results = []
    for name in config.level_sets:
        for n in config.num_agents:
            if console is not None:
                console.print(
                    f"[dim]{name}: {n} agents × {config.updates} updates of "
                    f"{config.workers}×{config.rollout_len} steps…[/dim]"
                )
            results.append(
                measure(
                    name,
                    n,
                    config.updates,
                    config.workers,
                    config.rollout_len,
                    config.repeats,
                    config.seed,
                    config.devices,
                )
            )
    return results


HEADER = [
    "level set",
    "agent",
    "agents",
    "W×T",
    "updates/call",
    "compile s",
    "median ms",
    "min–max ms",
    "ms/update (all agents)",
    "agent updates/s",
    "env steps/s",
]


def rows(results: list[Result]) -> list[list[str]]:
    """The results as table cells (the columns of `HEADER`)."""
    return [
        [
            r.level_set,
            "tabular" if r.tabular else "MLP",
            str(r.num_agents),
            f"{r.workers}×{r.rollout_len}",
            str(r.updates),
            f"{r.compile_s:.2f}",
            f"{1e3 * r.median_s:.1f}",
            f"{1e3 * r.min_s:.1f}–{1e3 * r.max_s:.1f}",
            f"{1e3 * r.median_s / r.updates:.2f}",
            f"{r.updates_per_s:,.0f}",
            f"{r.steps_per_s:,.0f}",
        ]
        for r in results
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = tyro.cli(Config, args=args, prog="python -m benchmarks.agent_throughput")
    console = Console(stderr=True)
    results = run(config, console)
    report_results(
        "agent_update throughput (A2C; rollout + gradient step)",
        HEADER,
        rows(results),
        command=" ".join(["python -m benchmarks.agent_throughput", *args]),
        markdown=config.markdown,
        left_columns=2,
    )
    return 0


if __name__ == "__main__":
    script_main(main)
