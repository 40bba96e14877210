"""The training loop: exact resumption, one compilation per chunk, early and clear errors."""

import dataclasses
import json
import shutil
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from lpgx.checkpoint import checkpoint_paths, latest_checkpoint
from lpgx.compose import PRESETS, TrainConfig, build, build_trainer
from lpgx.run_dir import RunDir
from lpgx.train import train
from lpgx_cli.main import main as cli

DATA = Path(__file__).parent / "data"
TINY = TrainConfig(
    env_mode="all_shortlife",
    train_steps=4,
    num_agents=2,
    num_mini_batches=2,
    env_workers=2,
    train_rollout_len=4,
    num_agent_updates=2,
    lpg_gru_width=8,
    lpg_target_width=4,
    chunk_size=2,
    checkpoint_every=2,
    eval_agents=2,
    eval_episodes=2,
)


def _rule_leaves(state: object) -> list[np.ndarray]:
    rule = state.meta.rule  # type: ignore[attr-defined]
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(rule, eqx.is_inexact_array))]


def test_resume_is_bitwise_exact(tmp_path: Path) -> None:
    straight = train(TINY, tmp_path / "a", evaluate=False)
    assert straight.final_step == 4

    half = dataclasses.replace(TINY, train_steps=2)
    first = train(half, tmp_path / "b", evaluate=False)
    assert first.final_step == 2 and latest_checkpoint(tmp_path / "b") == 2
    resumed = train(TINY, tmp_path / "b", resume=True, evaluate=False)
    assert resumed.final_step == 4

    for x, y in zip(_rule_leaves(straight.state), _rule_leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(x, y)
    # metrics.jsonl holds exactly one record per meta-step, also across the resumption.
    for run in ("a", "b"):
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        steps = [json.loads(line)["step"] for line in lines]
        assert steps == [1, 2, 3, 4]
    assert latest_checkpoint(tmp_path / "a") == 4

    # A run directory written by lpgx 0.1.0.dev0 (config, metrics and checkpoint of TINY's
    # first two steps, checked in) resumes with today's code to the same bits as well.
    old = tmp_path / "old"
    shutil.copytree(DATA / "run_0.1.0.dev0", old)
    assert RunDir(old).config() == dataclasses.replace(TINY, train_steps=2)
    continued = train(TINY, old, resume=True, evaluate=False)
    for x, y in zip(_rule_leaves(straight.state), _rule_leaves(continued.state), strict=True):
        np.testing.assert_array_equal(x, y)
    assert _without_wall(old) == _without_wall(tmp_path / "a")


def _without_wall(run_dir: Path) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in RunDir(run_dir).read_metrics()]


def test_chunks_never_recompile() -> None:
    trainer = build_trainer(TINY)
    state = trainer.init()
    run = eqx.filter_jit(eqx.debug.assert_max_traces(trainer.run_chunk, max_traces=1))
    for _ in range(3):  # the third chunk runs past train_steps: masked, same compiled code
        state, metrics = run(state)
    assert int(state.step) == 4
    assert np.asarray(metrics["valid"]).tolist() == [0.0, 0.0]


def test_indivisible_mini_batches_fail_early() -> None:
    with pytest.raises(ValueError, match="not divisible by --num-mini-batches"):
        build_trainer(dataclasses.replace(TINY, num_agents=3, num_mini_batches=2))


def test_unknown_level_set_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown --env-mode 'nope'; choose one of: dense"):
        train(dataclasses.replace(TINY, env_mode="nope"), tmp_path / "r")
    assert not (tmp_path / "r").exists()  # failed before creating anything


def test_existing_run_dir_needs_resume(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "something").write_text("x")
    with pytest.raises(ValueError, match="pass --resume"):
        train(TINY, tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(TINY, tmp_path / "other", resume=True)


def test_checkpoint_of_another_config_and_corruption(tmp_path: Path) -> None:
    half = dataclasses.replace(TINY, train_steps=2)
    train(half, tmp_path / "r", evaluate=False)
    # Another config: refused with the fields that differ, before compiling.
    with pytest.raises(ValueError, match="lpg_gru_width: 8 -> 16"):
        train(dataclasses.replace(TINY, lpg_gru_width=16), tmp_path / "r", resume=True)
    # A config.json edited to claim another structure: the checkpoint's fingerprint refuses it.
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    (tmp_path / "r" / "config.json").write_text(json.dumps({**config, "lpg_gru_width": 16}))
    with pytest.raises(ValueError, match="different configuration"):
        train(dataclasses.replace(TINY, lpg_gru_width=16), tmp_path / "r", resume=True)
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    # A corrupted checkpoint file is detected (checksum), and the message names the fix.
    leaves, _ = checkpoint_paths(tmp_path / "r", 2)
    data = bytearray(leaves.read_bytes())
    data[-5] ^= 0xFF
    leaves.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupted.*delete it"):
        train(TINY, tmp_path / "r", resume=True)


def test_cli_train_runs_and_reports_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "train", "--out", str(tmp_path / "run"), "--env-mode", "all_shortlife",
        "--train-steps", "2", "--num-agents", "2", "--num-mini-batches", "1",
        "--env-workers", "2", "--train-rollout-len", "4", "--num-agent-updates", "1",
        "--lpg-gru-width", "8", "--chunk-size", "2", "--eval-agents", "2", "--eval-episodes", "2",
    ]  # fmt: skip
    assert cli(args) == 0
    assert (tmp_path / "run" / "eval.json").exists()
    assert cli(["plot", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "learning_curves.png").stat().st_size > 0
    # The same directory again without --resume: a clear error, no traceback.
    assert cli(args) == 2
    assert "pass --resume" in " ".join(capsys.readouterr().err.split())  # rich wraps
    assert cli(["train", "--num-agents", "3", "--num-mini-batches", "2"]) == 2
    assert cli(["train", "--preset", "nope"]) == 2


def test_presets_are_valid() -> None:
    for _, config in PRESETS.values():
        build(config)  # a population Trainer, or an OnlineTrainer for --rule mgrl
    assert PRESETS["lpg"][1].num_agents == 512 and PRESETS["lpg"][1].num_mini_batches == 16
    assert PRESETS["lpg"][1].train_steps == 5000 and PRESETS["lpg"][1].env_mode == "all_shortlife"


def test_periodic_evaluation_logs_held_out_returns(tmp_path: Path) -> None:
    config = dataclasses.replace(
        TINY, eval_on="dense", eval_every=2, eval_on_agents=2, eval_on_lifetime=2
    )
    run = train(config, tmp_path / "run", evaluate=False)
    assert run.final_step == 4
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    key = "eval/dense/return"
    # Every --eval-every steps (chunks of 2): after steps 2 and 4, not in between.
    assert [key in r for r in records] == [False, True, False, True]
    for r in records[1::2]:
        assert np.isfinite(r[key]) and r[key + "_se"] >= 0
        # dense is tabular: the optimum of the same tasks is known, and no agent beats it.
        assert r["eval/dense/fraction_of_optimum"] <= 1
    # The same agents and tasks every time (also after a resume): only the rule differs.
    from lpgx.train import periodic_evaluation

    periodic = periodic_evaluation(config)
    assert periodic is not None
    assert periodic(run.state.meta.rule)[key] == records[-1][key]
    from lpgx.plotting import plot_learning_curves

    assert plot_learning_curves(tmp_path / "run").stat().st_size > 0


def test_default_eval_interval_keeps_evaluation_a_tenth_of_training() -> None:
    from lpgx.train import eval_interval, periodic_evaluation

    config = dataclasses.replace(PRESETS["quick"][1], eval_on="mazes,dense")
    trainer = build_trainer(config)
    periodic = periodic_evaluation(config)
    assert periodic is not None
    interval = eval_interval(config, periodic, trainer)
    per_step = trainer.env_steps_per_meta_step
    assert interval % config.chunk_size == 0
    # The smallest multiple of the chunk size whose training covers ten evaluations.
    assert 10 * periodic.env_steps <= interval * per_step
    assert 10 * periodic.env_steps > (interval - config.chunk_size) * per_step
    bad = dataclasses.replace(TINY, eval_on="dense,nowhere")
    with pytest.raises(ValueError, match="--eval-on nowhere"):
        periodic_evaluation(bad)


def test_a_start_whose_chunk_fails_to_trace_does_not_wait_forever() -> None:
    """`train` traces its initialiser once the chunk's program is traced: a chunk that fails
    before that still lets the start go on, and its error is raised where the program is
    needed."""
    from lpgx.train import _Background

    def fails(traced: object) -> None:
        del traced
        raise ValueError("the chunk could not be traced")

    background = _Background(fails)
    background.wait_traced()  # returns: the thread has ended
    with pytest.raises(ValueError, match="could not be traced"):
        background.result()
