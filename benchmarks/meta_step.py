"""Meta-gradient step: one `MetaGradient.step` (K unrolled agent updates, the outer rollout,
the meta-gradient through them, clipping and Adam) for a population of agents.

The timed function is ``MetaGradient.step(meta_state, agents, key)`` of the
`lpgx.train.Trainer` built from a `TrainConfig` (the default LPG: a backward GRU of 256 units),
applied to the initial rule and fresh agents on sampled tasks. Lifetimes are not staggered and
every timed call starts from the same agents, so all K updates are inside the agents'
lifetimes. Each meta-step runs
``agents · (K + 1) · workers · rollout_len`` environment steps (K updates plus the outer
rollout); the compile time is reported separately (protocol of `benchmarks.common`).

Run ``python -m benchmarks.meta_step`` for the CPU acceptance configuration (8 agents, one
mini-batch, 64 workers × 20 steps, K = 5 on ``all_shortlife``), ``--help`` for the options.
"""

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Annotated, Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import tyro
from rich.console import Console
from rich.table import Table

from lpgx.compose import TrainConfig
from lpgx.sharding import (
    agent_mesh,
    check_divisible,
    peak_memory_bytes,
    replicate,
    shard_agents,
)

from .common import Timing, environment_info, script_main, time_compiled

__all__ = ["Config", "Prepared", "Result", "main", "measure"]


@dataclass(frozen=True)
class Config:
    """Options of the meta-gradient step benchmark (defaults: the CPU acceptance config)."""

    level_set: str = "all_shortlife"
    """Level set the agents' tasks are sampled from."""
    num_agents: int = 8
    """Agents per meta-step (the meta-gradient is their mean)."""
    num_mini_batches: int = 1
    """Sequential vmapped groups of agents; must divide num_agents."""
    workers: int = 64
    """Parallel environments per agent."""
    rollout_len: int = 20
    """Environment steps per worker per rollout."""
    num_agent_updates: int = 5
    """K: unrolled agent updates per meta-step."""
    lpg_gru_width: int = 256
    """Width of the LPG's recurrent core."""
    lpg_core: Literal["gru", "lstm"] = "gru"
    """Recurrent core of the LPG."""
    lpg_dtype: Literal["float32", "bfloat16"] = "float32"
    """Compute dtype of the LPG's recurrent core (parameters stay float32)."""
    repeats: int = 5
    """Timed meta-steps (the median is reported)."""
    seed: int = 0
    """Seed of the rule, tasks, agents and meta-step key."""
    task_pool: int = 64
    """Distinct tasks sampled; more agents than this cycle through them."""
    devices: int = 1
    """Devices the agents are split over (a 1-D ``"agents"`` mesh; the rule is replicated);
    each mini-batch must divide by it."""

    def train_config(self) -> TrainConfig:
        """The `TrainConfig` this benchmark builds its trainer from (validates the sizes)."""
        return TrainConfig(
            env_mode=self.level_set,
            seed=self.seed,
            num_agents=self.num_agents,
            num_mini_batches=self.num_mini_batches,
            env_workers=self.workers,
            train_rollout_len=self.rollout_len,
            num_agent_updates=self.num_agent_updates,
            lpg_gru_width=self.lpg_gru_width,
            lpg_core=self.lpg_core,
            lpg_dtype=self.lpg_dtype,
            stagger=False,
            devices=self.devices,
        )


@dataclass(frozen=True)
class Result:
    """Timings of one meta-gradient step configuration (seconds)."""

    config: Config
    timing: Timing
    """Compile time and the timed repeats (`benchmarks.common` protocol)."""
    init_s: float
    """Building the trainer, the rule, the tasks and the agents (compilation included)."""
    peak_memory_bytes: int | None
    """The device's peak memory in use after the run, where the backend reports it."""
    metrics: dict[str, float] = field(default_factory=dict)
    """The last timed meta-step's metrics (all finite)."""

    @property
    def compile_s(self) -> float:
        return self.timing.compile_s

    @property
    def times_s(self) -> tuple[float, ...]:
        return self.timing.times_s

    @property
    def median_s(self) -> float:
        return self.timing.median_s

    @property
    def min_s(self) -> float:
        return self.timing.min_s

    @property
    def max_s(self) -> float:
        return self.timing.max_s

    @property
    def spread(self) -> float:
        """``(max - min) / median``: the relative spread of the repeats."""
        return self.timing.spread

    @property
    def env_steps_per_meta_step(self) -> int:
        c = self.config
        return c.num_agents * (c.num_agent_updates + 1) * c.workers * c.rollout_len

    @property
    def meta_steps_per_s(self) -> float:
        return 1.0 / self.median_s

    @property
    def env_steps_per_s(self) -> float:
        """Environment steps per second (K updates + outer rollout, all agents), from the
        median; includes every gradient computed in the meta-step."""
        return self.env_steps_per_meta_step / self.median_s

    def to_json(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "compile_s": self.compile_s,
            "median_s": self.median_s,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "spread": self.spread,
            "times_s": list(self.times_s),
            "init_s": self.init_s,
            "env_steps_per_meta_step": self.env_steps_per_meta_step,
            "meta_steps_per_s": self.meta_steps_per_s,
            "env_steps_per_s": self.env_steps_per_s,
            "peak_memory_bytes": self.peak_memory_bytes,
            "metrics": self.metrics,
        }


class Prepared:
    """What a meta-step benchmark needs besides the agents, built once per configuration:
    the trainer, the initial rule and its optimiser state, and a pool of sampled tasks.

    `measure` then times the meta-step for any number of agents (the scaling sweep reuses one
    `Prepared`); ``config.num_agents`` only sets the default. Agents beyond the pool's size
    cycle through its tasks (each agent still has its own parameters and workers): the cost of
    a meta-step depends on shapes, not on which levels were drawn, and the level sampler is
    compiled once instead of once per size.
    """

    def __init__(self, config: Config):
        if config.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {config.repeats}")
        if config.task_pool < 1:
            raise ValueError(f"task_pool must be at least 1, got {config.task_pool}")
        self.config = config
        train_config = config.train_config()  # validates the sizes before anything compiles
        from lpgx.compose import build_trainer  # deferred: `--help` stays fast

        start = time.perf_counter()
        self.trainer = build_trainer(train_config)
        k_rule, k_meta, k_tasks, self._k_agents, self._k_step = jax.random.split(
            jax.random.key(config.seed), 5
        )
        rule = _init_rule(self.trainer, k_rule)
        self.meta = self.trainer.meta_opt.init(rule, k_meta)
        self.pool = _sample_tasks(self.trainer.tasks, jax.random.split(k_tasks, config.task_pool))
        jax.block_until_ready((self.meta, self.pool))
        self.init_s = time.perf_counter() - start

    def measure(self, num_agents: int | None = None, repeats: int | None = None) -> Result:
        """Compile one meta-gradient step for `num_agents` agents and time it.

        Raises `ValueError` for a bad number of agents before anything compiles, and
        `FloatingPointError` if the timed meta-step's metrics are not finite.
        """
        n = self.config.num_agents if num_agents is None else num_agents
        repeats = self.config.repeats if repeats is None else repeats
        config = replace(self.config, num_agents=n, repeats=repeats)
        config.train_config()  # e.g. num_agents not divisible by num_mini_batches
        mesh = agent_mesh(config.devices)
        check_divisible(n, config.num_mini_batches, mesh)
        start = time.perf_counter()
        tasks = jax.tree.map(lambda x: x[jnp.arange(n) % self.config.task_pool], self.pool)
        agents = _init_agents(self.trainer.meta_opt, self._k_agents, tasks, self.meta.rule)
        agents = shard_agents(agents, mesh)
        meta = replicate(self.meta, mesh)
        jax.block_until_ready(agents)
        init_s = self.init_s + time.perf_counter() - start
        # The rule holds non-array leaves (activation functions): only arrays cross the jit
        # boundary, as in `Trainer.run_chunk`.
        dynamic, static = eqx.partition((meta, agents), eqx.is_array)
        meta_opt = self.trainer.meta_opt

        def step(d: Any, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
            meta, agents = eqx.combine(d, static)
            meta, agents, metrics = meta_opt.step(meta, agents, key)
            return eqx.filter((meta, agents), eqx.is_array), metrics

        timing, (_, metrics) = time_compiled(step, dynamic, self._k_step, repeats=repeats)
        host = {k: float(v) for k, v in metrics.items()}
        bad = sorted(k for k, v in host.items() if not math.isfinite(v))
        if bad:
            raise FloatingPointError(f"non-finite meta-step metrics: {', '.join(bad)}")
        return Result(
            config=config,
            timing=timing,
            init_s=init_s,
            peak_memory_bytes=peak_memory_bytes(config.devices),
            metrics=host,
        )


@eqx.filter_jit
def _init_rule(trainer: Any, key: jax.Array) -> Any:
    return trainer.init_rule(key)


@eqx.filter_jit
def _sample_tasks(levels: Any, keys: jax.Array) -> Any:
    return jax.vmap(levels.sample)(keys)


@eqx.filter_jit
def _init_agents(meta_opt: Any, key: jax.Array, tasks: Any, rule: Any) -> Any:
    return meta_opt.init_agents(key, tasks, rule)


def measure(config: Config) -> Result:
    """Build everything `config` needs, compile one meta-gradient step and time it."""
    return Prepared(config).measure()


@dataclass(frozen=True)
class Args:
    config: Annotated[Config, tyro.conf.arg(name="")]
    json_out: Annotated[bool, tyro.conf.arg(name="json")] = False
    """Print the result (with config, device and versions) as JSON on stdout."""


# Targets of the issue for the default (acceptance) configuration on the 2-core CPU host.
TARGET_MEDIAN_S = 3.0
TARGET_COMPILE_S = 30.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True)
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(stderr=True, width=160)
    try:
        args = tyro.cli(
            Args,
            default=Args(config=Config()),
            args=args_list,
            prog="python -m benchmarks.meta_step",
            description=__doc__.split("\n\n")[0] if __doc__ else None,
            config=(tyro.conf.FlagCreatePairsOff,),
        )
        c = args.config
        console.print(
            f"[dim]meta-gradient step: {c.num_agents} agents × {c.num_mini_batches} mini-batch(es) "
            f"× {c.workers} workers × {c.rollout_len} steps × K {c.num_agent_updates} on "
            f"{c.level_set}, LPG {c.lpg_core.upper()} {c.lpg_gru_width}; compiling…[/dim]"
        )
        result = measure(c)
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    info = {**environment_info(), "load_average": list(os.getloadavg())}
    table = Table(title="meta-gradient step (MetaGradient.step)")
    columns = ("init s", "compile s", "median s", "min–max s", "spread", "meta-steps/s")
    for col in (*columns, "env steps/s"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{result.init_s:.2f}",
        f"{result.compile_s:.2f}",
        f"{result.median_s:.3f}",
        f"{result.min_s:.3f}–{result.max_s:.3f}",
        f"{100 * result.spread:.0f}%",
        f"{result.meta_steps_per_s:.3f}",
        f"{result.env_steps_per_s:,.0f}",
    )
    console.print(table)
    mem = result.peak_memory_bytes
    console.print(
        f"device: {info['device_kind']} ({info['backend']}, {len(info['devices'])} device(s), "
        f"{info['cpu_count']} CPU cores, load average "
        f"{' '.join(f'{x:.2f}' for x in info['load_average'])}); peak device memory: "
        f"{'n/a' if mem is None else f'{mem / 2**20:,.0f} MiB'}; jax {info['jax']}, "
        f"jaxlib {info['jaxlib']}, equinox {info['equinox']}, lpgx {info['lpgx']}"
    )
    if replace(c, repeats=Config.repeats, seed=Config.seed) == Config():
        ok = result.median_s <= TARGET_MEDIAN_S and result.compile_s <= TARGET_COMPILE_S
        console.print(
            f"acceptance targets (median ≤ {TARGET_MEDIAN_S:g} s, compile ≤ "
            f"{TARGET_COMPILE_S:g} s): {'[green]met[/green]' if ok else '[red]not met[/red]'}"
        )
    load = info["load_average"][0]
    if info["cpu_count"] and load > info["cpu_count"]:
        console.print(
            f"[yellow]note:[/yellow] load average {load:.1f} on {info['cpu_count']} CPU cores: "
            "other jobs share this host, so these timings are upper bounds."
        )
    if args.json_out:
        print(json.dumps({**result.to_json(), "environment": info}, indent=2))
    return 0


if __name__ == "__main__":
    script_main(main)
