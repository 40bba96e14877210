"""Behaviour is pinned: the first meta-steps of three tiny runs (meta-gradient, ES, GROOVE)
through `lpgx train` give exactly the metrics recorded before the core was opened up.

``tests/data/golden_metrics.json`` was first written by the code of commit 8451cdd (before the
refactor into environment / rule / meta-optimiser / score interfaces and the composition
layer), running the flags stored beside each run's metrics through ``lpgx train --out DIR
--no-evaluate`` and dropping the wall times; the refactor kept them bitwise. It was re-recorded
on purpose once, when grid-world agents began drawing their initial tables input by input
(`lpgx.envs.InputLayout`: a level's initial policy no longer depends on its set's padding),
which changes every initial agent and so every metric. Seed 6 gives the meta-gradient and
GROOVE runs an agent whose staggered lifetime (2 updates) ends at the first step, so a level
is scored (GROOVE trains its antagonist) and a fresh agent starts; the ES run ends every lifetime at
every generation. A change here is a change of behaviour: say so in the changelog and
re-record the file only on purpose.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from lpgx_cli.main import main as cli

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden_metrics.json").read_text())


@pytest.mark.parametrize("run", sorted(GOLDEN))
def test_first_meta_steps_match_the_recorded_metrics(run: str, tmp_path: Path) -> None:
    flags, expected = GOLDEN[run]["flags"], GOLDEN[run]["metrics"]
    assert cli(["train", *flags, "--out", str(tmp_path / run), "--no-evaluate"]) == 0
    lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == [r["step"] for r in expected]
    for got, want in zip(records, expected, strict=True):
        got.pop("wall_s")
        assert sorted(got) == sorted(want), f"{run}: metric names changed"
        for name, value in want.items():
            # Same code path, same keys, same backend: equal to float32 rounding (the runs
            # were bitwise identical when recorded; the tolerance only absorbs XLA versions).
            np.testing.assert_allclose(got[name], value, rtol=2e-5, atol=1e-7, err_msg=name)
