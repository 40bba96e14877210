"""The environment-throughput benchmark runs end to end at tiny sizes."""

from pathlib import Path

import pytest

import lpgx
from benchmarks import env_throughput
from benchmarks.common import environment_info, markdown_table, script_main, time_compiled


def test_time_compiled_reports_compile_and_repeats() -> None:
    timing, out = time_compiled(lambda x: x * 2, 3.0, repeats=3)
    assert float(out) == 6.0
    assert len(timing.times_s) == 3 and timing.compile_s > 0
    assert timing.min_s <= timing.median_s <= timing.max_s
    info = environment_info()
    assert info["jax"] and info["devices"]
    assert markdown_table(["a", "b"], [["x", "1"]]).splitlines()[1] == "|---|---:|"


def test_script_main_turns_speedups_on_before_main(monkeypatch: pytest.MonkeyPatch) -> None:
    # `python -m benchmarks.X` times lpgx as the `lpgx` command runs it; the speed-ups
    # themselves are replaced here so that this test process keeps JAX's settings.
    calls: list[str] = []
    monkeypatch.setattr(lpgx, "enable_speedups", lambda: calls.append("speedups"), raising=False)

    def main() -> int:
        calls.append("main")
        return 3

    with pytest.raises(SystemExit) as exit_:
        script_main(main)
    assert exit_.value.code == 3 and calls == ["speedups", "main"]
    with pytest.raises(SystemExit) as exit_:
        script_main(lambda: None)
    assert exit_.value.code == 0


def test_env_throughput_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.md"
    # One small non-tabular set: its step has the most code paths (placement of respawns).
    argv = ["--level-sets", "rand_tiny", "--num-envs", "2"]
    argv += ["--steps", "5", "--repeats", "1", "--markdown", str(out)]
    assert env_throughput.main(argv) == 0
    text = out.read_text()
    assert "env steps/s" in text and "| rand_tiny | no | 2 | 5 |" in text and "jaxlib" in text
    assert "rand_tiny" in capsys.readouterr().out


def test_unknown_level_set_fails_before_compiling() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        env_throughput.run(env_throughput.Config(level_sets=("all", "nope"), steps=1))
