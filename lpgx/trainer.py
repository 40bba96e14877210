"""The pure meta-training machinery: a rule, a meta-optimiser and a curriculum,
composed without ever asking which.

`Trainer` holds the three parts and the run's sizes; `Trainer.meta_step` is one meta-step
(the meta-optimiser's step, then scores and new tasks for the agents whose lifetime ended) and
`Trainer.run_chunk` (`lpgx.chunked.AbstractChunkedTrainer`'s scanner) a `lax.scan` over
``chunk_size`` of them, the unit that is compiled once and called between host-side work;
`Trainer.final_evaluation` the held-out evaluation at the end of a run. The host loop lives in
`lpgx.train`, the run directory in `lpgx.run_dir`; names and flags become a `Trainer` in
`lpgx.compose`.
"""

from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Int, PyTree, UInt32

from ._tree import tree_select
from ._typing import PRNGKeyArray
from .chunked import AbstractChunkedTrainer
from .curriculum import AbstractCurriculum, stagger_lifetimes
from .envs import AbstractTaskDistribution
from .evaluation import (
    EvalResult,
    evaluate_rule,
    fraction_of_optimal,
    held_out_key,
    held_out_optimum,
)
from .lifetime import Learner
from .meta import AbstractMetaOptimiser, MetaState
from .rules import AbstractUpdateRule
from .sharding import AXIS, agent_mesh, check_divisible, replicate, shard_agents

__all__ = ["TrainState", "Trainer"]


class TrainState(eqx.Module):
    """Everything a run carries between meta-steps (and writes to a checkpoint)."""

    meta: MetaState
    agents: PyTree
    curriculum: PyTree
    key: UInt32[Array, " key"]
    step: Int[Array, ""]


class Trainer(AbstractChunkedTrainer[TrainState]):
    """Meta-trains the rule made by ``init_rule`` with ``meta_opt`` on tasks from
    ``curriculum``.

    **Arguments:**

    - ``tasks``: the task distribution (held-out evaluation tasks come from it).
    - ``init_rule``: ``key -> rule``, the rule at the start of the run (its inexact arrays are
      what is meta-learned; e.g. `lpgx.LPGConfig.build`).
    - ``meta_opt``: any `AbstractMetaOptimiser`; ``curriculum``: any `AbstractCurriculum`.
    - ``num_agents``: tasks (agents, or ES antithetic pairs) trained at once.
    - ``train_steps``: meta-steps of the run; ``chunk_size``: meta-steps per compiled chunk.
    - ``seed``: the whole run (rule, tasks, agents) is reproducible from it.
    - ``stagger``: draw first lifetimes uniformly in ``[1, N]`` where the meta-optimiser's
      agents live across steps, so a population started together does not reset together.
    - ``eval_agents`` / ``eval_episodes``: size of the held-out evaluation (`evaluate`).

    Everything is checked when the trainer is built, before anything compiles.
    """

    tasks: AbstractTaskDistribution = eqx.field(static=True)
    init_rule: Callable[[PRNGKeyArray], AbstractUpdateRule] = eqx.field(static=True)
    meta_opt: AbstractMetaOptimiser[Any]
    curriculum: AbstractCurriculum
    num_agents: int = eqx.field(static=True)
    train_steps: int = eqx.field(static=True)
    chunk_size: int = eqx.field(static=True, default=25)
    seed: int = eqx.field(static=True, default=0)
    stagger: bool = eqx.field(static=True, default=True)
    eval_agents: int = eqx.field(static=True, default=32)
    eval_episodes: int = eqx.field(static=True, default=16)
    runs_on_several_processes: ClassVar[bool] = True

    def __check_init__(self) -> None:
        sizes = {
            "num_agents": self.num_agents,
            "train_steps": self.train_steps,
            "chunk_size": self.chunk_size,
            "eval_agents": self.eval_agents,
            "eval_episodes": self.eval_episodes,
        }
        bad = [
            f"--{k.replace('_', '-')} must be at least 1, got {v}"
            for k, v in sizes.items()
            if v < 1
        ]
        if bad:
            raise ValueError("invalid training config: " + "; ".join(bad))
        population = self.meta_opt.population_size(self.num_agents)
        if population % self.meta_opt.mini_batch_count():
            raise ValueError(
                f"the population of {population} (from --num-agents {self.num_agents}) is not "
                f"divisible by --num-mini-batches {self.meta_opt.mini_batch_count()}; pick a "
                "number of mini-batches that divides it"
            )
        self.curriculum.check(self.num_agents, self.meta_opt.trains_critics)
        rule = eqx.filter_eval_shape(self.init_rule, jax.random.key(0))
        leaves = [x for x in jax.tree.leaves(rule) if isinstance(x, jax.ShapeDtypeStruct)]
        inexact = [x for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)]
        if not inexact:
            raise ValueError(
                f"{type(rule).__name__} has no meta-parameters to learn (no inexact arrays); "
                "meta-train a rule with parameters (--rule lpg), or evaluate this one instead"
            )

    @property
    def learner(self) -> Learner:
        return self.meta_opt.learner

    @property
    def env_steps_per_meta_step(self) -> int:
        return self.meta_opt.env_steps_per_step(self.num_agents)

    def _keys(self) -> tuple[PRNGKeyArray, PRNGKeyArray]:
        k_rule, k_rest = jax.random.split(jax.random.key(self.seed))
        return k_rule, k_rest

    def initial_rule(self) -> AbstractUpdateRule:
        """The rule at the start of the run (compiled once: eager initialisers are slow)."""
        return eqx.filter_jit(self.init_rule)(self._keys()[0])

    def init(self, mesh: Mesh | None = None) -> TrainState:
        """The state at step 0. With `mesh`, it is built already placed as `shard` places it,
        by one program partitioned over the mesh: each device (and each process of a
        multi-process run) computes and holds only its own share of the agents."""
        if mesh is None:
            return eqx.filter_jit(self._init)()
        return eqx.filter_jit(lambda: self.constrain(self._init(), mesh))()

    def _init(self) -> TrainState:
        rule = self.init_rule(self._keys()[0])
        k_meta, k_curr, k_stagger, k_agents, k_loop = jax.random.split(self._keys()[1], 5)
        meta = self.meta_opt.init(rule, k_meta)
        curriculum, tasks = self.curriculum.init(k_curr, self.num_agents)
        if self.stagger and self.meta_opt.staggers_lifetimes:
            tasks = stagger_lifetimes(k_stagger, tasks)
        agents = self.meta_opt.init_agents(k_agents, tasks, rule)
        return TrainState(
            meta=meta,
            agents=agents,
            curriculum=curriculum,
            key=jax.random.key_data(k_loop),
            step=jnp.zeros((), jnp.int32),
        )

    def meta_step(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """One meta-step, then new tasks and fresh agents where lifetimes ended."""
        key = jax.random.wrap_key_data(state.key)
        key, k_step, k_tasks, k_agents = jax.random.split(key, 4)
        meta, agents, metrics = self.meta_opt.step(state.meta, state.agents, k_step)
        ended = self.meta_opt.ended(agents)
        # Levels are scored when their agent's lifetime ends (nothing is computed otherwise).
        scores = self.curriculum.score(
            state.curriculum,
            jax.random.fold_in(k_tasks, 1),
            self.learner,
            self.meta_opt.agent_states(agents),
            self.meta_opt.critics(agents),
            ended,
        )
        curriculum, tasks = self.curriculum.next_tasks(
            state.curriculum, k_tasks, self.meta_opt.tasks(agents), ended, scores
        )
        metrics = {**metrics, **self.curriculum.metrics(curriculum)}
        fresh = self.meta_opt.init_agents(k_agents, tasks, meta.rule)
        agents = tree_select(ended, fresh, agents)
        metrics = {
            **metrics,
            "ended_lifetimes": jnp.sum(ended, dtype=jnp.int32).astype(jnp.float32),
        }
        new_state = TrainState(
            meta=meta,
            agents=agents,
            curriculum=curriculum,
            key=jax.random.key_data(key),
            step=state.step + 1,
        )
        return new_state, metrics

    def mesh(self, num_devices: int | None = None) -> Mesh:
        """The ``"agents"`` mesh over `num_devices` devices (default: all), checked before
        compiling: the agents, and each mini-batch of the population, must split evenly."""
        mesh = agent_mesh(num_devices)
        population = self.meta_opt.population_size(self.num_agents)
        check_divisible(
            self.num_agents,
            self.meta_opt.mini_batch_count(),
            mesh,
            None if population == self.num_agents else population,
        )
        return mesh

    def shard(self, state: TrainState, mesh: Mesh) -> TrainState:
        """`state` placed on `mesh`: the agents split along the agent axis, everything else
        (rule, optimiser and curriculum states, key, step) replicated. A state of
        `jax.ShapeDtypeStruct` leaves (`equinox.filter_eval_shape` of `init`) gets the
        shardings it would be placed with."""
        # Each part is placed once: the agents are never copied whole onto every device. The
        # parts go back in field order by unflattening, as `TrainState(...)` would check that
        # its leaves are arrays.
        parts = (
            replicate(state.meta, mesh),
            shard_agents(state.agents, mesh),
            replicate(state.curriculum, mesh),
            replicate(state.key, mesh),
            replicate(state.step, mesh),
        )
        return jax.tree.unflatten(jax.tree.structure(state), jax.tree.leaves(parts))

    def constrain(self, state: TrainState, mesh: Mesh) -> TrainState:
        """Inside `jit`: `state` laid out as `shard` places it (agents split, the rest
        replicated), so a compiled chunk returns a state it can be called with again."""
        split = NamedSharding(mesh, PartitionSpec(AXIS))
        everywhere = NamedSharding(mesh, PartitionSpec())

        def place(tree: PyTree, sharding: NamedSharding) -> PyTree:
            return jax.tree.map(
                lambda x: jax.lax.with_sharding_constraint(x, sharding) if eqx.is_array(x) else x,
                tree,
            )

        return TrainState(
            meta=place(state.meta, everywhere),
            agents=place(state.agents, split),
            curriculum=place(state.curriculum, everywhere),
            key=place(state.key, everywhere),
            step=place(state.step, everywhere),
        )

    def current_rule(self, state: TrainState) -> AbstractUpdateRule:
        return state.meta.rule

    def final_evaluation(
        self,
        rule: AbstractUpdateRule,
        task_name: str,
        say: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """The held-out evaluation of a run (what ``eval.json`` holds): fresh agents trained by
        the initial and the final rule on the same held-out tasks, their paired gain, the level set,
        the number of agents and their lifetime, and, for a tabular level set, the exact optimal
        return of those same tasks with each return as a fraction of it (``None`` where unknown)."""
        report = say if say is not None else (lambda text: None)
        key = held_out_key(self.seed)
        report(f"held-out evaluation: {self.eval_agents} agents trained by the initial rule")
        initial = self.evaluate(self.initial_rule())
        report(f"held-out evaluation: {self.eval_agents} agents trained by the learned rule")
        final = self.evaluate(rule)
        report("optimal returns of the held-out tasks (dynamic programming)")
        optimal = held_out_optimum(self.tasks, key, self.eval_agents)
        gain = np.asarray(final.final_return - initial.final_return)
        se = float(gain.std(ddof=1) / np.sqrt(gain.size)) if gain.size > 1 else float("nan")

        def summary(result: EvalResult) -> dict[str, float | None]:
            out: dict[str, float | None] = dict(result.summary())
            if optimal is None:
                out["fraction_of_optimal"] = out["fraction_of_optimal_se"] = None
            else:
                frac, frac_se = fraction_of_optimal(np.asarray(result.final_return), optimal)
                out["fraction_of_optimal"], out["fraction_of_optimal_se"] = frac, frac_se
            return out

        n = optimal.size if optimal is not None else 0
        return {
            "level_set": task_name,
            "held_out_agents": self.eval_agents,
            "lifetime_updates": self.tasks.max_lifetime,
            "eval_episodes": self.eval_episodes,
            "optimal_return": None if optimal is None else float(optimal.mean()),
            "optimal_return_se": (
                None if optimal is None or n < 2 else float(optimal.std(ddof=1) / np.sqrt(n))
            ),
            "optimal_return_note": (
                "exact expected return of an optimal policy (finite-horizon dynamic programming) "
                "on the same held-out tasks"
                if optimal is not None
                else f"unknown: {task_name} is not a tabular level set"
            ),
            "initial_rule": summary(initial),
            "final_rule": summary(final),
            "paired_gain": float(gain.mean()),
            "paired_gain_se": se,
        }

    def evaluate(self, rule: AbstractUpdateRule) -> EvalResult:
        """Fresh agents trained by `rule` on held-out tasks (same tasks for every rule)."""
        return _evaluate_rule_jit(
            self.learner,
            rule,
            self.tasks,
            held_out_key(self.seed),
            self.eval_agents,
            self.eval_episodes,
        )


_evaluate_rule_jit = eqx.filter_jit(evaluate_rule)
