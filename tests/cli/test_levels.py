"""`lpgx levels list | show`, run in-process through the `lpgx` dispatcher."""

import json
from pathlib import Path

import pytest
from rich.cells import cell_len

from lpgx.envs import LEVEL_SET_NAMES
from lpgx_cli import levels as levels_cli
from lpgx_cli import main as cli


def test_list_prints_a_table_on_stdout_that_fits_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert cli.main(["levels", "list"]) == 0
    out = capsys.readouterr().out
    assert "rand_all" in out and "longer" in out
    lines = out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    header = next(line for line in lines if line.lstrip().startswith("name"))
    assert header.split() == ["name", "grid", "objects", "steps", "lifetime", "tabular"]
    assert "all_shortlife: `all` with lifetime 250" in out  # descriptions below the table


def test_list_is_wider_on_a_wide_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    assert cli.main(["levels", "list"]) == 0
    out = capsys.readouterr().out
    assert "obs size" in out and "eval steps" in out and "description" in out


def test_list_optimal_states_mean_se_and_samples(capsys: pytest.CaptureFixture[str]) -> None:
    # `levels list --optimal --json` over every set takes about a minute; one set's summary is
    # the same code.
    from lpgx.envs import get_level_set

    row = levels_cli.level_set_summary(get_level_set("small"), optimal=True, samples=8)
    assert row["optimal_samples"] == 8
    assert row["optimal_return"] > 0 and 0 < row["optimal_return_se"] < row["optimal_return"]
    rand = levels_cli.level_set_summary(get_level_set("rand_tiny"), optimal=True, samples=8)
    assert rand["optimal_return"] is None and rand["optimal_samples"] is None
    # A fixed level: every sample is the same level, so the standard error is 0.
    fixed = levels_cli.level_set_summary(get_level_set("sparse"), optimal=True, samples=4)
    assert fixed["optimal_return_se"] == 0.0


def test_list_json_has_every_level_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert levels_cli.main(["list", "--json", "-"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list(LEVEL_SET_NAMES)
    by_name = {row["name"]: row for row in rows}
    assert by_name["all"]["grid_size"] == [4, 10]
    assert by_name["dense"]["obs_size"] == 11 * 11 * 2**4
    assert by_name["rand_all"]["tabular"] is False
    assert by_name["dense"]["optimal_return"] is None  # only computed with --optimal


def test_show_draws_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert levels_cli.main(["show", "dense", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "dense" in out and "max steps 500" in out
    assert "S" in out and "A" in out and "p_respawn" in out


def test_show_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "levels.png"
    assert cli.main(["levels", "show", "longer", "--png", str(path), "--count", "2"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000
    assert str(path) in capsys.readouterr().out.replace("\n", "")


def test_unknown_level_set_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert levels_cli.main(["show", "no_such_set"]) != 0
    err = capsys.readouterr().err
    assert "no_such_set" in err and "rand_all" in err


def test_bad_arguments_exit_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert levels_cli.main(["show"]) != 0
    assert levels_cli.main(["show", "dense", "--count", "0"]) != 0
    capsys.readouterr()


def test_list_optimal_fits_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The optimum of every set takes minutes; the table's layout does not depend on it.
    monkeypatch.setattr(
        levels_cli,
        "_optimal_return",
        lambda ls, samples, seed=0: (41.654, 0.468) if ls.tabular else (None, None),
    )
    monkeypatch.setenv("COLUMNS", "80")
    assert levels_cli.main(["list", "--optimal"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert "…" not in out  # no header or value cut
    assert "41.654 ± 0.468" in out and "over 64 sampled levels" in " ".join(out.split())


@pytest.mark.slow
def test_show_draws_an_agent_episode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from lpgx.train import train

    from ..test_train import TINY

    run = tmp_path / "run"
    train(dataclasses.replace(TINY, env_mode="small", train_steps=2), run, evaluate=False)
    png = tmp_path / "episode.png"
    args = ["show", "small", "--agent", str(run), "--png", str(png)]
    assert levels_cli.main(args) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert levels_cli.main(["show", "small", "--agent", str(run)]) == 2  # needs --png
    assert levels_cli.main(["show", "small", "--agent", str(tmp_path), "--png", str(png)]) == 2
    assert "not a run directory" in " ".join(capsys.readouterr().err.split())  # rich wraps


def test_recorded_episode_follows_the_environment() -> None:
    import jax
    import numpy as np

    from lpgx.envs import get_level_set
    from lpgx.evaluation import record_episode

    levels = get_level_set("sparse")
    env = levels.env()
    level = levels.sample(jax.random.key(0)).level
    # A policy that always moves right (action 3): the agent walks to the wall and stays.
    right = jax.numpy.asarray([-1e9, -1e9, -1e9, 0.0, -1e9])
    episode = record_episode(env, level, lambda obs: right, jax.random.key(1), 60)
    pos = np.asarray(episode.pos)
    assert int(episode.length) == 50  # sparse: 50 steps per episode, then it stops recording
    assert np.all(np.diff(pos[:51]) >= 0)  # only ever moves right (or is blocked)
    assert np.all(pos[51:] == pos[50])  # after the end, the last state repeats


def test_show_writes_levels_a_levels_file_reads(tmp_path: Path) -> None:
    from lpgx.envs import LevelsFile

    out = tmp_path / "dense.json"
    assert cli.main(["levels", "show", "dense", "--count", "2", "--json", str(out)]) == 0
    levels = LevelsFile(str(out))
    assert levels.names == ("dense-0-0", "dense-0-1") and levels.max_lifetime == 2500
