"""Meta-testing: common random numbers, learning curves, and `lpgx eval` end to end."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import lpgx
from lpgx.meta_testing import EvalSettings, compare
from lpgx_cli.main import main as cli

SETTINGS = EvalSettings(num_agents=3, lifetime=6, points=2, episodes=2, seed=1)


def test_a_rule_compared_with_itself_differs_by_exactly_zero() -> None:
    tasks = lpgx.get_level_set("dense")
    learner = lpgx.Learner(tasks.env(), lpgx.AgentConfig(num_workers=2, rollout_len=5))
    rule = lpgx.LPGConfig(hidden=8, y_size=4).build(jax.random.key(0))
    result = compare({"lpg": [rule], "same": [rule]}, tasks, learner, SETTINGS)
    (pair,) = [p for p in result["pairs"] if {p["a"], p["b"]} == {"lpg", "same"}]
    assert pair["diff_mean"] == 0.0 and pair["diff_se"] == 0.0
    a2c = result["methods"]["a2c"]
    assert a2c["fraction_of_a2c"] == 1.0 or (
        a2c["final_mean"] == 0 and a2c["fraction_of_a2c"] is None
    )
    # Returns measured before the first update and after each half of the 6-update lifetime.
    assert result["updates"] == [0, 3, 6]
    # Every rule starts from the same agents: identical returns before any update.
    first = {name: r["curve_mean"][0] for name, r in result["methods"].items()}
    assert len(set(first.values())) == 1, first
    # dense is tabular: the optimum is known, and no agent beats it.
    assert result["optimum_mean"] is not None
    assert max(r["fraction_of_optimum"] for r in result["methods"].values()) <= 1.0


def test_several_runs_stand_together_as_one_method() -> None:
    tasks = lpgx.get_level_set("dense")
    learner = lpgx.Learner(tasks.env(), lpgx.AgentConfig(num_workers=2, rollout_len=5))
    config = lpgx.LPGConfig(hidden=8, y_size=4)
    rules = [config.build(jax.random.key(s)) for s in range(2)]
    result = compare({"lpg": rules}, tasks, learner, SETTINGS)
    record = result["methods"]["lpg"]
    assert record["runs"] == 2 and record["final_se_between"] is not None
    assert np.isfinite(record["final_mean"]) and np.isfinite(record["auc"])


@pytest.mark.slow
def test_lpgx_eval_compares_a_run_with_its_untrained_rule_and_a2c(tmp_path: Path) -> None:
    run = tmp_path / "run"
    flags = ["--env-mode", "dense", "--num-agents", "2", "--num-mini-batches", "1"]
    flags += ["--env-workers", "2", "--train-rollout-len", "4", "--num-agent-updates", "1"]
    flags += ["--lpg-gru-width", "8", "--lpg-target-width", "4", "--train-steps", "2"]
    flags += ["--chunk-size", "2", "--out", str(run), "--no-evaluate"]
    assert cli(["train", *flags]) == 0
    out, png = tmp_path / "eval.json", tmp_path / "eval.png"
    args = [str(run), f"untrained:{run}", "a2c", "--on", "dense", "--agents", "2"]
    args += ["--lifetime", "4", "--points", "2", "--episodes", "2"]
    assert cli(["eval", *args, "--json", str(out), "--png", str(png)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert set(result["methods"]) == {"run", "untrained:run", "a2c"}
    assert result["agent"]["num_workers"] == 2  # the run's agents, recorded
    assert png.stat().st_size > 0
    assert cli(["eval", "a2c", "--on", "nowhere"]) == 2
