"""Held-out returns on a scale: the exact optimum of the same held-out tasks, the fraction of
it, and what the returns were measured on (level set, agents, lifetime)."""

import dataclasses
import io
import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console

from lpgx.envs import get_level_set, optimal_return, optimal_returns, split_levels
from lpgx.evaluation import fraction_of_optimal, held_out_key, held_out_optimum, held_out_tasks
from lpgx.train import train
from lpgx_cli.train import print_evaluation

from .test_train import TINY


def test_batched_optimum_equals_the_single_level_dp() -> None:
    for name in ("all_shortlife", "tabular"):
        levels = get_level_set(name)
        tasks = jax.vmap(levels.sample)(jax.random.split(jax.random.key(3), 5))
        batched = optimal_returns(levels.env(), tasks.level)
        single = [optimal_return(levels.env(), lv) for lv in split_levels(tasks.level)]
        np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="only defined for tabular"):
        rand = get_level_set("rand_tiny")
        optimal_returns(rand.env(), jax.vmap(rand.sample)(jax.random.split(key_(), 2)).level)


def key_() -> jax.Array:
    return jax.random.key(0)


def test_held_out_optimum_is_that_of_the_evaluated_tasks() -> None:
    levels = get_level_set("all_shortlife")
    key = held_out_key(0)
    optimum = held_out_optimum(levels, key, 4)
    assert optimum is not None
    tasks = held_out_tasks(levels, key, 4)
    expected = [optimal_return(levels.env(), lv) for lv in split_levels(tasks.level)]
    np.testing.assert_allclose(optimum, expected, rtol=1e-5, atol=1e-6)
    assert held_out_optimum(get_level_set("rand_tiny"), key, 4) is None


def test_fraction_of_optimal_is_a_ratio_of_means_with_its_standard_error() -> None:
    frac, se = fraction_of_optimal(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    assert frac == pytest.approx(0.5) and se == pytest.approx(0.0)
    # z = r − 1.0 · o = [−1, 1]: s.d. √2, s.e. √2 / √2 / mean(o) = 0.5.
    frac, se = fraction_of_optimal(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    assert frac == pytest.approx(1.0) and se == pytest.approx(0.5)
    # A task with optimum 0 adds nothing to either mean; all-zero optima: undefined.
    assert fraction_of_optimal(np.array([2.0, 0.0]), np.array([2.0, 0.0]))[0] == pytest.approx(1)
    assert math.isnan(fraction_of_optimal(np.array([0.0]), np.array([0.0]))[0])


def test_eval_json_puts_returns_on_a_scale(tmp_path: Path) -> None:
    result = train(TINY, tmp_path / "r")
    evaluation = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert result.evaluation == evaluation
    assert evaluation["level_set"] == "all_shortlife"
    assert evaluation["held_out_agents"] == TINY.eval_agents
    assert evaluation["lifetime_updates"] == 250 and evaluation["eval_episodes"] == 2
    optimum = held_out_optimum(get_level_set("all_shortlife"), held_out_key(0), 2)
    assert optimum is not None
    assert evaluation["optimal_return"] == pytest.approx(float(optimum.mean()))
    for rule in ("initial_rule", "final_rule"):
        r = evaluation[rule]
        assert r["fraction_of_optimal"] == pytest.approx(
            r["final_return"] / evaluation["optimal_return"]
        )
    # The final table: the fraction, the level set and the sizes, within 80 columns.
    out = io.StringIO()
    print_evaluation(Console(file=out, width=80), evaluation)
    lines = out.getvalue().splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    text = " ".join(" ".join(lines).split())
    assert "% of optimal" in text and "all_shortlife" in text and "250 updates" in text
    assert "Optimal return on the same tasks" in text


@pytest.mark.slow
def test_non_tabular_optimum_is_unknown(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, env_mode="rand_tiny", train_steps=2)
    evaluation = train(config, tmp_path / "r").evaluation
    assert evaluation is not None
    assert evaluation["optimal_return"] is None
    assert evaluation["optimal_return_note"].startswith("unknown")
    assert evaluation["final_rule"]["fraction_of_optimal"] is None
    out = io.StringIO()
    print_evaluation(Console(file=out, width=80), evaluation)
    assert "unknown" in out.getvalue()
