"""One place gives every metric its display name, unit and scale; figures use it."""

import json
from pathlib import Path

import numpy as np
import pytest

from lpgx.metrics import METRICS, RECORD_FIELDS, describe
from lpgx.plotting import _axis_scale
from lpgx.run_dir import RunDir

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden_metrics.json").read_text())


def test_every_metric_a_run_reports_is_described() -> None:
    # The golden runs cover the meta-gradient, ES and GROOVE (PLR) metrics.
    keys = {k for run in GOLDEN.values() for r in run["metrics"] for k in r}
    missing = sorted(k for k in keys - set(RECORD_FIELDS) if k not in METRICS)
    assert not missing, f"add these to lpgx.metrics.METRICS: {missing}"
    assert describe("no/such_metric").name == "no/such_metric"
    assert METRICS["meta_grad_norm"].label == "meta-gradient norm (before clipping)"


def test_log_scales_only_where_values_span_decades() -> None:
    assert _axis_scale("log", np.array([0.1, 2432.0, 0.2, 0.3])) == "log"
    assert _axis_scale("log", np.array([0.5, 0.6, 0.7])) == "linear"
    assert _axis_scale("log", np.array([-1.0, 500.0, 0.1, 0.2])) == "symlog"
    assert _axis_scale("linear", np.array([0.1, 2432.0])) == "linear"


def test_damaged_eval_json_names_the_file(tmp_path: Path) -> None:
    assert RunDir(tmp_path).evaluation() is None
    (tmp_path / "eval.json").write_text("{")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'eval.json'} is not valid JSON"):
        RunDir(tmp_path).evaluation()
    (tmp_path / "eval.json").write_text("[]")
    with pytest.raises(ValueError, match="is not a held-out evaluation"):
        RunDir(tmp_path).evaluation()
