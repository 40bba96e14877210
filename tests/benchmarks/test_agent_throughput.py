"""The agent-throughput benchmark and the A2C baseline run end to end at tiny sizes."""

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import a2c_baseline, agent_throughput


def test_agent_throughput_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.md"
    argv = ["--level-sets", "dense", "--num-agents", "2", "--updates", "2"]
    argv += ["--workers", "2", "--rollout-len", "3", "--repeats", "1", "--markdown", str(out)]
    assert agent_throughput.main(argv) == 0
    text = out.read_text()
    assert "env steps/s" in text and "dense" in text and "jaxlib" in text
    assert "| dense | tabular | 2 | 2×3 | 2 |" in text
    assert "dense" in capsys.readouterr().out


def test_agent_throughput_mlp_agent() -> None:
    r = agent_throughput.measure("rand_tiny", 2, updates=2, workers=2, rollout_len=3, repeats=2)
    assert not r.tabular and r.num_agents == 2
    assert r.env_steps == 2 * 2 * 3 * 2
    assert 0 < r.min_s <= r.median_s <= r.max_s and r.compile_s > 0
    assert math.isfinite(r.steps_per_s) and r.steps_per_s > 0
    assert r.updates_per_s * r.workers * r.rollout_len == pytest.approx(r.steps_per_s)
    assert len(agent_throughput.rows([r])[0]) == len(agent_throughput.HEADER)


def test_agent_throughput_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        agent_throughput.run(agent_throughput.Config(level_sets=("dense", "nope")))
    with pytest.raises(ValueError, match="must be positive"):
        agent_throughput.measure("dense", 0)


def test_a2c_baseline_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.md"
    argv = ["--levels", "sparse", "--seeds", "2", "--all-levels", "0", "--num-updates", "3"]
    argv += ["--workers", "2", "--rollout-len", "3", "--episodes", "4", "--markdown", str(out)]
    assert a2c_baseline.main(argv) == 0
    text = out.read_text()
    assert "fraction of optimal" in text and "jaxlib" in text
    assert "| sparse | 2 | 3 |" in text  # two seeds, three updates each
    assert "nan" not in text.lower()
    assert "sparse" in capsys.readouterr().out


def _result(final: list[float], optimal: list[float]) -> a2c_baseline.Result:
    n = len(final)
    return a2c_baseline.Result(
        level_set="x",
        workers=2,
        rollout_len=3,
        episodes=4,
        num_updates=5,
        min_optimal=1e-3,
        final_return=np.asarray(final),
        initial_return=np.zeros(n),
        optimal=np.asarray(optimal),
        lifetime=np.full(n, 5),
        updates=np.full(n, 5),
        compile_s=1.0,
        train_s=1.0,
        optimal_s=1.0,
        wall_s=3.0,
    )


def test_a2c_baseline_fraction_guards_zero_optimal() -> None:
    r = _result([1.0, 0.5, 0.0], [2.0, 0.5, 0.0])
    np.testing.assert_allclose(r.fraction[:2], [0.5, 1.0])
    assert math.isnan(r.fraction[2]) and r.excluded == 1
    assert r.env_steps == 3 * 5 * 2 * 3
    row = a2c_baseline.rows([r])[0]
    assert len(row) == len(a2c_baseline.HEADER)
    assert row[6] == "0.750 ± 0.250 (1 excl.)"
    assert row[3] == "0.50 ± 0.29"


def test_a2c_baseline_rejects_non_tabular_sets() -> None:
    with pytest.raises(ValueError, match="not tabular"):
        a2c_baseline.run(a2c_baseline.Config(levels=("dense", "rand_dense")))
    with pytest.raises(ValueError, match="choose one of"):
        a2c_baseline.run(a2c_baseline.Config(levels=("nope",)))
