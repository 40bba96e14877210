"""`lpgx bias lpg`: the LPG's meta-gradient in each way of differentiating, end to end."""

import json
from pathlib import Path

from lpgx_cli.bias import main as bias


def test_lpg_bias_runs_end_to_end(tmp_path: Path) -> None:
    args = ["lpg", "--quick", "--out", str(tmp_path), "--repeats", "2"]
    args += ["--reference-repeats", "2", "--differentiations", "exact", "stop_gradient"]
    assert bias(args) == 0
    result = json.loads((tmp_path / "lpg.json").read_text())
    assert set(result["methods"]) == {"exact", "stop_gradient"}
    for record in result["methods"].values():
        assert -1.0 <= record["corr_mean"] <= 1.0 and record["seconds_per_meta_gradient"] > 0
    assert (tmp_path / "lpg.png").stat().st_size > 0
    assert bias(["lpg", "--quick", "--differentiations", "dice"]) == 2
