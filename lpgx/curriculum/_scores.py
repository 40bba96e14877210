"""Level scores for prioritised level replay, pluggable by name.

A score is a function of one agent at the end of its lifetime (`AbstractScore.__call__`):
the `Learner`, its `AgentState`, its value critic (``None`` for ES, which trains none), what the
buffer caches for its level (the antagonist's return and the best return seen on it) and a key.
`PLR.score` calls it only for the agents whose lifetime ended (`map_where`), so the other
agents cost nothing.

| name | score | needs |
|---|---|---|
| ``pvl`` | mean over a fresh rollout of max(GAE advantage, 0) (positive value loss) | critic |
| ``l1_value_loss`` | mean of abs(GAE advantage) | critic |
| ``maxmc`` | mean of (R_max − V(s)), R_max the best λ-return seen on the level | critic |
| ``alg_regret`` | GROOVE: A2C antagonist's return − the agent's evaluated return | — |

The antagonist of ``alg_regret`` depends on the level and its lifetime only, so it is trained
once per level, when the level is first scored, and cached in the buffer (decision 15).
"""

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, PyTree

from .._typing import PRNGKeyArray, Scalar
from ..agents import MLPNet, TabularNet
from ..envs import LevelSet, Task
from ..lifetime import AgentState, Learner, agent_rollout, agent_update, evaluate_return
from ..rules import A2C, AbstractUpdateRule, gae

__all__ = [
    "SCORE_NAMES",
    "AbstractScore",
    "AlgorithmicRegret",
    "L1ValueLoss",
    "MaxMC",
    "PositiveValueLoss",
    "antagonist_return",
    "make_score",
    "map_where",
    "train_antagonist",
]

SCORE_NAMES: tuple[str, ...] = ("pvl", "l1_value_loss", "maxmc", "alg_regret")

Critic = TabularNet | MLPNet


class AbstractScore(eqx.Module):
    """How much an agent still has to learn on its level, computed when its lifetime ends.

    ``name`` is the command-line name; ``needs_critic`` says whether it reads the agent's value
    critic; ``needs_antagonist`` whether `PLR` must provide (and cache) an antagonist return.
    """

    name: ClassVar[str]
    needs_critic: ClassVar[bool] = False
    needs_antagonist: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(
        self,
        learner: Learner,
        agent: AgentState,
        critic: Critic | None,
        antagonist_return: Scalar,
        max_return: Scalar,
        key: PRNGKeyArray,
    ) -> tuple[Scalar, Scalar]:
        """Score one agent (unbatched) on its own task.

        **Returns:** ``(score, max_return)``, the latter the best return now known on the
        level (passed through by scores that do not track it).
        """

    def antagonist(self, learner: Learner, task: Task, key: PRNGKeyArray) -> Scalar:
        """The antagonist's return on `task` (only for scores with ``needs_antagonist``)."""
        raise NotImplementedError(f"score {self.name!r} uses no antagonist")


def _require_critic(name: str, critic: Critic | None) -> Critic:
    if critic is None:
        raise ValueError(
            f"score {name!r} needs the agents' value critics, which this meta-optimiser does "
            "not train (ES has none); use alg_regret or a domain-randomisation curriculum "
            "with ES (--score-function alg_regret, random or frozen)."
        )
    return critic


def _critic_rollout(
    learner: Learner,
    agent: AgentState,
    critic: Critic,
    key: PRNGKeyArray,
    gamma: float,
    gae_lambda: float,
) -> tuple[Array, Array, Array]:
    """A fresh ``T × W`` rollout of the agent's policy (continuing its workers) and the
    critic's GAE advantages, λ-return targets and values ``V(s_t)`` on it."""
    _, _, traj = agent_rollout(learner, agent, key)
    value = jax.vmap(jax.vmap(critic))(traj.all_obs())[..., 0]
    adv, target = gae(traj.reward, value, traj.done, gamma, gae_lambda)
    return adv, target, value[:-1]


class PositiveValueLoss(AbstractScore):
    """Positive value loss (Jiang et al. 2021): mean over a fresh rollout of
    ``max(Â_t, 0)``, with GAE advantages from the agent's value critic."""

    gamma: float = eqx.field(static=True, default=0.99)
    gae_lambda: float = eqx.field(static=True, default=0.95)
    name: ClassVar[str] = "pvl"
    needs_critic: ClassVar[bool] = True

    def __call__(
        self,
        learner: Learner,
        agent: AgentState,
        critic: Critic | None,
        antagonist_return: Scalar,
        max_return: Scalar,
        key: PRNGKeyArray,
    ) -> tuple[Scalar, Scalar]:
        critic = _require_critic(self.name, critic)
        adv, _, _ = _critic_rollout(learner, agent, critic, key, self.gamma, self.gae_lambda)
        return jnp.mean(jnp.maximum(adv, 0.0)), max_return


class L1ValueLoss(AbstractScore):
    """L1 value loss (Jiang et al. 2021): mean over a fresh rollout of ``|Â_t|``."""

    gamma: float = eqx.field(static=True, default=0.99)
    gae_lambda: float = eqx.field(static=True, default=0.95)
    name: ClassVar[str] = "l1_value_loss"
    needs_critic: ClassVar[bool] = True

    def __call__(
        self,
        learner: Learner,
        agent: AgentState,
        critic: Critic | None,
        antagonist_return: Scalar,
        max_return: Scalar,
        key: PRNGKeyArray,
    ) -> tuple[Scalar, Scalar]:
        critic = _require_critic(self.name, critic)
        adv, _, _ = _critic_rollout(learner, agent, critic, key, self.gamma, self.gae_lambda)
        return jnp.mean(jnp.abs(adv)), max_return


class MaxMC(AbstractScore):
    """Maximum Monte-Carlo regret (Jiang et al. 2021b): mean over a fresh rollout of
    ``R_max − V(s_t)``, where ``R_max`` is the highest λ-return target seen on the level so far
    (cached in the buffer across the level's replays, and updated with this rollout)."""

    gamma: float = eqx.field(static=True, default=0.99)
    gae_lambda: float = eqx.field(static=True, default=0.95)
    name: ClassVar[str] = "maxmc"
    needs_critic: ClassVar[bool] = True

    def __call__(
        self,
        learner: Learner,
        agent: AgentState,
        critic: Critic | None,
        antagonist_return: Scalar,
        max_return: Scalar,
        key: PRNGKeyArray,
    ) -> tuple[Scalar, Scalar]:
        critic = _require_critic(self.name, critic)
        _, target, value = _critic_rollout(learner, agent, critic, key, self.gamma, self.gae_lambda)
        best = jnp.maximum(max_return, jnp.max(target))
        return jnp.mean(best - value), best


class AlgorithmicRegret(AbstractScore):
    """GROOVE's algorithmic regret: the return of an A2C antagonist trained on the level for
    its lifetime minus the agent's return, each the mean undiscounted return of `episodes`
    fresh first episodes (`evaluate_return`).

    **Arguments:** ``num_updates`` — the level set's ``max_lifetime`` (the antagonist makes
    ``min(lifetime, num_updates)`` updates); ``eval_steps`` — the set's ``eval_steps``;
    ``episodes`` — evaluation episodes (64 in GROOVE); ``rule`` — the antagonist's rule.
    """

    num_updates: int = eqx.field(static=True)
    eval_steps: int = eqx.field(static=True)
    episodes: int = eqx.field(static=True, default=64)
    rule: AbstractUpdateRule = A2C()
    name: ClassVar[str] = "alg_regret"
    needs_antagonist: ClassVar[bool] = True

    def __call__(
        self,
        learner: Learner,
        agent: AgentState,
        critic: Critic | None,
        antagonist_return: Scalar,
        max_return: Scalar,
        key: PRNGKeyArray,
    ) -> tuple[Scalar, Scalar]:
        own = evaluate_return(
            learner, agent.params, agent.task.level, key, self.episodes, self.eval_steps
        )
        return antagonist_return - jnp.mean(own), max_return

    def antagonist(self, learner: Learner, task: Task, key: PRNGKeyArray) -> Scalar:
        return antagonist_return(
            learner, task, key, self.num_updates, self.eval_steps, self.episodes, self.rule
        )


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


def make_score(
    name: str,
    levels: LevelSet,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
    episodes: int = 64,
) -> AbstractScore:
    """The score called `name` (one of `SCORE_NAMES`) for agents on `levels`; `gamma` and
    `gae_lambda` should be those the value critics are trained with."""
    if name == "pvl":
        return PositiveValueLoss(gamma, gae_lambda)
    if name == "l1_value_loss":
        return L1ValueLoss(gamma, gae_lambda)
    if name == "maxmc":
        return MaxMC(gamma, gae_lambda)
    if name == "alg_regret":
        return AlgorithmicRegret(
            num_updates=levels.max_lifetime, eval_steps=levels.eval_steps, episodes=episodes
        )
    raise ValueError(f"unknown score {name!r}; choose one of {', '.join(SCORE_NAMES)}")


def map_where(
    fn: Callable[..., PyTree], mask: Bool[Array, " n"], xs: tuple, batch: int = 1
) -> PyTree:
    """``fn(*x_i)`` for every ``i`` where `mask` holds, zeros elsewhere; `xs` is a tuple of
    pytrees with a leading axis of size ``n`` (``None`` entries pass through).

    Only the selected rows are computed: they are gathered to the front and processed in
    chunks of `batch` rows (vmapped) by a loop whose trip count is ``ceil(#selected / batch)``,
    so an all-false mask costs nothing. Use ``batch = 1`` where one row fills the device
    (CPU), larger on an accelerator.
    """
    n = mask.shape[0]
    batch = max(1, min(batch, n))
    dynamic, static = eqx.partition(xs, eqx.is_array)

    def call(d: PyTree) -> PyTree:
        return fn(*eqx.combine(d, static))

    def row(d: PyTree, i: Array) -> PyTree:
        return jax.tree.map(lambda x: x[i], d)

    out_shape = jax.eval_shape(call, row(dynamic, jnp.zeros((), jnp.int32)))
    out = jax.tree.map(lambda s: jnp.zeros((n, *s.shape), s.dtype), out_shape)
    count = jnp.sum(mask, dtype=jnp.int32)
    padded = -(-n // batch) * batch
    idx = jnp.nonzero(mask, size=padded, fill_value=0)[0].astype(jnp.int32)

    def body(c: Array, out: PyTree) -> PyTree:
        start = c * batch
        sel = jax.lax.dynamic_slice(idx, (start,), (batch,))
        if batch == 1:
            res = jax.tree.map(lambda r: r[None], call(row(dynamic, sel[0])))
        else:
            res = jax.vmap(call)(row(dynamic, sel))
        valid = start + jnp.arange(batch, dtype=jnp.int32) < count
        where = jnp.where(valid, sel, n)
        return jax.tree.map(lambda o, r: o.at[where].set(r, mode="drop"), out, res)

    chunks = (count + batch - 1) // batch
    return jax.lax.fori_loop(0, chunks, body, out)
