"""Meta-training on the host: `train` drives a `lpgx.trainer.Trainer` chunk by
chunk (one compiled `lax.scan` of meta-steps each), writing the run directory between chunks:
``config.json``, ``metrics.jsonl`` (one record per meta-step), ``ckpt/`` (see
`lpgx.checkpoint`) and ``eval.json``; it resumes exactly and checkpoints on interruption.

SIGINT (Ctrl-C) and SIGTERM (what SLURM and most schedulers send before killing a job) both ask
the loop to stop at the next chunk boundary: the chunk running finishes, its metrics and a
checkpoint are written, and `train` returns with the signal in `TrainResult.stop_signal` (the
CLI exits with ``128 + signal``: 130 for SIGINT, 143 for SIGTERM). A second signal stops at once,
checkpointing the last completed chunk.

Over several processes (`lpgx.distributed`), every process runs `train` with the same config
(checked at start) and the same run directory on a shared file system. Process 0 alone writes
it; each process builds and keeps only its share of the agents; a checkpoint holds the whole
population, gathered, so it resumes on any number of processes. A signal stops every process
at the same chunk boundary; a second one ends the signalled process at once, without a
checkpoint (one needs every process).
"""

import contextlib
import functools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array

from ._executables import Program, compile_cached
from ._executables import directory as executable_cache_dir
from .chunked import AbstractChunkedTrainer
from .compose import TrainConfig, build, make_learner, make_tasks
from .distributed import (
    agree,
    any_process_signal,
    broadcast_from_writer,
    check_same_config,
    gather_to_host,
    is_multiprocess,
    is_writer,
    localize,
)
from .evaluation import PeriodicEvaluation, held_out_key
from .rules import AbstractUpdateRule
from .run_dir import RunDir, config_dict
from .sharding import peak_memory_bytes

__all__ = [
    "TrainCallbacks",
    "TrainResult",
    "train",
]


class TrainCallbacks:
    """Hooks a caller of `train` overrides to follow a run (the CLI shows its progress);
    each does nothing here."""

    def on_start(self, start_step: int, total_steps: int) -> None:
        """The run starts (or resumes) at `start_step` of `total_steps`."""

    def on_phase(self, text: str) -> None:
        """A slow phase starts (compiling, a held-out evaluation), described by `text`."""

    def on_compiled(self, seconds: float) -> None:
        """The chunk's program is compiled (or loaded), after `seconds`."""

    def on_chunk(self, step: int, records: list[dict[str, int | float]]) -> None:
        """A chunk ended at `step`; `records` are its ``metrics.jsonl`` records."""

    def on_checkpoint(self, step: int, path: Path) -> None:
        """The checkpoint of `step` is written at `path`."""

    def on_stop_requested(self, signum: int) -> None:
        """SIGINT or SIGTERM asked the run to stop at the next chunk boundary."""

    def on_evaluate(self, results: dict[str, Any]) -> None:
        """The held-out evaluation at the end of the run (``eval.json``)."""


@dataclass
class TrainResult:
    run_dir: Path
    final_step: int
    interrupted: bool
    evaluation: dict[str, Any] | None
    state: Any
    """The run's last state (`lpgx.TrainState` of a population run, else its trainer's)."""
    peak_memory_bytes: int | None = None
    """The largest peak memory in use on any of the run's devices after training (before the
    held-out evaluation), where the backend reports it (GPU/TPU; ``None`` on CPU)."""
    stop_signal: int | None = None
    """The signal that stopped the run (`signal.SIGINT`, `signal.SIGTERM`), or ``None``."""


def _records(
    metrics: dict[str, Array], first_step: int, env_steps_per_step: int, wall: float
) -> list[dict[str, int | float]]:
    """One record per valid step. A metric with a seed axis (``[chunk, seeds]``, online runs
    of several seeds) is written as its mean over the seeds under its own name and as each
    run's value under ``seed{i}/name``."""
    host = {k: np.asarray(v) for k, v in metrics.items()}
    valid = host.pop("valid") > 0
    out = []
    for i in np.flatnonzero(valid):
        step = first_step + int(i) + 1
        rec: dict[str, int | float] = {
            "step": step,
            "env_steps": step * env_steps_per_step,
            "wall_s": wall,
        }
        for k, v in host.items():
            if v.ndim == 1:
                rec[k] = float(v[i])
                continue
            row = v[i].astype(np.float64)
            finite = row[np.isfinite(row)]
            rec[k] = float(finite.mean()) if finite.size else float("nan")
            if row.size > 1:
                rec.update({f"seed{j}/{k}": float(x) for j, x in enumerate(row)})
        out.append(rec)
    return out


class _StopRequest:
    """Turns SIGINT and SIGTERM into a request to stop at the next chunk boundary while the
    loop runs (a second signal raises `KeyboardInterrupt` to stop at once). Handlers are
    installed only in the main thread, and the previous ones are restored on exit."""

    def __init__(self, on_request: Callable[[int], None] | None = None, second_kills: bool = False):
        self.signal: int | None = None
        self.on_request = on_request
        self.second_kills = second_kills

    def _handle(self, signum: int, frame: object) -> None:
        del frame
        if self.signal is not None and self.second_kills:
            # Over several processes a checkpoint needs all of them: the second signal ends
            # this process at once, as if unhandled (resume from the latest checkpoint).
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        if self.on_request is not None:
            self.on_request(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator["_StopRequest"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, self._handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class _Background:
    """``fn(traced)`` run on a daemon thread (a process that fails meanwhile does not wait for
    it); `result` waits and returns its value or raises its exception; `seconds` is how long it
    ran. ``fn`` calls ``traced()`` once it no longer needs Python's lock for long (its program
    is traced and lowered; XLA compiles without the lock), and `wait_traced` waits for that
    (or for ``fn`` to end)."""

    def __init__(self, fn: Callable[[Callable[[], None]], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._traced = threading.Event()
        self.seconds = 0.0

        def run() -> None:
            start = time.perf_counter()
            try:
                self._value = fn(self._traced.set)
            except BaseException as e:  # handed to the caller of `result`
                self._error = e
            finally:
                self._traced.set()
            self.seconds = time.perf_counter() - start

        self._thread = threading.Thread(target=run, name="lpgx-compile", daemon=True)
        self._thread.start()

    def wait_traced(self) -> None:
        self._traced.wait()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def train(
    config: TrainConfig,
    run_dir: Path,
    resume: bool = False,
    callbacks: TrainCallbacks | None = None,
    sinks: list[Callable[[dict[str, int | float]], None]] | None = None,
    evaluate: bool = True,
    debug: bool = False,
    executable_cache: bool = False,
) -> TrainResult:
    """Meta-train an LPG as `config` says, writing `run_dir`; resumable, interruptible.

    With `debug`, chunks of meta-steps run without compilation (`jax.disable_jit`) and with
    `jax.debug_nans`, so a debugger can step into the rule, the meta-optimiser and the
    curriculum, and the first operation that makes a NaN raises `FloatingPointError` where it
    happens. The same code runs as compiled (same metrics to float rounding); it is slow, so
    use it on a tiny config.

    Everything a user can get wrong (config, level set, run directory, checkpoint, a damaged
    ``metrics.jsonl``) is checked before compilation. SIGINT or SIGTERM stops the loop at the
    next chunk boundary with a checkpoint, and `train` returns with ``interrupted=True`` and
    the signal in ``stop_signal``. Checkpoints fall at the first chunk boundary at or after each
    multiple of ``checkpoint_every`` (also after a resume), at the end and on a stop.

    An online run (``--rule mgrl``, `lpgx.mgrl.OnlineTrainer`) goes through the same loop; it
    has no held-out evaluation (its learning curves are the result).

    With `executable_cache` (the ``lpgx`` command's default), and JAX's persistent compilation
    cache on (``jax_compilation_cache_dir``), the compiled initialiser and chunk are kept beside
    that cache and a later start with the same configuration loads them without tracing
    (`lpgx._executables`); not with `debug` nor over several processes.
    """
    multi = is_multiprocess()
    if multi and debug:
        raise ValueError(
            "--debug runs the meta-steps op by op on one process; run it without "
            "--coordinator / --num-processes (and outside a multi-task SLURM or MPI job)"
        )
    check_same_config(config)
    trainer: AbstractChunkedTrainer[Any] = build(config)
    if multi and not trainer.runs_on_several_processes:
        raise ValueError(
            f"--rule {config.rule} runs on one process (its --seeds share its devices); run it "
            "without --coordinator / --num-processes"
        )
    periodic = periodic_evaluation(config)  # TrainConfig refuses --eval-on for online runs
    mesh = trainer.mesh(config.devices)
    writer = is_writer()
    run = RunDir(run_dir)
    cb = callbacks if callbacks is not None else TrainCallbacks()
    resume_step, kept = _prepare(run, config, resume, writer)
    # Compiled programs found again without tracing, when asked and JAX's persistent cache is on.
    executables = executable_cache_dir() if executable_cache and not (multi or debug) else None
    programs: list[Program] = []  # compiled here, their cache entries written meanwhile

    def checkpoint(s: Any, wall: float) -> None:
        step = int(s.step)
        # The whole population, gathered: a run on N processes resumes on any number.
        whole = gather_to_host(s) if multi else s
        if writer:
            cb.on_checkpoint(step, run.save_checkpoint(step, whole, config, wall))

    def current_rule(s: Any) -> AbstractUpdateRule | None:
        # Every process evaluates the same rule (the same numbers) on its own device.
        rule = trainer.current_rule(s)
        return localize(rule) if multi and rule is not None else rule

    stop = _StopRequest(cb.on_stop_requested, second_kills=multi)
    with stop.installed():
        # The initial (or resumed) state, placed, and the chunk's program.
        start_wall = 0.0
        compiled: Callable[[Any], tuple[Any, dict[str, Array]]]
        if multi:
            state, start_wall = _multiprocess_state(trainer, run, mesh, resume_step)
            t0 = time.perf_counter()
            pinned = eqx.filter_jit(lambda s: _pinned_chunk(trainer, mesh, s))
            compiled = pinned.lower(state).compile()  # pyright: ignore[reportFunctionMemberAccess]
            compile_s = time.perf_counter() - t0
        else:
            if debug:
                state, compile_s = trainer.init(), 0.0
                compiled = functools.partial(_run_uncompiled, trainer)
            else:
                salt = json.dumps(config_dict(config), sort_keys=True, default=str)
                state, compiled, compile_s = _compile_and_init(
                    trainer, mesh, salt, executables, programs
                )
            if resume_step is not None:
                state, start_wall = run.load_checkpoint(resume_step, state)
            state = trainer.shard(state, mesh)
        if resume_step is not None and writer:
            run.keep_metrics(kept)

        start_step = int(state.step)
        total_steps = trainer.train_steps
        interval = total_steps + 1
        if periodic is not None:
            interval = eval_interval(config, periodic, trainer)
            cb.on_phase(
                f"held-out evaluation on {', '.join(periodic.names)} every {interval} "
                f"meta-steps ({periodic.num_agents} fresh agents each)"
            )
        cb.on_start(start_step, total_steps)
        cb.on_compiled(compile_s)
        if getattr(compiled, "loaded", False):
            cb.on_phase("the chunk's program was loaded from the cache of compiled programs")
        if debug:
            cb.on_phase("debug: meta-steps without compilation, with NaN checks")

        # Chunk after chunk: metrics, then checkpoints, between them.
        every = config.checkpoint_every
        last_ckpt = start_step
        t_start = time.perf_counter() - start_wall
        try:
            # A signal stops every process at the same chunk boundary (agreed between them).
            while int(state.step) < total_steps and any_process_signal(stop.signal) is None:
                first = int(state.step)
                new_state, metrics = compiled(state)
                jax.block_until_ready(new_state)
                wall = time.perf_counter() - t_start
                records = _records(metrics, first, trainer.env_steps_per_meta_step, wall)
                due = bool(records) and int(new_state.step) // interval > first // interval
                rule = current_rule(new_state) if periodic is not None and due else None
                if periodic is not None and rule is not None:
                    cb.on_phase(f"evaluating on {', '.join(periodic.names)}")
                    records[-1].update(periodic(rule))
                    cb.on_phase("meta-steps")
                if writer:
                    run.append_metrics(records)
                # `state` moves on only once its records are written, so a checkpoint of
                # `state` never runs ahead of metrics.jsonl.
                state = new_state
                for sink in sinks if writer and sinks else []:
                    for r in records:
                        sink(r)
                step = int(state.step)
                cb.on_chunk(step, records)
                if step // every > last_ckpt // every or step >= total_steps:
                    checkpoint(state, wall)
                    last_ckpt = step
        except KeyboardInterrupt:  # a second signal, or Ctrl-C outside the handlers
            if stop.signal is None:
                stop.signal = signal.SIGINT
        stop_signal = any_process_signal(stop.signal)
        if stop_signal is not None and int(state.step) > last_ckpt:
            checkpoint(state, time.perf_counter() - t_start)
    interrupted = stop_signal is not None
    for program in programs:
        program.wait_written()

    # The held-out evaluation, where the trainer has one.
    peak = peak_memory_bytes(mesh.devices.size)
    evaluation = None
    rule = current_rule(state) if evaluate and not interrupted else None
    if rule is not None:
        evaluation = trainer.final_evaluation(rule, config.env_mode, cb.on_phase)
    if evaluation is not None:
        if writer:
            run.write_evaluation(evaluation)
        cb.on_evaluate(evaluation)
    return TrainResult(run_dir, int(state.step), interrupted, evaluation, state, peak, stop_signal)


def _prepare(
    run: RunDir, config: TrainConfig, resume: bool, writer: bool
) -> tuple[int | None, list[str]]:
    """Create or check the run directory (process 0 alone; an error there stops every
    process). **Returns:** the step to resume from (``None``: a new run) and the lines of
    ``metrics.jsonl`` up to it."""
    resume_step: int | None = None
    kept: list[str] = []
    problem: ValueError | FileNotFoundError | None = None
    if writer:
        try:
            resume_step = run.prepare(config, resume)
            kept = run.metrics_upto(resume_step) if resume_step is not None else []
        except (ValueError, FileNotFoundError) as e:
            problem = e
    agree(problem)
    return broadcast_from_writer(resume_step), kept


def _compile_and_init(
    trainer: AbstractChunkedTrainer[Any],
    mesh: Mesh,
    salt: str,
    executables: Path | None,
    programs: list[Program],
) -> tuple[Any, Program, float]:
    """On one process: the initial state and the chunk's program for it placed on `mesh`
    (loaded from `executables` where it is kept there), compiled side by side. **Returns:**
    ``(state, program, seconds compiling or loading the program)``; both programs are added to
    `programs` (their cache entries are written meanwhile)."""
    # The initial state's shapes (and placement) are all the chunk's program needs.
    shapes = eqx.filter_eval_shape(trainer.init)
    like = trainer.shard(shapes, mesh)
    background = _Background(
        lambda traced: compile_cached(
            "chunk",
            salt,
            trainer.run_chunk,
            (like,),
            out_structure=lambda d: (like, dict.fromkeys(d["metrics"], like.step)),
            describe=lambda out: {"metrics": sorted(out[1])},
            cache=executables,
            traced_hook=traced,
            write_in_background=True,
        )
    )
    # The chunk's program compiles on another thread (XLA releases Python's lock while it
    # compiles) beside the initial state's program on this one. Traced at the same time, the
    # two would only take turns with the lock and both start compiling late: the initial
    # state's is traced once the chunk's (the longer compile) is.
    background.wait_traced()
    if executables is None:
        state = trainer.init()
    else:
        init_program = compile_cached(
            "init",
            salt,
            trainer.init,
            (),
            out_structure=lambda _: shapes,
            cache=executables,
            write_in_background=True,
        )
        programs.append(init_program)
        state = init_program()
    chunk: Program = background.result()
    programs.append(chunk)
    return state, chunk, background.seconds


def _multiprocess_state(
    trainer: AbstractChunkedTrainer[Any], run: RunDir, mesh: Mesh, resume_step: int | None
) -> tuple[Any, float]:
    """Over several processes: each builds (or reads from the shared checkpoint) and keeps
    only its own share of the state. **Returns:** ``(state, wall time of the checkpoint)``."""
    if resume_step is None:
        return trainer.init(mesh), 0.0
    loaded: Any = None
    wall = 0.0
    problem: ValueError | None = None
    try:
        loaded, wall = run.load_checkpoint(resume_step, eqx.filter_eval_shape(trainer.init))
    except ValueError as e:
        problem = e
    agree(problem)
    return trainer.shard(loaded, mesh), wall


def _pinned_chunk(
    trainer: AbstractChunkedTrainer[Any], mesh: Mesh, state: Any
) -> tuple[Any, dict[str, Array]]:
    """A chunk over several processes, its layout pinned: the state goes back out as it came
    in, and the metrics (means over agents) are whole on every process."""
    state, metrics = trainer.run_chunk(state)
    everywhere = NamedSharding(mesh, PartitionSpec())
    return trainer.constrain(state, mesh), jax.lax.with_sharding_constraint(metrics, everywhere)


def periodic_evaluation(config: TrainConfig) -> PeriodicEvaluation | None:
    """The ``--eval-on`` evaluation of a run (``None`` without ``--eval-on``): each named task
    distribution with the run's agent settings, ``--eval-on-agents`` agents on tasks drawn
    once from the run's seed (apart from the end-of-run held-out tasks). Unknown names are
    rejected here, before anything compiles."""
    names = [name.strip() for name in config.eval_on.split(",") if name.strip()]
    if not names:
        return None
    entries = []
    for name in names:
        try:
            tasks = make_tasks(name)
        except ValueError as e:
            raise ValueError(f"--eval-on {name}: {e}") from None
        entries.append((name, tasks, make_learner(config, tasks)))
    key = jax.random.fold_in(held_out_key(config.seed), 1)
    lifetime = config.eval_on_lifetime or make_tasks(config.env_mode).max_lifetime
    return PeriodicEvaluation(entries, config.eval_on_agents, config.eval_episodes, key, lifetime)


def eval_interval(
    config: TrainConfig, periodic: PeriodicEvaluation, trainer: AbstractChunkedTrainer[Any]
) -> int:
    """``--eval-every``, or by default the smallest multiple of ``--chunk-size`` for which one
    evaluation's environment steps are at most a tenth of the training's in between (a meta-step
    also differentiates through its updates, so the share of time is smaller still)."""
    if config.eval_every is not None:
        return config.eval_every
    steps = -(-10 * periodic.env_steps // trainer.env_steps_per_meta_step)
    return max(1, -(-steps // config.chunk_size)) * config.chunk_size


def _run_uncompiled(trainer: Any, state: Any) -> tuple[Any, dict[str, Array]]:
    """`Trainer.run_chunk` (or `OnlineTrainer.run_chunk`) run op by op (``--debug``), raising
    at the first NaN."""
    with jax.disable_jit(), jax.debug_nans(True):
        return trainer.run_chunk(state)
