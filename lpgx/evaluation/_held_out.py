"""Held-out evaluation of one rule: fresh agents trained by it on held-out tasks, their return
on the scale of the optimum of the same tasks where it is known (a run's ``eval.json``)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._typing import PRNGKeyArray
from ..envs import AbstractTaskDistribution, GridWorld, Task
from ..envs._optimal_batched import optimal_returns
from ..lifetime import Learner, evaluate_return, train_lifetime
from ..rules import AbstractUpdateRule

__all__ = [
    "EvalResult",
    "evaluate_rule",
    "fraction_of_optimal",
    "held_out_key",
    "held_out_optimum",
    "held_out_tasks",
]

# Held-out tasks come from a key stream that training never uses.
_HELD_OUT = 0x5EED_0E7A


def held_out_key(seed: int) -> PRNGKeyArray:
    """The key for held-out evaluation tasks of a run with `seed`."""
    return jax.random.fold_in(jax.random.key(seed), _HELD_OUT)


class EvalResult(eqx.Module):
    """Per-agent results of `evaluate_rule`: mean return at the start and end of each
    agent's lifetime."""

    initial_return: Float[Array, " agents"]
    final_return: Float[Array, " agents"]

    def summary(self) -> dict[str, float]:
        n = self.final_return.shape[0]
        se = float(jnp.std(self.final_return, ddof=1) / jnp.sqrt(n)) if n > 1 else float("nan")
        return {
            "agents": float(n),
            "initial_return": float(jnp.mean(self.initial_return)),
            "final_return": float(jnp.mean(self.final_return)),
            "final_return_se": se,
        }


def evaluate_rule(
    learner: Learner,
    rule: AbstractUpdateRule,
    levels: AbstractTaskDistribution,
    key: PRNGKeyArray,
    num_agents: int,
    episodes: int,
    num_updates: int | None = None,
) -> EvalResult:
    """Train `num_agents` fresh agents with `rule`, each on its own task drawn from `levels`
    with `key`, for their whole lifetime (``num_updates`` defaults to the set's longest), and
    return each agent's mean return over `episodes` evaluation episodes before and after.
    A given `num_updates` is also every task's lifetime (what a lifetime-conditioned rule
    sees), so agents of a long-lived distribution can be evaluated on a shorter budget.

    The same `key` gives the same tasks and agent initialisations for every rule, so rules are
    compared on paired agents.
    """
    updates = levels.max_lifetime if num_updates is None else num_updates
    k_agents = jax.random.split(key)[1]
    tasks = held_out_tasks(levels, key, num_agents)
    if num_updates is not None:
        tasks = eqx.tree_at(lambda t: t.lifetime, tasks, jnp.full_like(tasks.lifetime, updates))

    def one(task: Task, k: PRNGKeyArray) -> tuple[Array, Array]:
        k_train, k_eval = jax.random.split(k)
        agent = learner.init(k_train, task, rule)
        before = evaluate_return(
            learner, agent.params, task.level, k_eval, episodes, levels.eval_steps
        )
        agent, _ = train_lifetime(learner, rule, task, k_train, updates, agent=agent)
        after = evaluate_return(
            learner, agent.params, task.level, k_eval, episodes, levels.eval_steps
        )
        return jnp.mean(before), jnp.mean(after)

    before, after = jax.vmap(one)(tasks, jax.random.split(k_agents, num_agents))
    return EvalResult(initial_return=before, final_return=after)


def held_out_tasks(levels: AbstractTaskDistribution, key: PRNGKeyArray, num_agents: int) -> Task:
    """The `num_agents` tasks `evaluate_rule` trains its agents on with `key` (batched)."""
    k_tasks = jax.random.split(key)[0]
    return jax.vmap(levels.sample)(jax.random.split(k_tasks, num_agents))


def held_out_optimum(
    levels: AbstractTaskDistribution, key: PRNGKeyArray, num_agents: int
) -> Float[np.ndarray, " agents"] | None:
    """The optimal return of one episode of each task `evaluate_rule` uses with `key` (exact,
    by dynamic programming), or ``None`` where it is unknown (anything but a tabular grid
    world: a level set or a levels file)."""
    env = levels.env()
    if not (isinstance(env, GridWorld) and env.tabular):
        return None
    tasks = jax.jit(held_out_tasks, static_argnums=(0, 2))(levels, key, num_agents)
    return optimal_returns(env, tasks.level)


def fraction_of_optimal(
    returns: Float[np.ndarray, " agents"], optimal: Float[np.ndarray, " agents"]
) -> tuple[float, float]:
    """Mean return over mean optimal return on the same tasks, and its standard error (the
    ratio estimator's delta-method s.e.); ``nan`` when the optimum is 0 on every task.

    A ratio of means, not a mean of ratios: a task whose optimum is 0 (the start walled off
    from every object) counts for nothing instead of dividing by zero.
    """
    r, o = np.asarray(returns, np.float64), np.asarray(optimal, np.float64)
    mean_o = float(o.mean())
    if mean_o <= 0:
        return float("nan"), float("nan")
    ratio = float(r.mean()) / mean_o
    n = r.size
    se = float(np.std(r - ratio * o, ddof=1) / np.sqrt(n) / mean_o) if n > 1 else float("nan")
    return ratio, se
