"""Meta-testing: common random numbers, learning curves, and `lpgx eval` end to end."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import lpgx
from lpgx.evaluation import EvalSettings, compare
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
    methods = {"lpg": rules, "same": rules, "swapped": rules[::-1]}
    names = {"lpg": ["s0", "s1"], "same": ["s0", "s1"], "swapped": ["s1", "s0"]}
    result = compare(methods, tasks, learner, SETTINGS, names)
    record = result["methods"]["lpg"]
    assert record["runs"] == 2 and record["final_se_between"] is not None
    assert np.isfinite(record["final_mean"]) and np.isfinite(record["auc"])
    pairs = {(p["a"], p["b"]): p for p in result["pairs"]}
    # Run i is paired with run i: the same runs differ by exactly 0, run by run.
    same = pairs["lpg", "same"]
    assert [(r["a"], r["diff_mean"], r["diff_se"]) for r in same["per_run"]] == [
        ("s0", 0.0, 0.0),
        ("s1", 0.0, 0.0),
    ]
    assert same["diff_se_between"] == 0.0
    # Swapped runs: the two per-run differences are each other's negatives, their mean is the
    # method-level difference (0), and the between-run s.e. is their spread.
    swapped = pairs["lpg", "swapped"]
    d0, d1 = (r["diff_mean"] for r in swapped["per_run"])
    assert d0 != 0.0  # two differently initialised rules end apart on these agents
    assert d0 == pytest.approx(-d1) and swapped["diff_mean"] == pytest.approx(0.0, abs=1e-12)
    assert swapped["diff_se_between"] == pytest.approx(abs(d0), rel=1e-6)
    assert record["final_per_run"][0] - record["final_per_run"][1] == pytest.approx(d0)
    # A2C is a single run: no run-by-run pairing with it.
    assert "per_run" not in pairs["lpg", "a2c"]


@pytest.mark.slow
def test_lpgx_eval_compares_a_run_with_its_untrained_rule_and_a2c(tmp_path: Path) -> None:
    run = tmp_path / "run"
    flags = ["--env-mode", "dense", "--num-agents", "2", "--num-mini-batches", "1"]
    flags += ["--env-workers", "2", "--train-rollout-len", "4", "--num-agent-updates", "1"]
    flags += ["--lpg-gru-width", "8", "--lpg-target-width", "4", "--train-steps", "2"]
    flags += ["--chunk-size", "2", "--out", str(run), "--no-evaluate"]
    assert cli(["train", *flags]) == 0
    out, png = tmp_path / "eval.json", tmp_path / "eval.png"
    flags = ["--on", "dense", "--agents", "2", "--lifetime", "4", "--points", "2"]
    flags += ["--episodes", "2"]
    # A run alone is measured against the rule it started from and A2C.
    assert cli(["eval", str(run), *flags, "--json", str(out), "--png", str(png)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert set(result["methods"]) == {"run", "untrained:run", "a2c"}
    assert result["agent"]["num_workers"] == 2  # the run's agents, recorded
    assert png.stat().st_size > 0
    # A checkpoint is a source too: the latest one is the run's learned rule.
    checkpoint = run / "ckpt" / "step_00000002.eqx"
    assert cli(["eval", str(checkpoint), "a2c", *flags, "--json", str(out)]) == 0
    (again,) = json.loads(out.read_text())["results"]
    assert set(again["methods"]) == {"run@2", "a2c"}
    assert again["methods"]["run@2"]["curve_mean"] == result["methods"]["run"]["curve_mean"]
    assert cli(["eval", "a2c", "--on", "nowhere"]) == 2
    assert cli(["eval", str(run / "config.json"), "--on", "dense"]) == 2


def test_a_level_gives_the_same_result_whatever_set_it_is_padded_into() -> None:
    from lpgx.envs import GridWorld, Task
    from lpgx.lifetime import evaluate_return, train_lifetime

    levels = lpgx.get_level_set("dense")
    level = levels.sample(jax.random.key(2)).level
    own = levels.env()
    bigger = GridWorld(
        max_grid_size=own.max_grid_size + 2,
        max_objects=own.max_objects + 1,
        max_types=own.max_types + 1,
        tabular=True,
    )
    padded = level.pad(bigger.max_grid_size, bigger.max_objects, bigger.max_types)
    config = lpgx.AgentConfig(num_workers=4, rollout_len=20)
    rule = lpgx.LPGConfig(hidden=8, y_size=4).build(jax.random.key(0))

    @jax.jit
    def lifetime(learner: lpgx.Learner, task: Task) -> tuple[jax.Array, ...]:
        agent, metrics = train_lifetime(learner, rule, task, jax.random.key(3), 6)
        returns = evaluate_return(learner, agent.params, task.level, jax.random.key(4), 4, 500)
        return metrics["loss"], metrics["rollout_reward"], returns

    six = jax.numpy.asarray(6, jax.numpy.int32)
    alone = lifetime(lpgx.Learner(own, config), Task(level=level, lifetime=six))
    in_set = lifetime(lpgx.Learner(bigger, config), Task(level=padded, lifetime=six))
    # The same agent (initial policy, losses, rollouts, evaluation episodes) in both paddings.
    # Before agents drew their initial tables input by input (`InputLayout`), the padded
    # table's larger fan-in and different random rows gave different losses and returns here.
    for x, y in zip(alone, in_set, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_lpgx_eval_a2c_on_dense_reproduces_the_a2c_baseline(tmp_path: Path) -> None:
    # benchmarks/RESULTS.md, "A2C baseline (full lifetime)": A2C on `dense` with the reference
    # tabular agent (64 workers × 20 steps, 2500 updates) reaches 27.42 ± 2.69 (8 seeds), 0.664
    # of the optimum. `lpgx eval` trains the same agents through another path (its own task and
    # key streams); 4 agents instead of 8 and 16 episodes instead of 64 (the reduced size), so
    # the two must agree within 3 standard errors of their difference.
    out = tmp_path / "a2c.json"
    args = ["a2c", "--on", "dense", "--agents", "4", "--points", "1", "--episodes", "16"]
    assert cli(["eval", *args, "--workers", "64", "--rollout-len", "20", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["lifetime_updates"] == 2500
    a2c = result["methods"]["a2c"]
    diff_se = float(np.hypot(a2c["final_se_within"], 2.69))
    assert abs(a2c["final_mean"] - 27.42) < 3 * diff_se, (a2c["final_mean"], diff_se)
    assert 0.3 < a2c["fraction_of_optimum"] <= 1.0
