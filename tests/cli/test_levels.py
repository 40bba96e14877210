"""`lpgx levels list | show`, run in-process through the `lpgx` dispatcher."""

import json
from pathlib import Path

import pytest

from lpgx.envs import LEVEL_SET_NAMES
from lpgx_cli import levels as levels_cli
from lpgx_cli import main as cli


def test_list_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["levels", "list"]) == 0
    err = capsys.readouterr().err
    assert "rand_all" in err and "longer" in err


def test_list_json_has_every_level_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert levels_cli.main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list(LEVEL_SET_NAMES)
    by_name = {row["name"]: row for row in rows}
    assert by_name["all"]["grid_size"] == [4, 10]
    assert by_name["dense"]["obs_size"] == 11 * 11 * 2**4
    assert by_name["rand_all"]["tabular"] is False
    assert by_name["dense"]["optimal_return"] is None  # only computed with --optimal


def test_show_draws_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert levels_cli.main(["show", "dense", "--seed", "1"]) == 0
    err = capsys.readouterr().err
    assert "dense" in err and "max steps 500" in err
    assert "S" in err and "A" in err and "p_respawn" in err


def test_show_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "levels.png"
    assert cli.main(["levels", "show", "longer", "--png", str(path), "--count", "2"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000
    assert str(path) in capsys.readouterr().err.replace("\n", "")


def test_unknown_level_set_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert levels_cli.main(["show", "no_such_set"]) != 0
    err = capsys.readouterr().err
    assert "no_such_set" in err and "rand_all" in err


def test_bad_arguments_exit_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert levels_cli.main(["show"]) != 0
    assert levels_cli.main(["show", "dense", "--count", "0"]) != 0
    capsys.readouterr()
