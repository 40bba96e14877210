"""Meta-testing: how well does a rule train fresh agents on tasks it has never seen?

`learning_curves` trains fresh agents with one rule for their whole lifetime and measures their
return at evenly spaced points of it; `compare` does so for several rules (or *methods*: the
rules of several training runs, e.g. one per training seed) on the same agents with common
random numbers (same tasks, initial parameters, environment and evaluation keys), against A2C
and, where it is known (tabular grid worlds), the optimum. A run directory's rules come from
`lpgx.run_dir.RunDir`. The command line is ``lpgx eval``.
"""

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._typing import PRNGKeyArray
from ..envs import AbstractTaskDistribution, GridWorld, Task, optimal_return
from ..lifetime import Learner, agent_update, evaluate_return
from ..rules import A2C, AbstractUpdateRule
from ._held_out import evaluate_rule, held_out_optimum

__all__ = [
    "EvalSettings",
    "PeriodicEvaluation",
    "compare",
    "learning_curves",
]


@dataclass(frozen=True)
class EvalSettings:
    """What a meta-test measures: ``num_agents`` fresh agents (one task each) trained for
    ``lifetime`` updates (default: each task's own lifetime), their return measured at
    ``points`` evenly spaced points of it (and before the first update) over ``episodes``
    episodes; ``seed`` fixes tasks, agents and keys (common to every rule compared)."""

    num_agents: int = 16
    lifetime: int | None = None
    points: int = 10
    episodes: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_agents", "points", "episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.lifetime is not None and self.lifetime < 1:
            raise ValueError(f"--lifetime must be at least 1, got {self.lifetime}")


def _segments(num_updates: int, points: int) -> tuple[int, list[int]]:
    """Updates per segment, and the update count at each measuring point (0 first)."""
    points = min(points, num_updates)
    per = math.ceil(num_updates / points)
    return per, [0] + [min((i + 1) * per, num_updates) for i in range(points)]


def learning_curves(
    learner: Learner,
    rule: AbstractUpdateRule,
    tasks: Task,
    key: PRNGKeyArray,
    num_updates: int,
    points: int,
    episodes: int,
    eval_steps: int,
) -> Float[Array, "agents points"]:
    """Fresh agents trained by `rule` on `tasks` (stacked, one per agent) for `num_updates`
    gated updates; each agent's mean return over `episodes` evaluation episodes before its
    first update and after each of ``points`` equal segments of its lifetime.

    Agent ``i`` uses ``split(key, agents)[i]`` for its parameters, updates and evaluation
    episodes, so two rules given the same arguments train and measure the same agents.
    """
    per, updates = _segments(num_updates, points)
    segments = len(updates) - 1

    def one(task: Task, k: PRNGKeyArray) -> Float[Array, " points"]:
        k_init, k_train, k_eval = jax.random.split(k, 3)
        agent = learner.init(k_init, task, rule)

        def measure(params: Any) -> Array:
            returns = evaluate_return(learner, params, task.level, k_eval, episodes, eval_steps)
            return jnp.mean(returns)

        def segment(agent: Any, keys: Array) -> tuple[Any, Array]:
            def update(a: Any, k_u: PRNGKeyArray) -> tuple[Any, None]:
                return agent_update(learner, rule, a, k_u)[0], None

            agent, _ = jax.lax.scan(update, agent, keys)
            return agent, measure(agent.params)

        keys = jax.random.split(k_train, segments * per).reshape(segments, per)
        _, after = jax.lax.scan(segment, agent, keys)
        return jnp.concatenate([measure(agent.params)[None], after])

    n = tasks.lifetime.shape[0]
    return jax.vmap(one)(tasks, jax.random.split(key, n))


_learning_curves_jit = eqx.filter_jit(learning_curves)
_evaluate_rule_jit = eqx.filter_jit(evaluate_rule)


def _sample(tasks: AbstractTaskDistribution, key: PRNGKeyArray, n: int) -> Task:
    return jax.vmap(tasks.sample)(jax.random.split(key, n))


def _optimum(tasks: AbstractTaskDistribution, batch: Task) -> np.ndarray | None:
    """Each task's optimal return where it is known (tabular grid worlds), else ``None``."""
    env = tasks.env()
    if not (isinstance(env, GridWorld) and env.tabular):
        return None
    n = int(batch.lifetime.shape[0])
    levels = [jax.tree.map(lambda x, i=i: x[i], batch.level) for i in range(n)]
    return np.asarray([optimal_return(env, level) for level in levels])


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else float("nan")
    return float(x.mean()), se


def compare(
    methods: Mapping[str, Sequence[AbstractUpdateRule]],
    tasks: AbstractTaskDistribution,
    learner: Learner,
    settings: EvalSettings = EvalSettings(),
    run_names: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Meta-test every method (a name and its rules: one, or one per training run) on the same
    agents and tasks, with A2C beside them.

    **Returns:** a JSON-ready record: the settings, the learner's agent configuration, the
    update counts at which returns were measured, the optimum where known, and per method the
    learning curve (mean and s.e. over agents, averaged over the method's runs), the final
    return (mean, s.e. within runs, and between runs when there are several), its fraction of
    the optimum and of A2C's final return, and the area under the learning curve (mean return
    over the lifetime, trapezoidal in updates); then for every pair of methods the paired
    difference of final returns with its paired standard error. When both methods of a pair
    have the same number of runs (e.g. training seeds 0, 1, 2 of two curricula), run *i* is
    also paired with run *i*: each such difference with its paired s.e. over agents, and their
    mean with the between-run s.e. (`run_names`, optional, labels the runs in the record).
    """
    key = jax.random.key(settings.seed)
    k_tasks, k_agents = jax.random.split(key)
    batch = _sample(tasks, k_tasks, settings.num_agents)
    if settings.lifetime is not None:
        batch = eqx.tree_at(
            lambda t: t.lifetime, batch, jnp.full_like(batch.lifetime, settings.lifetime)
        )
    num_updates = settings.lifetime if settings.lifetime is not None else tasks.max_lifetime
    _, updates = _segments(num_updates, settings.points)

    def curves(rule: AbstractUpdateRule) -> np.ndarray:
        out = _learning_curves_jit(
            learner,
            rule,
            batch,
            k_agents,
            num_updates,
            settings.points,
            settings.episodes,
            tasks.eval_steps,
        )
        return np.asarray(out)

    all_methods = dict(methods)
    if "a2c" not in all_methods:
        all_methods["a2c"] = [A2C()]
    per_method = {name: [curves(rule) for rule in rules] for name, rules in all_methods.items()}
    optimum = _optimum(tasks, batch)
    a2c_final = per_method["a2c"][0][:, -1].mean()
    xs = np.asarray(updates, np.float64)

    results: dict[str, Any] = {}
    finals_of: dict[str, np.ndarray] = {}
    for name, runs in per_method.items():
        finals = finals_of[name] = np.stack([c[:, -1] for c in runs])  # [runs, agents]
        mean_curve = np.mean(np.stack(runs), axis=0)  # [agents, points]
        run_means = finals.mean(axis=1)
        record: dict[str, Any] = {
            "runs": len(runs),
            "run_names": list((run_names or {}).get(name, [str(i) for i in range(len(runs))])),
            "final_per_run": run_means.tolist(),
            "curve_mean": mean_curve.mean(axis=0).tolist(),
            "curve_se": (mean_curve.std(axis=0, ddof=1) / math.sqrt(mean_curve.shape[0])).tolist()
            if mean_curve.shape[0] > 1
            else [float("nan")] * mean_curve.shape[1],
            "final_mean": float(run_means.mean()),
            "final_se_within": float(np.mean([_mean_se(f)[1] for f in finals])),
            "final_se_between": _mean_se(run_means)[1] if len(runs) > 1 else None,
            "final_per_agent": finals.mean(axis=0).tolist(),
            "fraction_of_a2c": float(run_means.mean() / a2c_final) if a2c_final else None,
            "fraction_of_optimum": (
                float(run_means.mean() / optimum.mean()) if optimum is not None else None
            ),
            "auc": float(np.trapezoid(mean_curve.mean(axis=0), xs) / max(xs[-1], 1.0)),
        }
        results[name] = record

    pairs = []
    for a, b in itertools.combinations(results, 2):
        diff = np.asarray(results[a]["final_per_agent"]) - np.asarray(results[b]["final_per_agent"])
        mean, se = _mean_se(diff)
        pair: dict[str, Any] = {"a": a, "b": b, "diff_mean": mean, "diff_se": se}
        fa, fb = finals_of[a], finals_of[b]
        if fa.shape[0] == fb.shape[0] > 1:
            per_run = [_mean_se(x - y) for x, y in zip(fa, fb, strict=True)]
            pair["per_run"] = [
                {"a": ra, "b": rb, "diff_mean": m, "diff_se": s}
                for (m, s), ra, rb in zip(
                    per_run, results[a]["run_names"], results[b]["run_names"], strict=True
                )
            ]
            pair["diff_se_between"] = _mean_se(np.asarray([m for m, _ in per_run]))[1]
        pairs.append(pair)

    return {
        "tasks": tasks.name,
        "settings": dataclasses.asdict(settings),
        "lifetime_updates": num_updates,
        "agent": dataclasses.asdict(learner.config),
        "updates": list(updates),
        "optimum_mean": float(optimum.mean()) if optimum is not None else None,
        "methods": results,
        "pairs": pairs,
    }


class PeriodicEvaluation:
    """The held-out check of a run in progress (``lpgx train --eval-on``): fresh agents trained
    by the current rule for a whole lifetime on fixed tasks of each named distribution.

    The tasks, agent initialisations and keys are drawn once from `key`, so successive calls
    measure the same agents and differ only by the rule; each distribution compiles once (the
    rule's arrays are arguments). Where the optimum is known (tabular grid worlds) it is
    computed once and each return is also given as a fraction of it.

    **Arguments:** `entries` — ``(name, tasks, learner)`` per distribution; `num_agents` agents
    each; `episodes` evaluation episodes per agent; `key` fixes tasks and agents;
    `num_updates` — each agent's lifetime (default: its distribution's longest).
    """

    def __init__(
        self,
        entries: Sequence[tuple[str, AbstractTaskDistribution, Learner]],
        num_agents: int,
        episodes: int,
        key: PRNGKeyArray,
        num_updates: int | None = None,
    ):
        if num_agents < 1 or episodes < 1:
            raise ValueError(
                f"num_agents and episodes must be at least 1, got {num_agents} and {episodes}"
            )
        if num_updates is not None and num_updates < 1:
            raise ValueError(f"num_updates must be at least 1, got {num_updates}")
        self.entries = list(entries)
        self.num_agents = num_agents
        self.episodes = episodes
        self.key = key
        self.num_updates = num_updates
        self._optimum: dict[str, float | None] = {}

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.entries]

    @property
    def env_steps(self) -> int:
        """Environment steps of one evaluation: every agent's lifetime of rollouts, and its
        evaluation episodes before and after it."""
        total = 0
        for _, tasks, learner in self.entries:
            updates = tasks.max_lifetime if self.num_updates is None else self.num_updates
            per_update = learner.config.num_workers * learner.config.rollout_len
            episodes = 2 * self.episodes * tasks.eval_steps
            total += self.num_agents * (updates * per_update + episodes)
        return total

    def __call__(self, rule: AbstractUpdateRule) -> dict[str, float]:
        """``eval/NAME/return`` (mean over agents of the return after a lifetime),
        ``eval/NAME/return_se`` and, where the optimum is known, ``eval/NAME/fraction_of_optimum``
        for each distribution."""
        out: dict[str, float] = {}
        for name, tasks, learner in self.entries:
            result = _evaluate_rule_jit(
                learner, rule, tasks, self.key, self.num_agents, self.episodes, self.num_updates
            )
            final = np.asarray(result.final_return, np.float64)
            mean, se = _mean_se(final)
            out[f"eval/{name}/return"] = mean
            out[f"eval/{name}/return_se"] = se
            if name not in self._optimum:
                optimum = held_out_optimum(tasks, self.key, self.num_agents)
                self._optimum[name] = None if optimum is None else float(optimum.mean())
            optimum_mean = self._optimum[name]
            if optimum_mean:
                out[f"eval/{name}/fraction_of_optimum"] = mean / optimum_mean
        return out
