"""The XLA-options benchmark runs end to end on the grid-world programs and refuses
comparisons that compare nothing."""

from pathlib import Path

import pytest

from benchmarks import xla_options
from lpgx import _xla


def test_xla_options_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.md"
    argv = ["--no-chunk", "--rounds", "1", "--run-rounds", "2", "--markdown", str(out)]
    # Explicit settings, so the comparison runs wherever lpgx would not add the LLVM options.
    argv += ["--a=" + " ".join(_xla.default_flags(codegen=False))]
    argv += ["--b=" + " ".join(_xla.default_flags(codegen=True))]
    assert xla_options.main(argv) == 0
    text = out.read_text()
    for n in (1, 64, 4096):
        row = next(line for line in text.splitlines() if line.startswith(f"| grid world, {n} env"))
        # The LLVM options change how code is scheduled, not what it computes.
        assert row.rstrip().endswith("| yes |"), row
    assert "-disable-lsr" in text and "jaxlib" in text
    assert "grid world" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--no-chunk", "--no-gridworld"], "no program"),
        (["--rounds", "0"], "must be positive"),
        (["--a=--xla_cpu_foo=1", "--b=--xla_cpu_foo=1"], "the same"),
    ],
)
def test_bad_options_fail_before_compiling(argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        xla_options.main(argv)
