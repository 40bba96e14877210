"""The run directory of `lpgx train`, and the one place that knows its layout.

A run directory holds ``config.json`` (the run's `TrainConfig`), ``metrics.jsonl`` (one JSON
record per meta-step, steps 1, 2, … in order), ``ckpt/`` (atomic checkpoints, `lpgx.checkpoint`)
and, once the run has finished, ``eval.json`` (the held-out evaluation). Training, resuming,
plotting, meta-testing and the command line all read and write it through `RunDir`.
"""

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .compose import TrainConfig, build_trainer
from .rules import AbstractUpdateRule

__all__ = ["RESUMABLE_CHANGES", "RunDir", "config_dict"]

RESUMABLE_CHANGES = frozenset(
    {
        "train_steps",
        "env_steps",
        "checkpoint_every",
        "chunk_size",
        "eval_agents",
        "eval_episodes",
        "eval_on",
        "eval_every",
        "eval_on_agents",
        "eval_on_lifetime",
        "devices",
    }
)
"""`TrainConfig` fields that may differ between a run and its resumption: none of them changes
the training state."""

_METRICS_FIX = (
    "delete that line and the ones after it (`lpgx train --resume` recomputes every record "
    "after its latest checkpoint), or restore the file from a copy"
)


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """`config` as ``config.json`` and every checkpoint's metadata store it."""
    return dataclasses.asdict(config)


@dataclass(frozen=True)
class RunDir:
    """A run directory at `path` (which need not exist yet).

    Errors a user can cause (a missing or damaged file, a resume with other settings) raise a
    `ValueError` or `FileNotFoundError` that names the file and the fix.
    """

    path: Path

    @staticmethod
    def of(path: Path) -> tuple["RunDir", int | None]:
        """The run directory `path` names and the checkpoint step: `path` is a run directory
        (step ``None``: its latest checkpoint) or one of its checkpoint files
        (``RUN/ckpt/step_NNNNNNNN.eqx`` or ``.json``)."""
        if not path.is_file():
            return RunDir(path), None
        match = re.fullmatch(r"step_(\d+)\.(eqx|json)", path.name)
        if match is None or path.parent.name != "ckpt":
            raise FileNotFoundError(
                f"{path}: neither a run directory of lpgx train nor one of its checkpoints "
                "(RUN/ckpt/step_NNNNNNNN.eqx)"
            )
        return RunDir(path.parent.parent), int(match.group(1))

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def eval_path(self) -> Path:
        return self.path / "eval.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "ckpt"

    # -- config.json ------------------------------------------------------------------------

    def _config_fix(self) -> str:
        return (
            f"restore it from a copy (every checkpoint's .json in {self.checkpoint_dir} holds "
            'the run\'s config under "config"), or start a new run with another --out'
        )

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a JSON object, unchecked against `TrainConfig`."""
        path = self.config_path
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: is {self.path} a run directory?")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); {self._config_fix()}") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not a text file ({e}); {self._config_fix()}") from None
        if not isinstance(values, dict):
            raise ValueError(
                f"{path} holds a JSON {type(values).__name__}, not a config object; "
                f"{self._config_fix()}"
            )
        return values

    def config(self) -> TrainConfig:
        """The run's `TrainConfig`, read from ``config.json`` (written by any earlier lpgx:
        `TrainConfig.from_dict` migrates renamed fields).

        **Raises:** `ValueError` naming the file, the field and the fix when the file is not
        JSON, has a field this version of lpgx does not know, a value of the wrong type, or a
        value the config rejects.
        """
        from beartype.door import is_bearable

        path = self.config_path
        values = self.read_config()
        fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(
                f"{path} has fields this version of lpgx does not know: {', '.join(unknown)}; "
                f"remove them, or {self._config_fix()}"
            )
        fixed: dict[str, Any] = {}
        for name, raw in values.items():
            hint: Any = fields[name].type
            value: Any = tuple(raw) if isinstance(raw, list) else raw
            is_int = isinstance(value, int) and not isinstance(value, bool)
            if is_int and not is_bearable(value, hint) and is_bearable(float(value), hint):
                value = float(value)  # JSON writes 1.0 as 1 when edited by hand
            if not is_bearable(value, hint):
                kind = getattr(hint, "__name__", hint)
                raise ValueError(
                    f"{path}: {name} = {raw!r} is not a valid {kind}; correct it "
                    f"(the default is {getattr(TrainConfig(), name)!r}), or {self._config_fix()}"
                )
            fixed[name] = value
        try:
            return TrainConfig.from_dict(fixed)
        except ValueError as e:
            raise ValueError(f"{path}: {e}; correct it, or {self._config_fix()}") from None

    # -- creating and resuming --------------------------------------------------------------

    def prepare(self, config: TrainConfig, resume: bool) -> int | None:
        """Create the directory for a new run of `config`, or check that it resumes with
        `config`; returns the step to resume from (``None`` for a new run). Nothing compiles
        before this has passed."""
        if not resume:
            if self.path.exists() and any(self.path.iterdir()):
                raise ValueError(
                    f"run directory {self.path} already exists; pass --resume to continue it, "
                    "or choose another --out."
                )
            self.path.mkdir(parents=True, exist_ok=True)
            self.config_path.write_text(json.dumps(config_dict(config), indent=2))
            return None
        if not self.config_path.exists():
            raise FileNotFoundError(
                f"--resume was given but {self.config_path} does not exist; start a new run "
                "without --resume, or point --out at an existing run directory."
            )
        saved = self.read_config()
        # Compared as JSON stores them (tuples become lists), as config.json was written.
        current = json.loads(json.dumps(config_dict(config)))
        diff = sorted(
            k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k]
        )
        if diff:
            details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in diff)
            raise ValueError(
                f"cannot resume {self.path}: its config differs in {details}. Resume with the "
                f"same settings (only {', '.join(sorted(RESUMABLE_CHANGES))} may change), or "
                "start a new run with a different --out."
            )
        step = self.latest_checkpoint()
        if step is None:
            raise FileNotFoundError(
                f"{self.path} has no complete checkpoint to resume from; start it again without "
                "--resume (delete the directory first)."
            )
        return step

    # -- metrics.jsonl ----------------------------------------------------------------------

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl``, checked: each line a JSON object with an integer
        ``step``, steps increasing by one.

        **Raises:** `FileNotFoundError` without the file; `ValueError` naming the line, what is
        wrong and the fix.
        """
        path = self.metrics_path
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: is {self.path} a run directory of `lpgx train`?"
            )
        records: list[dict[str, Any]] = []
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{path}, line {number}, is not valid JSON ({e}); {_METRICS_FIX}"
                ) from None
            step = record.get("step") if isinstance(record, dict) else None
            if not isinstance(step, int) or isinstance(step, bool):
                raise ValueError(
                    f"{path}, line {number}, is not a metrics record (a JSON object with an "
                    f'integer "step"); {_METRICS_FIX}'
                )
            if records and step != records[-1]["step"] + 1:
                raise ValueError(
                    f"{path}, line {number}: step {step} does not follow step "
                    f"{records[-1]['step']}; {_METRICS_FIX}"
                )
            records.append(record)
        return records

    def metrics_upto(self, step: int) -> list[str]:
        """The lines of ``metrics.jsonl`` up to `step` (a checkpoint's, to resume from). Lines
        after it are recomputed, so damage there (a line cut short by a killed job) is dropped
        silently; damage before it is an error naming the line."""
        path = self.metrics_path
        if not path.exists():
            return []
        kept: list[str] = []
        last = 0
        for line in path.read_text(errors="replace").splitlines():
            try:
                record_step = json.loads(line)["step"]
            except (json.JSONDecodeError, KeyError, TypeError):
                break
            if not isinstance(record_step, int) or record_step != last + 1 or record_step > step:
                break
            kept.append(line)
            last = record_step
        if last < step:
            self.read_metrics()  # names the first bad line
            raise ValueError(
                f"{path} ends at step {last}, but the checkpoint it resumes from is at step "
                f"{step}: records are missing; restore the file from a copy, or start a new "
                "run with another --out"
            )
        return kept

    def keep_metrics(self, lines: list[str]) -> None:
        """Keep only `lines` of ``metrics.jsonl`` (the records up to a resumed checkpoint)."""
        if self.metrics_path.exists():
            self.metrics_path.write_text("".join(line + "\n" for line in lines))

    def append_metrics(self, records: Iterable[dict[str, int | float]]) -> None:
        with self.metrics_path.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)

    # -- checkpoints ------------------------------------------------------------------------

    def latest_checkpoint(self) -> int | None:
        """The step of the newest complete checkpoint, or ``None``."""
        return latest_checkpoint(self.path)

    def save_checkpoint(
        self, step: int, state: Any, config: TrainConfig, wall_s: float, keep: int = 3
    ) -> Path:
        """Write the checkpoint of `step` atomically (keeping the newest `keep`)."""
        metadata = {"config": config_dict(config), "wall_s": wall_s}
        return save_checkpoint(self.path, step, state, metadata, keep)

    def load_checkpoint(self, step: int, like: Any) -> tuple[Any, float]:
        """The state of checkpoint `step`, shaped like `like`, and the wall time it was written
        at (seconds since the run started)."""
        state, meta = load_checkpoint(self.path, step, like)
        return state, float(meta.get("wall_s", 0.0))

    def trained_state(self, step: int | None = None) -> tuple[Any, Any]:
        """The state of checkpoint `step` (default: the latest) and the run's population
        `lpgx.Trainer`, built from ``config.json``."""
        trainer = build_trainer(self.config())
        step = self.latest_checkpoint() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{self.path} has no checkpoint yet; train for a while first.")
        state, _ = self.load_checkpoint(step, eqx.filter_eval_shape(trainer.init))
        return state, trainer

    def learned_rule(self, step: int | None = None) -> AbstractUpdateRule:
        """The rule of checkpoint `step` (default: the latest)."""
        state, _ = self.trained_state(step)
        return state.meta.rule

    def untrained_rule(self) -> AbstractUpdateRule:
        """The rule the run started from (its config and seed), before any meta-training."""
        return build_trainer(self.config()).initial_rule()

    # -- eval.json --------------------------------------------------------------------------

    def write_evaluation(self, evaluation: dict[str, Any]) -> None:
        self.eval_path.write_text(json.dumps(evaluation, indent=2))

    def evaluation(self) -> dict[str, Any] | None:
        """The held-out evaluation (``None`` if the run has not been evaluated)."""
        path = self.eval_path
        if not path.exists():
            return None
        fix = f"delete it and run `lpgx train --out {self.path} --resume` to evaluate the run again"
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); {fix}") from None
        if not isinstance(values, dict) or "final_rule" not in values:
            raise ValueError(f"{path} is not a held-out evaluation; {fix}")
        return values
