"""Help that fits: `lpgx train --help` grouped by component at 80 columns with every flag
once and every preset described and timed; the top-level help names every preset."""

import dataclasses
import re

import pytest
from rich.cells import cell_len

from lpgx.compose import PRESETS, TrainConfig
from lpgx_cli.help import GROUPS, PRESET_TIMES, flag_groups
from lpgx_cli.main import main as cli


def _help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    assert cli(list(argv)) == 0
    captured = capsys.readouterr()
    assert captured.out, "help goes to stdout"
    return captured.out


def test_every_field_is_in_exactly_one_group() -> None:
    groups = flag_groups()
    placed = [f for fields in groups.values() for f in fields]
    assert sorted(placed) == sorted(f.name for f in dataclasses.fields(TrainConfig))
    assert len(placed) == len(set(placed))
    assert list(groups) == [key for key, _, _ in GROUPS]
    assert "lpg_gru_width" in groups["rule"] and "es_b1" in groups["es"]
    assert "num_agents" in groups["tasks"] and "env_workers" in groups["agents"]


def test_train_help_is_grouped_and_fits_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _help(capsys, monkeypatch, "train", "--help")
    lines = out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert "…" not in out  # nothing cropped
    for _, title, _ in GROUPS:
        assert title in out
    # Every flag of TrainConfig, under its own name, exactly once at the start of a line.
    starts = [line.split()[0] for line in lines if line.startswith("--")]
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        assert starts.count(flag) == 1, flag
    for flag in ("--out", "--resume", "--evaluate", "--wandb-entity", "--preset"):
        assert starts.count(flag) == 1, flag
    # --wandb-entity is documented (its text follows it on the same line).
    entity = next(line for line in lines if line.startswith("--wandb-entity"))
    assert "entity" in entity.split(None, 2)[2]
    # The order of groups: agents' flags come after the tasks' and before the ES flags.
    assert starts.index("--num-agents") < starts.index("--env-workers") < starts.index("--es-b1")


def test_train_help_lists_every_preset_with_a_time(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _help(capsys, monkeypatch, "train", "--preset", "lpg", "--help")
    assert set(PRESET_TIMES) == set(PRESETS)
    flat = " ".join(out.split())
    for name in PRESETS:
        assert re.search(rf"(^|\s){re.escape(name)}\s", out), name
    assert "GPU job" in flat and "min on 2" in flat
    # Defaults shown are the chosen preset's.
    assert "Defaults below are the lpg preset's" in flat
    assert "--num-agents INT" in out and "(default: 512)" in flat


def test_top_level_help_names_every_preset(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = " ".join(_help(capsys, monkeypatch, "--help").split())
    for name in PRESETS:
        assert name in out
    for command in ("train", "plot", "bench", "levels"):
        assert command in out
