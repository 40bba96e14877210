"""What the host loop asks of a trainer: `AbstractChunkedTrainer`.

A run is a sequence of compiled chunks, each a `jax.lax.scan` over ``chunk_size`` steps; the
host (`lpgx.train.train`) writes metrics and checkpoints between chunks. The population
`lpgx.Trainer` (meta-gradient or ES over a population of agents) and the online
`lpgx.mgrl.OnlineTrainer` (one agent learning its own hyperparameters) implement it; the host
loop drives either through this interface alone, asking its capability flags, never its type
(as Optimistix's `iterative_solve` drives any solver through ``init`` / ``step``).
"""

import abc
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, PyTree

from .rules import AbstractUpdateRule

__all__ = ["AbstractChunkedTrainer"]

S = TypeVar("S")


class AbstractChunkedTrainer(eqx.Module, Generic[S]):
    """A trainer whose state ``S`` (a pytree with an integer scalar ``step``: the steps done)
    advances by `meta_step`, ``chunk_size`` steps per compiled `run_chunk`.

    **Capability flags:** ``runs_on_several_processes`` — whether its state can be split over
    the processes of a `jax.distributed` run (else it runs on one process).
    """

    train_steps: eqx.AbstractVar[int]
    chunk_size: eqx.AbstractVar[int]
    runs_on_several_processes: eqx.AbstractClassVar[bool]

    @property
    @abc.abstractmethod
    def env_steps_per_meta_step(self) -> int:
        """Environment steps of one `meta_step` (all agents or runs together)."""

    @abc.abstractmethod
    def init(self, mesh: Mesh | None = None) -> S:
        """The state at step 0; with `mesh`, already placed as `shard` places it."""

    @abc.abstractmethod
    def meta_step(self, state: S) -> tuple[S, dict[str, Array]]:
        """One step of the run and its metrics (each a scalar, or one value per run)."""

    @abc.abstractmethod
    def mesh(self, num_devices: int | None = None) -> Mesh:
        """The mesh the run's state is placed on, checked before anything compiles."""

    @abc.abstractmethod
    def shard(self, state: S, mesh: Mesh) -> S:
        """`state` (or its `jax.ShapeDtypeStruct` skeleton) placed on `mesh`."""

    def constrain(self, state: S, mesh: Mesh) -> S:
        """Inside `jit`: `state` laid out as `shard` places it (by default, replicated)."""
        everywhere = NamedSharding(mesh, PartitionSpec())
        return jax.tree.map(
            lambda x: jax.lax.with_sharding_constraint(x, everywhere) if eqx.is_array(x) else x,
            state,
        )

    def current_rule(self, state: S) -> AbstractUpdateRule | None:
        """The update rule `state` has learned so far, for a held-out evaluation (``None``:
        this trainer has none to evaluate)."""
        del state
        return None

    def final_evaluation(
        self,
        rule: AbstractUpdateRule,
        task_name: str,
        say: Callable[[str], None] | None = None,
    ) -> dict[str, Any] | None:
        """The held-out evaluation of `rule` at the end of a run (what ``eval.json`` holds),
        or ``None`` where the trainer has none. `say` (``text -> None``) reports slow phases."""
        del rule, task_name, say
        return None

    def run_chunk(self, state: S) -> tuple[S, dict[str, Array]]:
        """``chunk_size`` steps in one `jax.lax.scan`; steps past ``train_steps`` are skipped
        (their metrics are marked ``valid = 0``), so every chunk has the same shape."""
        # Only arrays are carried: a state may hold non-array leaves (activation functions).
        dynamic, static = eqx.partition(state, eqx.is_array)
        # The metrics' shapes for `skip`, recorded while `run` is traced: `lax.cond` traces its
        # true branch first, so the step is traced once, not a second time for its shapes.
        metric_shapes: dict[str, jax.ShapeDtypeStruct] = {}

        def run(d: PyTree) -> tuple[PyTree, dict[str, Array]]:
            s, m = self.meta_step(eqx.combine(d, static))
            metric_shapes.update({k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in m.items()})
            return eqx.filter(s, eqx.is_array), {**m, "valid": jnp.ones((), jnp.float32)}

        def skip(d: PyTree) -> tuple[PyTree, dict[str, Array]]:
            if not metric_shapes:  # traced before `run` after all: trace the step for its shapes
                metric_shapes.update(eqx.filter_eval_shape(lambda s: self.meta_step(s)[1], state))
            zeros = {k: jnp.zeros(v.shape, v.dtype) for k, v in metric_shapes.items()}
            return d, {**zeros, "valid": jnp.zeros((), jnp.float32)}

        def body(d: PyTree, _: None) -> tuple[PyTree, dict[str, Array]]:
            return jax.lax.cond(d.step < self.train_steps, run, skip, d)

        dynamic, metrics = jax.lax.scan(body, dynamic, None, length=self.chunk_size)
        return eqx.combine(dynamic, static), metrics
