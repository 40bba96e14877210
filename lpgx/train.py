"""Meta-training (layer 6): a jitted `lax.scan` over chunks of meta-steps, with metrics,
checkpoints and resumption between chunks.

`Trainer` is the pure part (state, one meta-step, one chunk); `train` drives it on the host,
writing the run directory: ``config.json``, ``metrics.jsonl`` (one record per meta-step),
``ckpt/`` (see `lpgx.checkpoint`) and ``eval.json``.
"""

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jaxtyping import Array, Int, PyTree, UInt32

from ._tree import tree_select
from ._typing import PRNGKeyArray, Scalar
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .curriculum import AbstractCurriculum, make_curriculum, stagger_lifetimes
from .envs import LevelSet, get_level_set
from .evaluate import EvalResult, evaluate_rule, held_out_key
from .lifetime import Learner
from .meta import (
    AbstractMetaOptimiser,
    ESAgents,
    EvolutionStrategy,
    MetaAgent,
    MetaGradient,
    MetaState,
)
from .rules import LPG
from .sharding import agent_mesh, check_divisible, peak_memory_bytes, replicate, shard_agents

__all__ = ["TrainCallbacks", "TrainResult", "TrainState", "Trainer", "train"]

# Fields that may differ between a run and its resumption (they do not change the state).
RESUMABLE_CHANGES = frozenset(
    {"train_steps", "checkpoint_every", "chunk_size", "eval_agents", "eval_episodes", "devices"}
)


class TrainState(eqx.Module):
    """Everything a run carries between meta-steps (and writes to a checkpoint)."""

    meta: MetaState
    agents: MetaAgent | ESAgents
    curriculum: PyTree
    key: UInt32[Array, " key"]
    step: Int[Array, ""]


class Trainer(eqx.Module):
    """The pure meta-training machinery built from a `TrainConfig`."""

    config: TrainConfig = eqx.field(static=True)
    levels: LevelSet = eqx.field(static=True)
    meta_opt: AbstractMetaOptimiser[Any]
    curriculum: AbstractCurriculum

    @staticmethod
    def from_config(config: TrainConfig) -> "Trainer":
        """Validate `config` (before anything compiles) and build the trainer."""
        levels = get_level_set(config.env_mode)
        learner = Learner.for_level_set(
            levels, num_workers=config.env_workers, rollout_len=config.train_rollout_len
        )
        meta_opt: MetaGradient | EvolutionStrategy
        if config.use_es:
            meta_opt = EvolutionStrategy.for_level_set(
                learner, levels, config.es(), num_mini_batches=config.num_mini_batches
            )
        else:
            meta_opt = MetaGradient(
                learner, config.meta_gradient(), num_mini_batches=config.num_mini_batches
            )
        curriculum = make_curriculum(
            config.score_function,
            levels,
            buffer_size=config.buffer_size,
            p_replay=config.p_replay,
            transform=config.score_transform,
            temperature=config.score_temperature,
            staleness_coeff=config.staleness_coeff,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
            episodes=config.score_episodes,
            num_agents=config.num_agents,
            has_critic=not config.use_es,
        )
        return Trainer(config=config, levels=levels, meta_opt=meta_opt, curriculum=curriculum)

    @property
    def learner(self) -> Learner:
        return self.meta_opt.learner

    @property
    def env_steps_per_meta_step(self) -> int:
        c = self.config
        if c.use_es:
            # Every candidate of every antithetic pair lives a whole lifetime, then is evaluated.
            per_candidate = (
                self.levels.max_lifetime * c.env_workers * c.train_rollout_len
                + c.es_num_eval_episodes * self.levels.eval_steps
            )
            return 2 * c.num_agents * per_candidate
        return c.num_agents * (c.num_agent_updates + 1) * c.env_workers * c.train_rollout_len

    def init_rule(self, key: PRNGKeyArray) -> LPG:
        c = self.config.lpg()

        # One compilation instead of dozens of eager initialiser calls (seconds on a CPU).
        @eqx.filter_jit
        def make(k: PRNGKeyArray) -> LPG:
            return LPG(
                key=k,
                y_size=c.y_size,
                hidden=c.hidden,
                core=c.core,
                embedding_width=c.embedding_width,
                lifetime_conditioning=c.lifetime_conditioning,
                gamma=c.gamma,
                y_coeff=c.y_coeff,
                dtype=c.dtype,
            )

        return make(key)

    def _keys(self) -> tuple[PRNGKeyArray, PRNGKeyArray]:
        k_rule, k_rest = jax.random.split(jax.random.key(self.config.seed))
        return k_rule, k_rest

    def initial_rule(self) -> LPG:
        return self.init_rule(self._keys()[0])

    def init(self) -> TrainState:
        return eqx.filter_jit(self._init)()

    def _init(self) -> TrainState:
        rule = self.initial_rule()
        k_meta, k_curr, k_stagger, k_agents, k_loop = jax.random.split(self._keys()[1], 5)
        meta = self.meta_opt.init(rule, k_meta)
        curriculum, tasks = self.curriculum.init(k_curr, self.config.num_agents)
        if self.config.stagger and not self.config.use_es:  # ES agents all end every step
            tasks = stagger_lifetimes(k_stagger, tasks)
        agents = self.meta_opt.init_agents(k_agents, tasks, rule)
        return TrainState(
            meta=meta,
            agents=agents,
            curriculum=curriculum,
            key=jax.random.key_data(k_loop),
            step=jnp.zeros((), jnp.int32),
        )

    def meta_step(self, state: TrainState) -> tuple[TrainState, dict[str, Scalar]]:
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
            agents.agent,
            agents.critic if isinstance(agents, MetaAgent) else None,
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

    def run_chunk(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """`chunk_size` meta-steps in one `lax.scan`; steps past ``train_steps`` are skipped
        (their metrics are marked ``valid = 0``), so every chunk has the same shape."""
        # The state holds non-array leaves (e.g. activation functions): only arrays are carried.
        dynamic, static = eqx.partition(state, eqx.is_array)
        metric_shapes = eqx.filter_eval_shape(lambda s: self.meta_step(s)[1], state)

        def run(d: PyTree) -> tuple[PyTree, dict[str, Array]]:
            s, m = self.meta_step(eqx.combine(d, static))
            return eqx.filter(s, eqx.is_array), {**m, "valid": jnp.ones((), jnp.float32)}

        def skip(d: PyTree) -> tuple[PyTree, dict[str, Array]]:
            zeros = {k: jnp.zeros(v.shape, v.dtype) for k, v in metric_shapes.items()}
            return d, {**zeros, "valid": jnp.zeros((), jnp.float32)}

        def body(d: PyTree, _: None) -> tuple[PyTree, dict[str, Array]]:
            return jax.lax.cond(d.step < self.config.train_steps, run, skip, d)

        dynamic, metrics = jax.lax.scan(body, dynamic, None, length=self.config.chunk_size)
        return eqx.combine(dynamic, static), metrics

    def mesh(self, num_devices: int | None = None) -> Mesh:
        """The ``"agents"`` mesh over `num_devices` devices (default: the config's
        ``devices``, else all), checked before compiling: the agents, and each mini-batch
        of the population (ES: ``2 × num_agents`` candidates), must split evenly over it."""
        c = self.config
        mesh = agent_mesh(c.devices if num_devices is None else num_devices)
        population = 2 * c.num_agents if c.use_es else None
        check_divisible(c.num_agents, c.num_mini_batches, mesh, population)
        return mesh

    def shard(self, state: TrainState, mesh: Mesh) -> TrainState:
        """`state` placed on `mesh`: the agents split along the agent axis, everything else
        (rule, optimiser and curriculum states, key, step) replicated."""
        # Each part is placed once: the agents are never copied whole onto every device.
        return TrainState(
            meta=replicate(state.meta, mesh),
            agents=shard_agents(state.agents, mesh),
            curriculum=replicate(state.curriculum, mesh),
            key=replicate(state.key, mesh),
            step=replicate(state.step, mesh),
        )

    def evaluate(self, rule: LPG) -> EvalResult:
        """Fresh agents trained by `rule` on held-out tasks (same tasks for every rule)."""
        c = self.config
        return _evaluate_rule_jit(
            self.learner, rule, self.levels, held_out_key(c.seed), c.eval_agents, c.eval_episodes
        )


_evaluate_rule_jit = eqx.filter_jit(evaluate_rule)


@runtime_checkable
class TrainCallbacks(Protocol):
    """Hooks the CLI uses to show progress (all five methods)."""

    def on_start(self, start_step: int, total_steps: int) -> None: ...
    def on_compiled(self, seconds: float) -> None: ...
    def on_chunk(self, step: int, records: list[dict[str, int | float]]) -> None: ...
    def on_checkpoint(self, step: int, path: Path) -> None: ...
    def on_evaluate(self, results: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    run_dir: Path
    final_step: int
    interrupted: bool
    evaluation: dict[str, Any] | None
    state: TrainState
    peak_memory_bytes: int | None = None
    """The largest peak memory in use on any of the run's devices after training (before the
    held-out evaluation), where the backend reports it (GPU/TPU; ``None`` on CPU)."""


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _check_resume_config(saved: dict[str, Any], config: TrainConfig, run_dir: Path) -> None:
    current = _config_dict(config)
    diff = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if diff:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in diff)
        raise ValueError(
            f"cannot resume {run_dir}: its config differs in {details}. Resume with the same "
            f"settings (only {', '.join(sorted(RESUMABLE_CHANGES))} may change), or start a new "
            "run with a different --out."
        )


def prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool) -> None:
    """Create or check the run directory before anything compiles."""
    config_path = run_dir / "config.json"
    if resume:
        if not config_path.exists():
            raise FileNotFoundError(
                f"--resume was given but {config_path} does not exist; start a new run "
                "without --resume, or point --out at an existing run directory."
            )
        _check_resume_config(json.loads(config_path.read_text()), config, run_dir)
        if latest_checkpoint(run_dir) is None:
            raise FileNotFoundError(
                f"{run_dir} has no complete checkpoint to resume from; start it again without "
                "--resume (delete the directory first)."
            )
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ValueError(
                f"run directory {run_dir} already exists; pass --resume to continue it, or "
                "choose another --out."
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(_config_dict(config), indent=2))


def _records(
    metrics: dict[str, Array], first_step: int, env_steps_per_step: int, wall: float
) -> list[dict[str, int | float]]:
    host = {k: np.asarray(v) for k, v in metrics.items()}
    valid = host.pop("valid") > 0
    out = []
    for i in np.flatnonzero(valid):
        step = first_step + int(i) + 1
        rec = {"step": step, "env_steps": step * env_steps_per_step, "wall_s": wall}
        rec.update({k: float(v[i]) for k, v in host.items()})
        out.append(rec)
    return out


def _rewrite_metrics(path: Path, upto_step: int) -> None:
    """Drop records past `upto_step` (they will be recomputed after resuming)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line and json.loads(line)["step"] <= upto_step
    ]
    path.write_text("".join(line + "\n" for line in kept))


def train(
    config: TrainConfig,
    run_dir: Path,
    resume: bool = False,
    callbacks: TrainCallbacks | None = None,
    sinks: list[Callable[[dict[str, int | float]], None]] | None = None,
    evaluate: bool = True,
) -> TrainResult:
    """Meta-train an LPG as `config` says, writing `run_dir`; resumable, interruptible.

    Everything a user can get wrong (config, level set, run directory, checkpoint) is checked
    before compilation. Ctrl-C between or during chunks writes a checkpoint of the last
    completed chunk and returns with ``interrupted=True``.
    """
    trainer = Trainer.from_config(config)
    mesh = trainer.mesh()
    prepare_run_dir(run_dir, config, resume)
    state = trainer.init()
    start_wall = 0.0
    if resume:
        step = latest_checkpoint(run_dir)
        assert step is not None
        state, meta = load_checkpoint(run_dir, step, state)
        start_wall = float(meta.get("wall_s", 0.0))
        _rewrite_metrics(run_dir / "metrics.jsonl", step)
    state = trainer.shard(state, mesh)

    cb: Any = callbacks
    start_step = int(state.step)
    if cb is not None:
        cb.on_start(start_step, config.train_steps)

    def checkpoint(s: TrainState, wall: float) -> None:
        step = int(s.step)
        path = save_checkpoint(run_dir, step, s, {"config": _config_dict(config), "wall_s": wall})
        if cb is not None:
            cb.on_checkpoint(step, path)

    t0 = time.perf_counter()
    compiled = eqx.filter_jit(trainer.run_chunk).lower(state).compile()  # pyright: ignore[reportFunctionMemberAccess]
    if cb is not None:
        cb.on_compiled(time.perf_counter() - t0)

    interrupted = False
    last_ckpt = start_step
    t_start = time.perf_counter() - start_wall
    metrics_path = run_dir / "metrics.jsonl"
    try:
        while int(state.step) < config.train_steps:
            first = int(state.step)
            new_state, metrics = compiled(state)
            jax.block_until_ready(new_state)
            state = new_state
            wall = time.perf_counter() - t_start
            records = _records(metrics, first, trainer.env_steps_per_meta_step, wall)
            with metrics_path.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in records)
            for sink in sinks or []:
                for r in records:
                    sink(r)
            if cb is not None:
                cb.on_chunk(int(state.step), records)
            step = int(state.step)
            if step - last_ckpt >= config.checkpoint_every or step >= config.train_steps:
                checkpoint(state, wall)
                last_ckpt = step
    except KeyboardInterrupt:
        interrupted = True
        if int(state.step) > last_ckpt:
            checkpoint(state, time.perf_counter() - t_start)

    peak = peak_memory_bytes(mesh.devices.size)
    evaluation = None
    if evaluate and not interrupted:
        initial_result = trainer.evaluate(trainer.initial_rule())
        final_result = trainer.evaluate(state.meta.rule)  # pyright: ignore[reportArgumentType]
        gain = np.asarray(final_result.final_return - initial_result.final_return)
        se = float(gain.std(ddof=1) / np.sqrt(gain.size)) if gain.size > 1 else float("nan")
        evaluation = {
            "held_out_agents": config.eval_agents,
            "lifetime_updates": trainer.levels.max_lifetime,
            "initial_rule": initial_result.summary(),
            "final_rule": final_result.summary(),
            "paired_gain": float(gain.mean()),
            "paired_gain_se": se,
        }
        (run_dir / "eval.json").write_text(json.dumps(evaluation, indent=2))
        if cb is not None:
            cb.on_evaluate(evaluation)
    return TrainResult(run_dir, int(state.step), interrupted, evaluation, state, peak)
