"""Runs that survive a scheduler: SIGTERM checkpoints and exits 143, a resumed run equals an
uninterrupted one, checkpoints stay on multiples of ``--checkpoint-every``, and a damaged
``config.json`` or ``metrics.jsonl`` is reported with the file and the fix."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from lpgx.compose import TrainConfig
from lpgx.run_dir import RunDir
from lpgx.train import TrainCallbacks, train
from lpgx_cli.main import main as cli

from .test_train import TINY

ROOT = Path(__file__).resolve().parents[1]


def _flags(config: TrainConfig) -> list[str]:
    """`lpgx train` flags that give `config` (only the fields TINY sets)."""
    out = []
    for field in (
        "env_mode", "train_steps", "num_agents", "num_mini_batches", "env_workers",
        "train_rollout_len", "num_agent_updates", "lpg_gru_width", "lpg_target_width",
        "chunk_size", "checkpoint_every", "eval_agents", "eval_episodes",
    ):  # fmt: skip
        out += ["--" + field.replace("_", "-"), str(getattr(config, field))]
    return out


def _without_wall(run_dir: Path) -> list[dict[str, float]]:
    records = RunDir(run_dir).read_metrics()
    for r in records:
        r.pop("wall_s")
    return records


def _rule_leaves(state: object) -> list[np.ndarray]:
    rule = state.meta.rule  # type: ignore[attr-defined]
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(rule, eqx.is_inexact_array))]


@pytest.mark.slow
def test_sigterm_checkpoints_and_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    # 1000 meta-steps of ~10 ms: the signal, sent once the first chunk's metrics are written,
    # arrives long before the end; a checkpoint would otherwise only be written at the end.
    config = dataclasses.replace(TINY, train_steps=1000, checkpoint_every=100_000)
    run = tmp_path / "stopped"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "lpgx_cli.main", "train", "--out", str(run), "--no-evaluate"]
    proc = subprocess.Popen(
        [*cmd, *_flags(config)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while not (metrics.exists() and metrics.read_text().strip()):
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "the run wrote no metrics in 10 minutes"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 143, err.decode()
    assert "SIGTERM" in err.decode()
    stopped_at = RunDir(run).latest_checkpoint()
    assert stopped_at is not None and 0 < stopped_at < config.train_steps
    assert len(RunDir(run).read_metrics()) == stopped_at  # metrics and checkpoint agree

    # The CLI's defaults are the quick preset's; TINY's fields are as given.
    config = RunDir(run).config()
    assert config.train_steps == 1000 and config.lpg_gru_width == TINY.lpg_gru_width
    resumed = train(config, run, resume=True, evaluate=False)
    straight = train(config, tmp_path / "straight", evaluate=False)
    assert resumed.final_step == straight.final_step == config.train_steps
    assert _without_wall(run) == _without_wall(tmp_path / "straight")
    for x, y in zip(_rule_leaves(straight.state), _rule_leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(x, y)


def test_checkpoints_after_a_resume_stay_on_multiples(tmp_path: Path) -> None:
    # Stopped at step 3 (an odd chunk boundary), resumed with checkpoints every 4 steps.
    first = dataclasses.replace(TINY, train_steps=3, chunk_size=3, checkpoint_every=100)
    train(first, tmp_path / "r", evaluate=False)
    assert RunDir(tmp_path / "r").latest_checkpoint() == 3
    more = dataclasses.replace(first, train_steps=12, chunk_size=1, checkpoint_every=4)
    written: list[int] = []

    class Record(TrainCallbacks):
        def on_checkpoint(self, step: int, path: Path) -> None:
            written.append(step)

    train(more, tmp_path / "r", resume=True, evaluate=False, callbacks=Record())
    assert written == [4, 8, 12]  # not 7, 11 (every 4 steps counted from the resume)


def test_corrupt_config_json_names_the_file_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    load_config = RunDir(tmp_path).config
    path.write_text('{"num_agents": 8,')
    with pytest.raises(ValueError, match=rf"{path} is not valid JSON.*restore it from a copy"):
        load_config()
    path.write_text('{"num_agents": "eight"}')
    with pytest.raises(ValueError, match=rf"{path}: num_agents = 'eight' is not a valid"):
        load_config()
    path.write_text('{"num_agentz": 8}')
    with pytest.raises(ValueError, match=rf"{path} has fields .* num_agentz; remove them"):
        load_config()
    path.write_text('{"checkpoint_every": 0}')
    with pytest.raises(ValueError, match=rf"{path}: --checkpoint-every must be at least 1"):
        load_config()
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=rf"{path} holds a JSON list, not a config object"):
        load_config()
    path.write_text('{"num_agents": 8, "lpg_learning_rate": 1, "agent_hidden": [32, 32]}')
    config = load_config()  # an int where a float goes, a list for a tuple: fine
    assert config.agent_hidden == (32, 32) and config.lpg_learning_rate == 1
    # Through the CLI: one line naming the file, exit status 2, no traceback.
    path.write_text("{")
    assert cli(["train", "--out", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert str(path) in err and "Traceback" not in err


def test_corrupt_metrics_jsonl_names_the_file_line_and_fix(tmp_path: Path) -> None:
    half = dataclasses.replace(TINY, train_steps=2)
    train(half, tmp_path / "r", evaluate=False)
    path = tmp_path / "r" / "metrics.jsonl"
    good = path.read_text().splitlines()
    assert len(good) == 2
    # A line cut short after the checkpoint (a job killed mid-write) is dropped on resume.
    path.write_text(good[0] + "\n" + good[1] + "\n" + good[1][:20])
    with pytest.raises(ValueError, match=rf"{path}, line 3, is not valid JSON.*delete that line"):
        RunDir(tmp_path / "r").read_metrics()
    resumed = train(TINY, tmp_path / "r", resume=True, evaluate=False)
    assert [r["step"] for r in RunDir(tmp_path / "r").read_metrics()] == [1, 2, 3, 4]
    assert resumed.final_step == 4
    # Damage before the checkpoint: refused before compiling, naming the file and the line.
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{oops", *lines[2:]]) + "\n")
    more = dataclasses.replace(TINY, train_steps=6)
    with pytest.raises(ValueError, match=rf"{path}, line 2, is not valid JSON"):
        train(more, tmp_path / "r", resume=True, evaluate=False)
    path.write_text("\n".join([lines[0], '{"loss": 1.0}', *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=rf"{path}, line 2, is not a metrics record"):
        train(more, tmp_path / "r", resume=True, evaluate=False)
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match=rf"{path}, line 2: step 3 does not follow step 1"):
        train(more, tmp_path / "r", resume=True, evaluate=False)
    # `lpgx plot` reports the same.
    with pytest.raises(ValueError, match=rf"{path}, line 2"):
        from lpgx.plotting import load_metrics

        load_metrics(tmp_path / "r")
