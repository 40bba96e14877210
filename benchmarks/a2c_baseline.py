"""A2C baseline: whole-lifetime A2C agents on the tabular levels, as a fraction of optimal.

For each level set, ``agents`` agents (one per seed: each samples its own task, i.e. its own
level and lifetime, and its own initial parameters) are trained with the A2C rule for their
whole lifetime, vmapped over the agents in one compiled call per level set
(`train_lifetime` with the set's ``max_lifetime`` updates; the gating stops each agent at its
own task's lifetime). Each agent is evaluated before and after training by the mean undiscounted
return of ``episodes`` first episodes (`evaluate_return`, actions sampled from the policy, the
same evaluation key before and after), and compared with the optimal expected return of its
level by exact dynamic programming (`optimal_return`): fraction of optimal = return / optimal
per agent, then averaged over the agents (agents whose optimal return is below
``min_optimal`` are left out of the fraction and counted).

Run ``python -m benchmarks.a2c_baseline --help`` for the options, e.g.::

    python -m benchmarks.a2c_baseline --seeds 8 --all-levels 16 --markdown table.md
"""

import math
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import tyro
from rich.console import Console

from lpgx.envs import LevelSet, get_level_set, optimal_return
from lpgx.lifetime import Learner, evaluate_return, train_lifetime
from lpgx.rules import A2C

from .common import report_results, script_main

__all__ = ["Config", "Result", "main", "make_train_and_evaluate", "measure", "run"]

LPG_LEVELS = ("dense", "sparse", "long", "longer", "long_dense")


@dataclass(frozen=True)
class Config:
    """Options of the A2C baseline."""

    levels: tuple[str, ...] = LPG_LEVELS
    """Tabular level sets trained with ``seeds`` agents each (default: the five LPG levels)."""
    seeds: int = 8
    """Agents per level set of `levels` (each on its own sampled task)."""
    all_set: str = "all_shortlife"
    """A procedural tabular level set trained with ``all_levels`` agents, one per level."""
    all_levels: int = 16
    """Agents (each on its own sampled level) on `all_set`; 0 skips it."""
    episodes: int = 64
    """Evaluation episodes per agent (before and after training)."""
    num_updates: int | None = None
    """Updates per agent; default the level set's ``max_lifetime`` (the whole lifetime)."""
    workers: int = 64
    """Parallel environments (workers) per agent."""
    rollout_len: int = 20
    """Environment steps per worker per update."""
    min_optimal: float = 1e-3
    """Agents whose optimal return is below this are left out of the fraction of optimal."""
    seed: int = 0
    """Base seed (each level set's keys also depend on its name, not on its position)."""
    markdown: Path | None = None
    """Also write the results as a markdown table (with the run's environment) to this file."""


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), se


@dataclass(frozen=True)
class Result:
    """Per-agent outcomes and timings of one level set.

    **Attributes:** per-agent arrays ``final_return`` and ``initial_return`` (mean over the
    evaluation episodes), ``optimal`` (the level's optimal expected return), ``lifetime`` (the
    task's lifetime) and ``updates`` (updates actually made); ``compile_s`` (lowering and
    compilation), ``train_s`` (training and evaluating all agents, one compiled call),
    ``optimal_s`` (the dynamic programs) and ``wall_s`` (everything, compile included).
    """

    level_set: str
    workers: int
    rollout_len: int
    episodes: int
    num_updates: int
    min_optimal: float
    final_return: np.ndarray
    initial_return: np.ndarray
    optimal: np.ndarray
    lifetime: np.ndarray
    updates: np.ndarray
    compile_s: float
    train_s: float
    optimal_s: float
    wall_s: float

    @property
    def num_agents(self) -> int:
        return int(self.final_return.shape[0])

    @property
    def fraction(self) -> np.ndarray:
        """Per-agent return / optimal return (NaN where the optimal is below ``min_optimal``)."""
        ok = self.optimal >= self.min_optimal
        return np.where(ok, self.final_return / np.where(ok, self.optimal, 1.0), np.nan)

    @property
    def excluded(self) -> int:
        """Agents left out of the fraction of optimal (optimal return below ``min_optimal``)."""
        return int(np.sum(~(self.optimal >= self.min_optimal)))

    @property
    def env_steps(self) -> int:
        """Training environment steps made by all agents (gated-off updates not counted)."""
        return int(np.sum(self.updates)) * self.workers * self.rollout_len


def make_train_and_evaluate(
    level_set: LevelSet,
    learner: Learner,
    num_agents: int,
    num_updates: int,
    episodes: int,
) -> Callable[[jax.Array], tuple]:
    """The compiled-once function: sample, evaluate, train a lifetime, evaluate, per agent.

    **Returns:** ``f(key) -> (tasks, initial_return, final_return, updates)``, vmapped over
    ``num_agents`` agents; returns are means over `episodes` evaluation episodes.
    """
    rule = A2C()

    def one(key: jax.Array) -> tuple:
        k_task, k_init, k_train, k_eval = jax.random.split(key, 4)
        task = level_set.sample(k_task)
        agent = learner.init(k_init, task, rule)
        trained, _ = train_lifetime(learner, rule, task, k_train, num_updates, agent=agent)
        # Evaluate the initial and trained parameters in one vmapped call (one compiled
        # evaluation, the same key for both).
        both = jax.tree.map(
            lambda a, b: jnp.stack([a, b]) if eqx.is_array(a) else a, agent.params, trained.params
        )
        returns = eqx.filter_vmap(
            lambda p: evaluate_return(
                learner, p, task.level, k_eval, episodes, level_set.eval_steps
            )
        )(both)
        r0, r1 = jnp.mean(returns, axis=1)
        return task, r0, r1, trained.step

    def run(key: jax.Array) -> tuple:
        return eqx.filter_vmap(one)(jax.random.split(key, num_agents))

    return run


def measure(
    name: str,
    num_agents: int,
    episodes: int = 64,
    num_updates: int | None = None,
    workers: int = 64,
    rollout_len: int = 20,
    min_optimal: float = 1e-3,
    seed: int = 0,
) -> Result:
    """Train and evaluate ``num_agents`` A2C agents on tabular level set `name`."""
    if min(num_agents, episodes, workers, rollout_len) < 1:
        raise ValueError(
            "num_agents, episodes, workers and rollout_len must be positive, got "
            f"{num_agents}, {episodes}, {workers} and {rollout_len}"
        )
    level_set = get_level_set(name)
    if not level_set.tabular:
        raise ValueError(f"{name} is not tabular: optimal returns need a tabular level set")
    n_updates = level_set.max_lifetime if num_updates is None else num_updates
    if n_updates < 0:
        raise ValueError(f"num_updates must be non-negative, got {n_updates}")
    learner = Learner.for_tasks(level_set, num_workers=workers, rollout_len=rollout_len)
    # Order-independent keys: each level set's stream depends on the seed and its name.
    key = jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)

    start = time.perf_counter()
    f = make_train_and_evaluate(level_set, learner, num_agents, n_updates, episodes)
    compiled = jax.jit(f).lower(key).compile()
    compile_s = time.perf_counter() - start
    t0 = time.perf_counter()
    tasks, r0, r1, updates = jax.block_until_ready(compiled(key))
    train_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    env = level_set.env()
    optimal = np.array(
        [
            optimal_return(env, jax.tree.map(lambda x, i=i: x[i], tasks.level))
            for i in range(num_agents)
        ],
        dtype=np.float64,
    )
    optimal_s = time.perf_counter() - t0
    return Result(
        level_set=name,
        workers=workers,
        rollout_len=rollout_len,
        episodes=episodes,
        num_updates=n_updates,
        min_optimal=min_optimal,
        final_return=np.asarray(r1, np.float64),
        initial_return=np.asarray(r0, np.float64),
        optimal=optimal,
        lifetime=np.asarray(tasks.lifetime),
        updates=np.asarray(updates),
        compile_s=compile_s,
        train_s=train_s,
        optimal_s=optimal_s,
        wall_s=time.perf_counter() - start,
    )


def run(config: Config, console: Console | None = None) -> list[Result]:
    """Measure every level set of `config` (`levels` with `seeds` agents, then `all_set`)."""
    plan = [(name, config.seeds) for name in config.levels]
    if config.all_levels > 0:
        plan.append((config.all_set, config.all_levels))
    for name, _ in plan:
        if not get_level_set(name).tabular:  # unknown names also fail before compiling
            raise ValueError(f"{name} is not tabular: optimal returns need a tabular level set")
    results = []
    for name, n in plan:
        if console is not None:
            updates = get_level_set(name).max_lifetime
            updates = updates if config.num_updates is None else config.num_updates
            console.print(f"[dim]{name}: {n} agents × {updates} updates…[/dim]")
        r = measure(
            name,
            n,
            config.episodes,
            config.num_updates,
            config.workers,
            config.rollout_len,
            config.min_optimal,
            config.seed,
        )
        if console is not None:
            console.print(
                f"[dim]  compile {r.compile_s:.1f} s, train+eval {r.train_s:.1f} s, "
                f"optimal {r.optimal_s:.1f} s[/dim]"
            )
        results.append(r)
    return results


HEADER = [
    "level set",
    "seeds",
    "lifetime (updates)",
    "return ± s.e.",
    "initial return ± s.e.",
    "optimal return",
    "fraction of optimal ± s.e.",
    "compile s",
    "wall s",
]


def _pm(mean: float, se: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def _lifetime(r: Result) -> str:
    lo, hi = int(np.min(r.updates)), int(np.max(r.updates))
    return str(lo) if lo == hi else f"{lo}–{hi}"


def rows(results: list[Result]) -> list[list[str]]:
    """The results as table cells (the columns of `HEADER`)."""
    out = []
    for r in results:
        frac = _pm(*_mean_se(r.fraction), 3)
        if r.excluded:
            frac += f" ({r.excluded} excl.)"
        out.append(
            [
                r.level_set,
                str(r.num_agents),
                _lifetime(r),
                _pm(*_mean_se(r.final_return), 2),
                _pm(*_mean_se(r.initial_return), 2),
                f"{np.mean(r.optimal):.2f}",
                frac,
                f"{r.compile_s:.1f}",
                f"{r.wall_s:.1f}",
            ]
        )
    return out


def protocol_lines(results: list[Result]) -> list[str]:
    """The markdown line saying how the baseline was measured."""
    episodes = sorted({r.episodes for r in results})
    shapes = sorted({f"{r.workers}×{r.rollout_len}" for r in results})
    return [
        f"- protocol: A2C (default `A2CConfig`), reference agent of each set, workers × rollout "
        f"{', '.join(shapes)} per update; each seed samples its own task and agent; returns are "
        f"means over {', '.join(map(str, episodes))} first episodes with sampled actions (same "
        "evaluation key before and after training); fraction of optimal is per agent, then "
        "averaged; ± is the standard error over the seeds."
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the baseline from the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = tyro.cli(Config, args=args, prog="python -m benchmarks.a2c_baseline")
    console = Console(stderr=True)
    start = time.perf_counter()
    results = run(config, console)
    total_s = time.perf_counter() - start
    report_results(
        f"A2C baseline, whole lifetimes ({total_s:.0f} s)",
        HEADER,
        rows(results),
        command=" ".join(["python -m benchmarks.a2c_baseline", *args]),
        markdown=config.markdown,
        note=f" (total {total_s:.0f} s)",
        protocol=protocol_lines(results),
    )
    return 0


if __name__ == "__main__":
    script_main(main)
