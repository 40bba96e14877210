"""Curricula: which task an agent gets when its lifetime ends.

One interface serves every meta-optimiser. Per meta-step the training loop calls

```python
ended = meta_opt.ended(agents)
scores = curriculum.score(cstate, k_score, learner, agent_states, critics, ended)
cstate, tasks = curriculum.next_tasks(cstate, k_tasks, tasks, ended, scores)
```

`score` computes the curriculum's score (``score_name``) for the agents whose lifetime ended
and nothing for the others; curricula that need none (``needs_score`` false) return zeros
without any work. ``critics`` is ``None`` for meta-optimisers without value critics (ES);
``needs_critic`` says whether the curriculum would reject that, and `check` does so before
anything compiles.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PyTree

from .._tree import tree_select
from .._typing import PRNGKeyArray, Scalar
from ..agents import MLPNet, TabularNet
from ..envs import AbstractTaskDistribution, Task
from ..lifetime import AgentState, Learner

__all__ = [
    "AbstractCurriculum",
    "DomainRandomisation",
    "LevelScores",
    "select_tasks",
    "stagger_lifetimes",
]


class LevelScores(eqx.Module):
    """Per-agent results of `AbstractCurriculum.score`, valid where the agent ended:
    ``score`` is the curriculum's score and ``cache`` the score's new cache of the agent's
    level (stacked; ``None`` for scores that keep none)."""

    score: Float[Array, " agents"]
    cache: PyTree = None

    @staticmethod
    def zeros(num_agents: int) -> "LevelScores":
        """No scores (what curricula that need none return)."""
        return LevelScores(score=jnp.zeros(num_agents, jnp.float32))


def select_tasks(pred: Bool[Array, " agents"], on_true: Task, on_false: Task) -> Task:
    """Per agent, the task from `on_true` where `pred`, else from `on_false` (stacked)."""
    return tree_select(pred, on_true, on_false)


class AbstractCurriculum(eqx.Module):
    """Hands out tasks. Its state (a pytree, possibly empty) is threaded through training."""

    @property
    @abc.abstractmethod
    def score_name(self) -> str:
        """The command-line name (``random``, ``frozen``, or the PLR score's name)."""

    @property
    def needs_score(self) -> bool:
        """Whether `next_tasks` uses the scores (if not, `score` does no work)."""
        return False

    @property
    def needs_critic(self) -> bool:
        """Whether `score` reads the agents' value critics."""
        return False

    def check(self, num_agents: int, has_critic: bool = True) -> None:
        """Raise a `ValueError` naming the fix if this curriculum cannot serve `num_agents`
        agents of a meta-optimiser with (or without) value critics. Cheap; call it before
        compiling anything."""
        if self.needs_critic and not has_critic:
            raise ValueError(
                f"the {self.score_name!r} score needs the agents' value critics, which this "
                "meta-optimiser does not train (ES has none); use alg_regret or a "
                "domain-randomisation curriculum with ES (--score-function alg_regret, "
                "random or frozen)."
            )

    @abc.abstractmethod
    def init(self, key: PRNGKeyArray, num_agents: int) -> tuple[PyTree, Task]:
        """Initial curriculum state and the first ``num_agents`` tasks."""

    def score(
        self,
        state: PyTree,
        key: PRNGKeyArray,
        learner: Learner,
        agents: AgentState,
        critics: TabularNet | MLPNet | None,
        ended: Bool[Array, " agents"],
    ) -> LevelScores:
        """Score the levels of the agents whose lifetime `ended` (`agents` and `critics` are
        stacked along the agent axis). The default scores nothing."""
        del state, key, learner, agents, critics
        return LevelScores.zeros(ended.shape[0])

    @abc.abstractmethod
    def next_tasks(
        self,
        state: PyTree,
        key: PRNGKeyArray,
        tasks: Task,
        ended: Bool[Array, " agents"],
        scores: LevelScores | None = None,
    ) -> tuple[PyTree, Task]:
        """New tasks for the agents whose lifetime `ended`; the others keep theirs. `scores`
        (from `score`, valid where `ended`) may be omitted by curricula without
        ``needs_score``."""

    def metrics(self, state: PyTree) -> dict[str, Scalar]:
        """Scalars to log after `next_tasks` (names start with ``curriculum/``)."""
        del state
        return {}


class DomainRandomisation(AbstractCurriculum):
    """Every ended agent gets a fresh task sampled from the level set (GROOVE's ``random``).

    Task ``i`` of a call with `key` is ``levels.sample(split(key, num_agents)[i])``.
    """

    levels: AbstractTaskDistribution = eqx.field(static=True)

    @property
    def score_name(self) -> str:
        return "random"

    def init(self, key: PRNGKeyArray, num_agents: int) -> tuple[PyTree, Task]:
        return None, jax.vmap(self.levels.sample)(jax.random.split(key, num_agents))

    def next_tasks(
        self,
        state: PyTree,
        key: PRNGKeyArray,
        tasks: Task,
        ended: Bool[Array, " agents"],
        scores: LevelScores | None = None,
    ) -> tuple[PyTree, Task]:
        del scores
        fresh = jax.vmap(self.levels.sample)(jax.random.split(key, ended.shape[0]))
        return state, select_tasks(ended, fresh, tasks)


def stagger_lifetimes(key: PRNGKeyArray, tasks: Task) -> Task:
    """Draw each first-generation lifetime uniformly in ``[1, N]``, so a population started
    together does not reset together (the GROOVE reference resets it all at once)."""
    lifetime = tasks.lifetime
    u = jax.random.uniform(key, lifetime.shape)
    staggered = 1 + jnp.floor(u * lifetime.astype(jnp.float32)).astype(jnp.int32)
    return eqx.tree_at(lambda t: t.lifetime, tasks, jnp.minimum(staggered, lifetime))
