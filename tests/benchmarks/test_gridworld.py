"""The reference-protocol grid-world benchmark runs end to end at tiny sizes."""

from pathlib import Path

import pytest

from benchmarks import gridworld


def test_gridworld_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.md"
    argv = ["--level-sets", "all_shortlife", "--num-envs", "2", "--steps", "3"]
    argv += ["--repeats", "1", "--markdown", str(out)]
    assert gridworld.main(argv) == 0
    text = out.read_text()
    assert "| all_shortlife | 2 |" in text
    assert "reference env steps/s" in text and "jaxlib" in text
    assert "all_shortlife" in capsys.readouterr().out
    assert gridworld._reference("all_shortlife", 64) == "5.40–5.70 M"
    assert gridworld._reference("mazes", 64) == "—"
    result = gridworld.Result("all_shortlife", 64, 10, 1.0, 0.5, 0.4, 0.6)
    assert gridworld.rows([result])[0] == [
        "all_shortlife",
        "64",
        "1.00",
        "500.0",
        "400.0–600.0",
        "1,280",
        "5.40–5.70 M",
    ]


def test_unknown_level_set_fails_before_compiling() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        gridworld.run(gridworld.Config(level_sets=("all", "nope"), steps=1))
