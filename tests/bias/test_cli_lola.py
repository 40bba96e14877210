"""`lpgx bias lola`, run in-process through `lpgx_cli.bias_lola.main`."""

import json
from pathlib import Path

import pytest

from lpgx_cli import bias_lola


def test_quick_run_writes_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lola"
    assert bias_lola.main(["--variant", "original_exact_exact", "--quick", "--out", str(out)]) == 0
    data = json.loads((out / "lola.json").read_text())
    res = data["variants"]["original_exact_exact"]
    # --quick: 2 seeds × 20 iterations.
    assert data["seeds"] == [0, 1] and data["iterations"] == 20
    for key in ("joint_return", "corr", "corr_outer_exact", "exact_return"):
        assert len(res[key]) == 2 and all(len(row) == 20 for row in res[key])
    assert res["summary"]["mean_corr"] == pytest.approx(1.0, abs=1e-4)
    assert -2.0 <= res["summary"]["final_joint_return"] <= -1.0
    assert (out / "lola.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "original_exact_exact" in capsys.readouterr().err


def test_unknown_variant_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bias_lola.main(["--variant", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown LOLA variant(s) 'nope'" in err and "original_128_128" in err
    assert not (tmp_path / "x").exists()  # nothing compiled or written
