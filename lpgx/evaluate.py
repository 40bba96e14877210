"""Meta-testing: train fresh agents with a rule on held-out tasks and measure their return."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._typing import PRNGKeyArray
from .envs import AbstractTaskDistribution, Task
from .lifetime import Learner, evaluate_return, train_lifetime
from .rules import AbstractUpdateRule

__all__ = ["EvalResult", "evaluate_rule", "held_out_key"]

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

    The same `key` gives the same tasks and agent initialisations for every rule, so rules are
    compared on paired agents.
    """
    updates = levels.max_lifetime if num_updates is None else num_updates
    k_tasks, k_agents = jax.random.split(key)
    tasks = jax.vmap(levels.sample)(jax.random.split(k_tasks, num_agents))

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
