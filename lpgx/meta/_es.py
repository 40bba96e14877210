"""Evolution strategies on an update rule (TA-LPG's meta-optimiser), built on evosax's Open_ES.

One generation (one call to `EvolutionStrategy.step`):

1. **Ask.** evosax's `Open_ES` draws ``P = 2·n`` candidates ``η ± σz`` around the mean, with
   antithetic pairs at positions ``(i, i + n)`` (evosax's own order: ``[mean + σz; mean − σz]``).
2. **Antithetic task sampling.** The ES carries ``n`` initial agents (one per pair, each on its
   own task). Both members of pair ``i`` train a copy of agent ``i`` with the same keys, so they
   differ only in the rule's parameters.
3. **Fitness.** Each candidate trains its agent for its task's lifetime, with no
   meta-gradient, then scores the mean undiscounted return over ``num_eval_episodes`` fresh
   episodes. Candidates are vmapped within a mini-batch and train together until the longest
   of their lifetimes ends; mini-batches run one after another in a `lax.scan` (memory).
4. **Tell.** Fitness is negated (evosax minimises), shaped (`pairwise_fitness_shaping_fn` by
   default, or evosax's centred ranks) and the mean takes an Adam step (β₁ = 0.99) with a
   learning rate decaying ×0.999 per generation to a floor.

Every agent has finished its lifetime after a generation: `EvolutionStrategy.ended` is all
true, so the training loop hands out new tasks and fresh agents for the next generation.
The returned agents are the pair winners' trained agents (as in the reference), for
curricula that score ended agents. The ES state (mean, Adam state, σ, generation counter)
lives in ``MetaState.opt_state``; ``MetaState.rule`` is always the current mean.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Key, PyTree

from .._tree import strided_merge, strided_split, tree_select
from .._typing import PRNGKeyArray, Scalar
from ..envs import AbstractTaskDistribution, Task
from ..lifetime import AgentState, Learner, evaluate_return, train_lifetime, train_until_ended
from ..rules import AbstractUpdateRule
from ._base import AbstractMetaOptimiser, MetaState

# evosax computes with JAX when imported, which starts JAX's backend; importing lpgx must not
# (`jax.distributed.initialize` has to come first in a multi-process run), so evosax is
# imported where a strategy is built.
if TYPE_CHECKING:
    from evosax.algorithms import Open_ES
else:
    Open_ES = Any

__all__ = ["ESAgents", "ESConfig", "EvolutionStrategy", "pairwise_fitness_shaping_fn"]


@dataclass(frozen=True)
class ESConfig:
    """Evolution strategy on a rule's arrays (TA-LPG's meta-optimiser, the reference's
    ``--use_es``): OpenAI-ES with antithetic pairs that share a task, an initial agent and
    environment keys; fitness is the mean return of an agent trained for its whole lifetime.

    The learning rate decays ×``lrate_decay`` per generation down to ``lrate_limit``; σ does
    the same with ``sigma_decay`` / ``sigma_limit`` (constant 0.1 by default, as in the
    reference). ``b1`` is Adam's β₁ (the reference's evosax Adam uses 0.99). ``shaping`` is
    ``"pairwise"`` (the reference: the better member of each pair scores 1, the other 0, ties go
    to the −ε member) or ``"centered_rank"``. ``init="network"`` starts the ES mean at the
    rule's normal initialisation (so that the search starts from a working rule);
    ``"zeros"`` reproduces the reference.
    """

    learning_rate: float = 1e-2
    lrate_decay: float = 0.999
    lrate_limit: float = 1e-5
    b1: float = 0.99
    optimiser: Literal["sgd", "adam"] = "adam"
    sigma_init: float = 0.1
    sigma_decay: float = 1.0
    sigma_limit: float = 0.1
    num_eval_episodes: int = 64
    shaping: Literal["pairwise", "centered_rank"] = "pairwise"
    init: Literal["network", "zeros"] = "network"

    def __post_init__(self) -> None:
        problems = []
        if self.learning_rate <= 0 or self.lrate_limit < 0:
            problems.append("learning_rate must be positive and lrate_limit non-negative")
        if not 0 < self.lrate_decay <= 1 or not 0 < self.sigma_decay <= 1:
            problems.append("lrate_decay and sigma_decay must lie in (0, 1]")
        if self.sigma_init <= 0 or self.sigma_limit <= 0:
            problems.append("sigma_init and sigma_limit must be positive")
        if not 0 <= self.b1 < 1:
            problems.append(f"b1 must lie in [0, 1), got {self.b1}")
        if self.num_eval_episodes < 1:
            problems.append("num_eval_episodes must be at least 1")
        if self.optimiser not in ("sgd", "adam"):
            problems.append(f"optimiser must be 'sgd' or 'adam', got {self.optimiser!r}")
        if self.shaping not in ("pairwise", "centered_rank"):
            problems.append(f"shaping must be 'pairwise' or 'centered_rank', got {self.shaping!r}")
        if self.init not in ("network", "zeros"):
            problems.append(f"init must be 'network' or 'zeros', got {self.init!r}")
        if problems:
            raise ValueError("invalid ES config: " + "; ".join(problems))


def pairwise_fitness_shaping_fn(
    population: Float[Array, "P D"], fitness: Float[Array, " P"], state: Any, params: Any
) -> Float[Array, " P"]:
    """The reference's pairwise shaping, as an evosax fitness-shaping function.

    `fitness` is evosax's (lower is better) and antithetic pairs sit at ``(i, i + P/2)``.
    Within each pair the better member gets −1 and the other 0 (the reference's 1/0 in
    maximisation, negated for evosax); on a tie the second (``mean − σz``) member wins.
    NaN fitness loses.

    **Returns:** the shaped fitness, shape ``(P,)``.
    """
    del population, state, params
    n = fitness.shape[0] // 2
    f = jnp.where(jnp.isnan(fitness), jnp.inf, fitness)
    first_wins = f[:n] < f[n:]
    return -jnp.concatenate([first_wins, ~first_wins]).astype(fitness.dtype)


def _shaping(name: str) -> Callable[..., Array]:
    from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn

    shapings: dict[str, Callable[..., Array]] = {
        "pairwise": pairwise_fitness_shaping_fn,
        "centered_rank": centered_rank_fitness_shaping_fn,
    }
    return shapings[name]


def _decay(init: float, rate: float, floor: float) -> optax.Schedule:
    # ×rate per generation down to floor (evosax counts generations from 0).
    return optax.exponential_decay(init, transition_steps=1, decay_rate=rate, end_value=floor)


def _lr_schedule(config: ESConfig) -> optax.Schedule:
    return _decay(config.learning_rate, config.lrate_decay, config.lrate_limit)


def _sigma_schedule(config: ESConfig) -> optax.Schedule:
    return _decay(config.sigma_init, config.sigma_decay, config.sigma_limit)


@functools.lru_cache(maxsize=64)
def _open_es(
    treedef: Any, leaves: tuple[tuple[tuple[int, ...], Any], ...], popsize: int, config: ESConfig
) -> Open_ES:
    """One `Open_ES` per (parameter layout, population size, config).

    evosax jits `ask`/`tell` with the strategy as a static (hashed by identity) argument, so
    reusing one instance avoids re-tracing them; building it from concrete zeros (at compile
    time, even inside a trace) keeps tracers out of the cached object.
    """
    import evosax.algorithms

    with jax.ensure_compile_time_eval():
        solution = jax.tree.unflatten(treedef, [np.zeros(shape, dtype) for shape, dtype in leaves])
        lr = _lr_schedule(config)
        adam = config.optimiser == "adam"
        optimizer = optax.adam(lr, b1=config.b1) if adam else optax.sgd(lr)
        return evosax.algorithms.Open_ES(
            population_size=popsize,
            solution=solution,
            use_antithetic_sampling=True,
            optimizer=optimizer,
            std_schedule=_sigma_schedule(config),
            fitness_shaping_fn=_shaping(config.shaping),
        )


def _strong(tree: PyTree) -> PyTree:
    # evosax's state holds Python scalars (weakly typed once traced); a scan carry and a
    # checkpoint need fixed dtypes.
    return jax.tree.map(lambda x: jax.lax.convert_element_type(x, jnp.result_type(x)), tree)


class ESAgents(eqx.Module):
    """What the ES carries between generations: one agent per antithetic pair.

    Before a generation ``agent`` is the pair's initial agent (on its task); after it,
    the trained agent of the pair's winner, and ``evaluated`` is true.
    """

    agent: AgentState
    evaluated: Bool[Array, " agents"]


class EvolutionStrategy(AbstractMetaOptimiser[ESAgents]):
    """OpenAI-ES on η with antithetic task sampling (TA-LPG).

    **Arguments:**

    - ``learner``: how agents are built and trained.
    - ``config``: the ES hyperparameters (`ESConfig`).
    - ``num_updates``: agent updates per candidate; pass the level set's ``max_lifetime``
      (shorter tasks stop updating at their own lifetime).
    - ``eval_steps``: rollout length of the fitness episodes; the level set's ``eval_steps``.
    - ``num_mini_batches``: candidates are evaluated in this many sequential vmapped groups;
      it must divide the population size ``2 × num_agents``.

    The number of agents (= tasks = antithetic pairs per generation) is that of the agents
    given to `step`; the population is twice that. Use `for_tasks` to fill in
    ``num_updates`` and ``eval_steps``.
    """

    learner: Learner
    config: ESConfig = eqx.field(static=True)
    num_updates: int = eqx.field(static=True)
    eval_steps: int = eqx.field(static=True)
    num_mini_batches: int = eqx.field(static=True, default=1)
    staggers_lifetimes: ClassVar[bool] = False  # every candidate lives a whole lifetime per step

    def __check_init__(self) -> None:
        if self.num_updates < 1 or self.eval_steps < 1 or self.num_mini_batches < 1:
            raise ValueError(
                "num_updates, eval_steps and num_mini_batches must be positive, got "
                f"{self.num_updates}, {self.eval_steps} and {self.num_mini_batches}"
            )

    @staticmethod
    def for_tasks(
        learner: Learner,
        levels: AbstractTaskDistribution,
        config: ESConfig | None = None,
        num_mini_batches: int = 1,
    ) -> "EvolutionStrategy":
        """An ES whose candidates live the set's longest lifetime and are scored on
        episodes of the set's longest length."""
        return EvolutionStrategy(
            learner=learner,
            config=ESConfig() if config is None else config,
            num_updates=levels.max_lifetime,
            eval_steps=levels.eval_steps,
            num_mini_batches=num_mini_batches,
        )

    def population_size(self, num_agents: int) -> int:
        """Two candidates (an antithetic pair) per task."""
        return 2 * num_agents

    def mini_batch_count(self) -> int:
        return self.num_mini_batches

    def env_steps_per_step(self, num_agents: int) -> int:
        # Every candidate of every antithetic pair lives a whole lifetime, then is evaluated.
        cfg = self.learner.config
        per_candidate = (
            self.num_updates * cfg.num_workers * cfg.rollout_len
            + self.config.num_eval_episodes * self.eval_steps
        )
        return self.population_size(num_agents) * per_candidate

    def agent_states(self, agents: ESAgents) -> AgentState:
        return agents.agent

    # --- evosax plumbing -------------------------------------------------------------------

    def _strategy(self, rule: AbstractUpdateRule, popsize: int) -> Open_ES:
        params = eqx.filter(rule, eqx.is_inexact_array)
        leaves, treedef = jax.tree.flatten(params)
        spec = tuple((tuple(x.shape), jnp.dtype(x.dtype)) for x in leaves)
        return _open_es(treedef, spec, popsize, self.config)

    def init(self, rule: AbstractUpdateRule, key: PRNGKeyArray) -> MetaState:
        """The ES state with its mean at the rule's arrays (``init="network"``) or at zero."""
        params, static = eqx.partition(rule, eqx.is_inexact_array)
        if self.config.init == "zeros":
            params = jax.tree.map(jnp.zeros_like, params)
        # The population size does not enter the state; 2 is the smallest valid one.
        es = self._strategy(rule, 2)
        es_state = _strong(es.init(key, params, es.default_params))
        return MetaState(
            rule=eqx.combine(params, static), opt_state=es_state, step=jnp.zeros((), jnp.int32)
        )

    def ask(self, state: MetaState, key: PRNGKeyArray, num_pairs: int) -> PyTree:
        """``2 × num_pairs`` candidate parameter trees (the rule's inexact arrays, each leaf
        with a leading population axis); pair ``i`` is ``(i, i + num_pairs)`` with the
        second member mirrored through the mean."""
        es = self._strategy(state.rule, 2 * num_pairs)
        with jax.numpy_rank_promotion("allow"):
            population, _ = es.ask(key, state.opt_state, es.default_params)
        return population

    def tell(
        self,
        state: MetaState,
        population: PyTree,
        fitness: Float[Array, " P"],
        key: PRNGKeyArray,
    ) -> tuple[MetaState, dict[str, Scalar]]:
        """Move the mean with the candidates' `fitness` (higher is better; negated for
        evosax, then shaped), and report fitness statistics, learning rate and σ.

        This is the whole ES update; `step` = `ask` → fitness of trained agents → `tell`.
        Any other fitness function can drive it (the tests use a quadratic).
        """
        popsize = fitness.shape[0]
        es = self._strategy(state.rule, popsize)
        es_state = state.opt_state
        lr = _lr_schedule(self.config)(es_state.generation_counter)
        sigma = es_state.std
        with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
            es_state, _ = es.tell(key, population, -fitness, es_state, es.default_params)
        es_state = _strong(es_state)
        _, static = eqx.partition(state.rule, eqx.is_inexact_array)
        rule = eqx.combine(es.get_mean(es_state), static)
        metrics = {
            "fitness_mean": jnp.mean(fitness),
            "fitness_std": jnp.std(fitness),
            "fitness_min": jnp.min(fitness),
            "fitness_max": jnp.max(fitness),
            "es_lr": jnp.asarray(lr, jnp.float32),
            "es_sigma": jnp.asarray(sigma, jnp.float32),
            "es_mean_norm": optax.tree.norm(eqx.filter(rule, eqx.is_inexact_array)),
        }
        return MetaState(rule=rule, opt_state=es_state, step=state.step + 1), metrics

    # --- agents ---------------------------------------------------------------------------

    def init_agents(self, key: PRNGKeyArray, tasks: Task, rule: AbstractUpdateRule) -> ESAgents:
        """One fresh agent per task; each is shared by the two members of a pair."""
        n = tasks.lifetime.shape[0]
        agents = jax.vmap(lambda k, t: self.learner.init(k, t, rule))(
            jax.random.split(key, n), tasks
        )
        return ESAgents(agent=agents, evaluated=jnp.zeros((n,), bool))

    def ended(self, agents: ESAgents) -> Bool[Array, " agents"]:
        """All true after a generation: every candidate lived its whole lifetime."""
        return agents.evaluated

    def tasks(self, agents: ESAgents) -> Task:
        return agents.agent.task

    def candidates(
        self, agents: ESAgents, key: PRNGKeyArray
    ) -> tuple[AgentState, Key[Array, " P"]]:
        """Initial agents and keys of the ``2n`` candidates: pair ``(i, i + n)`` shares agent
        ``i`` (task, parameters, optimiser and worker states) and key ``i`` (every rollout and
        evaluation episode), so the pair differs only in the rule's parameters."""
        n = agents.evaluated.shape[0]
        keys = jax.random.split(key, n)
        twice = jax.tree.map(lambda x: jnp.concatenate([x, x]), (agents.agent, keys))
        return twice[0], twice[1]

    def evaluate_candidate(
        self, rule: AbstractUpdateRule, agent: AgentState, key: PRNGKeyArray
    ) -> tuple[Scalar, AgentState, dict[str, Scalar]]:
        """Train `agent` with `rule` for ``num_updates`` gated updates, then its fitness: the
        mean return over ``num_eval_episodes`` fresh episodes.

        **Returns:** ``(fitness, trained agent, metrics)``, the metrics being the rule's
        diagnostics averaged over the updates actually applied.
        """
        k_train, k_eval = jax.random.split(key)
        trained, history = train_lifetime(
            self.learner, rule, agent.task, k_train, self.num_updates, agent=agent
        )
        return self._fitness(trained, k_eval), trained, self._applied_means(history)

    def _fitness(self, trained: AgentState, key: PRNGKeyArray) -> Scalar:
        """Mean return of `trained`'s policy over ``num_eval_episodes`` fresh first episodes."""
        returns = evaluate_return(
            self.learner,
            trained.params,
            trained.task.level,
            key,
            self.config.num_eval_episodes,
            self.eval_steps,
        )
        return jnp.mean(returns)

    @staticmethod
    def _applied_means(history: dict[str, Array]) -> dict[str, Array]:
        """A lifetime's per-update metrics (last axis: updates) averaged over the updates
        applied (``active``), and their count as ``agent/updates``."""
        history = dict(history)
        active = history.pop("active")
        count = jnp.sum(active, axis=-1)
        metrics = {
            f"agent/{k}": jnp.sum(v * active, axis=-1) / jnp.maximum(count, 1.0)
            for k, v in history.items()
        }
        metrics["agent/updates"] = count
        return metrics

    def population_fitness(
        self,
        rule: AbstractUpdateRule,
        population: PyTree,
        agents: AgentState,
        keys: Key[Array, " P"],
    ) -> tuple[Float[Array, " P"], AgentState, dict[str, Float[Array, " P"]]]:
        """`evaluate_candidate` for every candidate: vmapped within each of
        ``num_mini_batches`` (strided) mini-batches, which a `lax.scan` runs in turn.

        A mini-batch's candidates train together until the longest of their lifetimes ends
        (`train_until_ended`). (Grouping candidates by lifetime would make that shorter; a
        permutation of the population makes XLA replicate it over the devices of a sharded
        population axis, so it waits for a grouping within each device's share.)

        `population` holds the candidates' inexact arrays of `rule` (leading axis ``P``);
        `agents` and `keys` have the same leading axis (see `candidates`).
        """
        popsize = keys.shape[0]
        m = self.num_mini_batches
        if popsize % m:
            raise ValueError(
                f"the population of {popsize} candidates (2 × num_agents) is not divisible by "
                f"num_mini_batches={m}; choose a number of mini-batches that divides it."
            )
        static = eqx.filter(rule, eqx.is_inexact_array, inverse=True)

        def chunk(_: None, xs: tuple[PyTree, AgentState, Array]) -> tuple[None, Any]:
            # `evaluate_candidate` vmapped, bit for bit, except that the mini-batch's lifetimes
            # stop together when the longest ends (`train_until_ended`) instead of running
            # every masked update to `num_updates`.
            params, agents, keys = xs
            k_train, k_eval = jax.vmap(lambda k: tuple(jax.random.split(k)))(keys)
            rules = eqx.combine(params, static)
            trained, history = train_until_ended(
                self.learner, rules, agents, k_train, self.num_updates, stacked_rules=True
            )
            fitness = jax.vmap(self._fitness)(trained, k_eval)
            return None, (fitness, trained, self._applied_means(history))

        # Mini-batch j holds candidates j, j + m, j + 2m, … (strided, as in `MetaGradient`, so
        # that each mini-batch spans every device when the population axis is sharded).
        _, out = jax.lax.scan(chunk, None, strided_split((population, agents, keys), m))
        return strided_merge(out)

    def generation(
        self, state: MetaState, agents: ESAgents, key: PRNGKeyArray
    ) -> tuple[MetaState, ESAgents, dict[str, Scalar], Float[Array, " P"]]:
        """`step`, also returning every candidate's fitness (pair ``i`` at ``(i, i + n)``)."""
        n = agents.evaluated.shape[0]
        k_ask, k_pairs, k_tell = jax.random.split(key, 3)
        population = self.ask(state, k_ask, n)
        starts, keys = self.candidates(agents, k_pairs)
        fitness, trained, agent_metrics = self.population_fitness(
            state.rule, population, starts, keys
        )
        state, metrics = self.tell(state, population, fitness, k_tell)
        # Keep each pair's winner (ties to the second member, as in the shaping).
        f = jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)
        first_wins = f[:n] > f[n:]
        winners = tree_select(
            first_wins,
            jax.tree.map(lambda x: x[:n], trained),
            jax.tree.map(lambda x: x[n:], trained),
        )
        metrics.update({k: jnp.mean(v) for k, v in agent_metrics.items()})
        agents = ESAgents(agent=winners, evaluated=jnp.ones((n,), bool))
        return state, agents, metrics, fitness

    def step(
        self, state: MetaState, agents: ESAgents, key: PRNGKeyArray
    ) -> tuple[MetaState, ESAgents, dict[str, Scalar]]:
        """One generation (see the module docstring); every agent has ended afterwards."""
        state, agents, metrics, _ = self.generation(state, agents, key)
        return state, agents, metrics
