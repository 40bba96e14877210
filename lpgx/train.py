"""Meta-training on the host (layer 6): `train` drives a `lpgx.trainer.Trainer` chunk by
chunk (one compiled `lax.scan` of meta-steps each), writing the run directory between chunks:
``config.json``, ``metrics.jsonl`` (one record per meta-step), ``ckpt/`` (see
`lpgx.checkpoint`) and ``eval.json``; it resumes exactly and checkpoints on interruption.
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
import numpy as np
from jaxtyping import Array

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .compose import TrainConfig, build_trainer
from .sharding import peak_memory_bytes
from .trainer import TrainState

__all__ = ["TrainCallbacks", "TrainResult", "train"]

# Fields that may differ between a run and its resumption (they do not change the state).
RESUMABLE_CHANGES = frozenset(
    {"train_steps", "checkpoint_every", "chunk_size", "eval_agents", "eval_episodes", "devices"}
)


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


def read_config(path: Path) -> dict[str, Any]:
    """The config saved in a run directory's ``config.json``, with a clear error naming the
    file if it is not readable JSON."""
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not valid JSON ({e}); restore it from a copy, or start a new run "
            "with another --out"
        ) from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} does not hold a config object; start a new run with --out")
    return values


def prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool) -> None:
    """Create or check the run directory before anything compiles."""
    config_path = run_dir / "config.json"
    if resume:
        if not config_path.exists():
            raise FileNotFoundError(
                f"--resume was given but {config_path} does not exist; start a new run "
                "without --resume, or point --out at an existing run directory."
            )
        _check_resume_config(read_config(config_path), config, run_dir)
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
    trainer = build_trainer(config)
    mesh = trainer.mesh(config.devices)
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
        final_result = trainer.evaluate(state.meta.rule)
        gain = np.asarray(final_result.final_return - initial_result.final_return)
        se = float(gain.std(ddof=1) / np.sqrt(gain.size)) if gain.size > 1 else float("nan")
        evaluation = {
            "held_out_agents": config.eval_agents,
            "lifetime_updates": trainer.tasks.max_lifetime,
            "initial_rule": initial_result.summary(),
            "final_rule": final_result.summary(),
            "paired_gain": float(gain.mean()),
            "paired_gain_se": se,
        }
        (run_dir / "eval.json").write_text(json.dumps(evaluation, indent=2))
        if cb is not None:
            cb.on_evaluate(evaluation)
    return TrainResult(run_dir, int(state.step), interrupted, evaluation, state, peak)
