"""Level scores for prioritised level replay.

A score is a function of one agent at the end of its lifetime (`AbstractScore.__call__`): the
`Learner`, its `AgentState`, its value critic (``None`` for ES, which trains none), the score's
own per-level *cache* and a key. It returns the score and the level's new cache. The level
buffer stores each level's cache (one pytree, whatever the score keeps) and hands it back the
next time the level is scored; `PLR.score` calls a score only for the agents whose lifetime
ended (`map_where`), so the other agents cost nothing.

| name | score | cache | needs |
|---|---|---|---|
| ``pvl`` | mean over a fresh rollout of max(GAE advantage, 0) (positive value loss) | — | critic |
| ``l1_value_loss`` | mean of abs(GAE advantage) | — | critic |
| ``maxmc`` | mean of (R_max − V(s)), R_max the best λ-return seen on the level | R_max | critic |
| ``alg_regret`` | GROOVE: A2C antagonist's return − the agent's evaluated return | antagonist | — |

A cache can also be *refreshed* before scoring (`AbstractScore.refresh`, only where
`needs_refresh` says so): ``alg_regret`` trains its antagonist once per level, when the level
is first scored, because it depends on the level and its lifetime only (the GROOVE reference
trains a new one at every meta-step).
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PyTree

from .._typing import PRNGKeyArray, Scalar
from ..agents import MLPNet, TabularNet
from ..envs import Task
from ..lifetime import AgentState, Learner, agent_rollout, agent_update, evaluate_return
from ..rules import A2C, AbstractUpdateRule, gae

__all__ = [
    "SCORE_NAMES",
    "AbstractCriticScore",
    "AbstractScore",
    "AlgorithmicRegret",
    "AntagonistCache",
    "L1ValueLoss",
    "MaxMC",
    "PositiveValueLoss",
    "antagonist_return",
    "train_antagonist",
]

SCORE_NAMES: tuple[str, ...] = ("pvl", "l1_value_loss", "maxmc", "alg_regret")

Critic = TabularNet | MLPNet


class AbstractScore(eqx.Module):
    """How much an agent still has to learn on its level, computed when its lifetime ends.

    ``name`` is the command-line name; ``needs_critic`` says whether it reads the agent's value
    critic. A score keeps what it needs across a level's replays in a per-level cache
    (`init_cache`; ``None`` when it keeps nothing).
    """

    name: ClassVar[str]
    needs_critic: ClassVar[bool] = False

    def init_cache(self) -> PyTree:
        """The cache of a level never scored (one level; the buffer stacks it)."""
        return None

    def needs_refresh(self, cache: PyTree) -> Bool[Array, ""]:
        """Whether `refresh` must run on a level with this cache before it is scored."""
        del cache
        return jnp.zeros((), bool)

    def refresh(self, learner: Learner, task: Task, cache: PyTree, key: PRNGKeyArray) -> PyTree:
        """Fill the cache of `task`'s level before scoring (where `needs_refresh`)."""
        del learner, task, key
        return cache

    @abc.abstractmethod
    def __call__(
        self,
        learner: Learner,
        agent: AgentState,
        critic: Critic | None,
        cache: PyTree,
        key: PRNGKeyArray,
    ) -> tuple[Scalar, PyTree]:
        """Score one agent (unbatched) on its own task.

        **Returns:** ``(score, cache)``, the level's cache after this scoring.
        """


def _require_critic(name: str, critic: Critic | None) -> Critic:
    if critic is None:
        raise ValueError(
            f"score {name!r} needs the agents' value critics, which this meta-optimiser does "
            "not train (ES has none); use alg_regret or a domain-randomisation curriculum "
            "with ES (--score-function alg_regret, random or frozen)."
        )
    return critic


class AbstractCriticScore(AbstractScore):
    """A score computed from a fresh ``T × W`` rollout of the agent's policy (continuing its
    workers) and its value critic's GAE: subclasses define `from_advantages`."""

    gamma: eqx.AbstractVar[float]
    gae_lambda: eqx.AbstractVar[float]
    needs_critic: ClassVar[bool] = True

    @abc.abstractmethod
    def from_advantages(
        self, advantage: Array, target: Array, value: Array, cache: PyTree
    ) -> tuple[Scalar, PyTree]:
        """The score from the rollout's GAE advantages, λ-return targets and values
        ``V(s_t)`` (each ``[T, W]``), and the level's new cache."""

    def __call__(
        self,
        learner: Learner,
        agent: AgentState,
        critic: Critic | None,
        cache: PyTree,
        key: PRNGKeyArray,
    ) -> tuple[Scalar, PyTree]:
        critic = _require_critic(self.name, critic)
        _, _, traj = agent_rollout(learner, agent, key)
        value = jax.vmap(jax.vmap(critic))(traj.all_obs())[..., 0]
        adv, target = gae(traj.reward, value, traj.done, self.gamma, self.gae_lambda)
        return self.from_advantages(adv, target, value[:-1], cache)


class PositiveValueLoss(AbstractCriticScore):
    """Positive value loss (Jiang et al. 2021): mean over a fresh rollout of
    ``max(Â_t, 0)``, with GAE advantages from the agent's value critic."""

    gamma: float = eqx.field(static=True, default=0.99)
    gae_lambda: float = eqx.field(static=True, default=0.95)
    name: ClassVar[str] = "pvl"

    def from_advantages(
        self, advantage: Array, target: Array, value: Array, cache: PyTree
    ) -> tuple[Scalar, PyTree]:
        return jnp.mean(jnp.maximum(advantage, 0.0)), cache


class L1ValueLoss(AbstractCriticScore):
    """L1 value loss (Jiang et al. 2021): mean over a fresh rollout of ``|Â_t|``."""

    gamma: float = eqx.field(static=True, default=0.99)
    gae_lambda: float = eqx.field(static=True, default=0.95)
    name: ClassVar[str] = "l1_value_loss"

    def from_advantages(
        self, advantage: Array, target: Array, value: Array, cache: PyTree
    ) -> tuple[Scalar, PyTree]:
        return jnp.mean(jnp.abs(advantage)), cache


class MaxMC(AbstractCriticScore):
    """Maximum Monte-Carlo regret (Jiang et al. 2021b): mean over a fresh rollout of
    ``R_max − V(s_t)``, where ``R_max`` (the cache) is the highest λ-return target seen on the
    level so far, updated with this rollout."""

    gamma: float = eqx.field(static=True, default=0.99)
    gae_lambda: float = eqx.field(static=True, default=0.95)
    name: ClassVar[str] = "maxmc"

    def init_cache(self) -> Scalar:
        return jnp.full((), -jnp.inf, jnp.float32)

    def from_advantages(
        self, advantage: Array, target: Array, value: Array, cache: PyTree
    ) -> tuple[Scalar, PyTree]:
        best = jnp.maximum(cache, jnp.max(target))
        return jnp.mean(best - value), best


class AntagonistCache(eqx.Module):
    """`AlgorithmicRegret`'s per-level cache: the antagonist's return, once it is known (one
    level's, or stacked along leading level axes)."""

    antagonist_return: Float[Array, "*levels"]
    known: Bool[Array, "*levels"]


class AlgorithmicRegret(AbstractScore):
    """GROOVE's algorithmic regret: the return of an A2C antagonist trained on the level for
    its lifetime minus the agent's return, each the mean undiscounted return of `episodes`
    fresh first episodes (`evaluate_return`). The antagonist is trained by `refresh`, once per
    level, and its return cached.

    **Arguments:** ``num_updates`` — the task distribution's ``max_lifetime`` (the antagonist
    makes ``min(lifetime, num_updates)`` updates); ``eval_steps`` — its ``eval_steps``;
    ``episodes`` — evaluation episodes (64 in GROOVE); ``rule`` — the antagonist's rule.
    """

    num_updates: int = eqx.field(static=True)
    eval_steps: int = eqx.field(static=True)
    episodes: int = eqx.field(static=True, default=64)
    rule: AbstractUpdateRule = A2C()
    name: ClassVar[str] = "alg_regret"

    def init_cache(self) -> AntagonistCache:
        return AntagonistCache(
            antagonist_return=jnp.zeros((), jnp.float32), known=jnp.zeros((), bool)
        )

    def needs_refresh(self, cache: AntagonistCache) -> Bool[Array, ""]:
        return ~cache.known

    def refresh(
        self, learner: Learner, task: Task, cache: AntagonistCache, key: PRNGKeyArray
    ) -> AntagonistCache:
        value = antagonist_return(
            learner, task, key, self.num_updates, self.eval_steps, self.episodes, self.rule
        )
        return AntagonistCache(antagonist_return=value, known=jnp.ones((), bool))

    def __call__(
        self,
        learner: Learner,
        agent: AgentState,
        critic: Critic | None,
        cache: AntagonistCache,
        key: PRNGKeyArray,
    ) -> tuple[Scalar, AntagonistCache]:
        own = evaluate_return(
            learner, agent.params, agent.task.level, key, self.episodes, self.eval_steps
        )
        return cache.antagonist_return - jnp.mean(own), cache


def train_antagonist(
    learner: Learner,
    task: Task,
    key: PRNGKeyArray,
    num_updates: int,
    rule: AbstractUpdateRule | None = None,
) -> AgentState:
    """A fresh agent trained with `rule` (A2C by default) on `task` for its lifetime.

    Equals ``train_lifetime(learner, rule, task, key, num_updates)[0]`` in its parameters, but
    the loop stops after ``min(task.lifetime, num_updates)`` updates instead of rolling out
    masked ones (so its workers' states differ).
    """
    rule = A2C() if rule is None else rule
    k_init, k_updates = jax.random.split(key)
    agent = learner.init(k_init, task, rule)
    keys = jax.random.split(k_updates, num_updates)

    def body(i: Array, a: AgentState) -> AgentState:
        return agent_update(learner, rule, a, keys[i])[0]

    return jax.lax.fori_loop(0, jnp.minimum(task.lifetime, num_updates), body, agent)


def antagonist_return(
    learner: Learner,
    task: Task,
    key: PRNGKeyArray,
    num_updates: int,
    eval_steps: int,
    episodes: int = 64,
    rule: AbstractUpdateRule | None = None,
) -> Scalar:
    """GROOVE's antagonist: `train_antagonist` with ``k_train, k_eval = split(key)``, then its
    mean return over `episodes` fresh first episodes (`evaluate_return`)."""
    k_train, k_eval = jax.random.split(key)
    agent = train_antagonist(learner, task, k_train, num_updates, rule)
    returns = evaluate_return(learner, agent.params, task.level, k_eval, episodes, eval_steps)
    return jnp.mean(returns)
