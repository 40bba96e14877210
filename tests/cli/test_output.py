"""`--json PATH|-` and `--png PATH` mean the same in every command that has them
(`lpgx_cli._output`), and errors name the flags the user typed.

Every command runs in-process through the `lpgx` dispatcher at the smallest sizes it allows:
`lpgx eval` compiles once for the module (later calls with the same arguments reuse JAX's
in-memory cache), `lpgx bench --tiny` runs only its first item (environment stepping) and
measures it once (`_cheap_bench`), and `lpgx plot` draws a run directory written here
(`_run_dir`: metrics only, no training).
"""

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lpgx_cli import main as cli
from lpgx_cli._output import JSON_HELP, PNG_HELP, name_flags, path_problems

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

EVAL = ["eval", "a2c", "--on", "sparse", "--agents", "1", "--lifetime", "1", "--points", "1"]
EVAL += ["--episodes", "1", "--workers", "1", "--rollout-len", "1"]
BENCH = ["bench", "--tiny", "--max-agents", "1"]

# Command -> (arguments, a text of its tables or drawings).
JSON_COMMANDS: dict[str, tuple[list[str], str]] = {
    "eval": (EVAL, "final return"),
    "bench": (BENCH, "environment stepping"),
    "levels list": (["levels", "list"], "grid: side of the square grid"),
    "levels show": (["levels", "show", "small", "--count", "2"], "object types"),
}
PNG_COMMANDS: dict[str, list[str]] = {
    "eval": EVAL,
    "bench": BENCH,
    "levels show": ["levels", "show", "small", "--count", "2"],
    "plot": ["plot", "RUN_DIR", "--no-rule"],
}

_BENCH_REPORT: dict[str, Any] = {}


@pytest.fixture
def _cheap_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    """`lpgx bench` with only the suite's first item, measured once for the whole module (the
    report of a later run is the first one's with that run's command)."""
    from benchmarks import suite

    real = suite.run_suite

    def run_suite(sizes: suite.Sizes, **kwargs: Any) -> dict[str, Any]:
        if not _BENCH_REPORT:
            _BENCH_REPORT.update(real(sizes, **{**kwargs, "items": suite.ITEMS[:1]}))
        return {**copy.deepcopy(_BENCH_REPORT), "command": kwargs["command"]}

    monkeypatch.setattr(suite, "run_suite", run_suite)


def _run_dir(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run directory with three meta-steps of metrics; no curriculum figures."""
    import lpgx.plotting

    run = root / "run"
    run.mkdir()
    rows = [{"step": s, "episode_return": 0.1 * s, "meta_grad_norm": 1.0 / s} for s in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(lpgx.plotting, "plot_curriculum", lambda run_dir: [])
    return run


def _document(command: str, text: str) -> str:
    """The JSON document, canonical; without bench's `command` (it names the run's flags)."""
    doc = json.loads(text)
    if command == "bench":
        assert doc.pop("command").startswith("lpgx bench --tiny")
    return json.dumps(doc, sort_keys=True)


@pytest.mark.usefixtures("_cheap_bench")
@pytest.mark.parametrize("command", list(JSON_COMMANDS))
def test_json_goes_to_stdout_or_to_a_path(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, shown = JSON_COMMANDS[command]
    assert cli.main([*argv, "--json", "-"]) == 0
    to_stdout = capsys.readouterr()
    document = _document(command, to_stdout.out)  # stdout is the document and nothing else
    assert shown in to_stdout.err  # the tables went to stderr
    path = tmp_path / "out.json"
    assert cli.main([*argv, "--json", str(path)]) == 0
    to_path = capsys.readouterr()
    assert _document(command, path.read_text()) == document
    assert shown in to_path.out + to_path.err
    assert not to_path.out.lstrip().startswith(("{", "["))  # the document went to the file only


@pytest.mark.usefixtures("_cheap_bench")
@pytest.mark.parametrize("command", list(PNG_COMMANDS))
def test_png_writes_a_png(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = PNG_COMMANDS[command]
    if command == "plot":
        argv = [str(_run_dir(tmp_path, monkeypatch)) if a == "RUN_DIR" else a for a in argv]
    png = tmp_path / "figure.png"
    assert cli.main([*argv, "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000
    assert str(png) in " ".join(capsys.readouterr()).replace("\n", "")  # says what it wrote


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with contextlib.suppress(SystemExit):  # eval and plot leave tyro's exit to their caller
        cli.main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.replace("│", " ").split())


@pytest.mark.parametrize("command", ["eval", "bench", "levels list", "levels show", "plot"])
def test_every_json_and_png_has_the_shared_help(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    text = _help(command.split(), capsys)
    json_tail = JSON_HELP.split("{note}")[1]  # "; `--json -` writes it to stdout, …"
    png_tail = PNG_HELP.split("{what}")[1].split("{note}")[0]  # " as a PNG file to PATH"
    assert ("--json PATH" in text and json_tail in text) == (command in JSON_COMMANDS)
    assert ("--png PATH" in text and png_tail in text) == (command in PNG_COMMANDS)


def test_output_paths_are_checked_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # a long temporary path stays on one line

    def err() -> str:
        return " ".join(capsys.readouterr().err.split())

    missing = str(tmp_path / "missing" / "out.json")
    assert cli.main(["eval", "a2c", "--json", missing]) == 2
    assert f"the folder of --json {missing} does not exist" in err()
    assert cli.main(["levels", "list", "--json", missing]) == 2
    assert "does not exist" in err()
    assert cli.main(["levels", "show", "small", "--json", str(tmp_path)]) == 2
    assert f"--json {tmp_path} is a folder" in err()
    assert cli.main(["bench", "--png", "-"]) == 2
    assert "--png writes a file" in err()
    assert cli.main(["plot", str(tmp_path), "--png", missing]) == 2
    assert "the folder of --png" in err()
    assert path_problems(Path("-"), None) == []


def test_eval_errors_name_its_own_flags(capsys: pytest.CaptureFixture[str]) -> None:
    def err() -> str:
        return " ".join(capsys.readouterr().err.split())

    assert cli.main(["eval", "a2c", "--agents", "0"]) == 2
    text = err()
    assert "--agents must be at least 1, got 0" in text and "--num-agents" not in text
    for flag in ("--points", "--episodes", "--lifetime", "--workers", "--rollout-len"):
        assert cli.main(["eval", "a2c", flag, "0"]) == 2
        assert f"{flag} must be at least 1, got 0" in err()
    assert cli.main(["eval", "a2c", "--on", "nowhere"]) == 2
    text = err()
    assert "unknown --on 'nowhere'" in text and "--env-mode" not in text
    assert cli.main(["eval", "a2c", "--on", "atari:Breakout"]) == 2
    text = err()
    assert "--on atari:Breakout" in text and "--env-mode" not in text


def test_bias_errors_name_its_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path)]
    assert cli.main(["bias", "decompose", "--num-mdps", "0", *out]) == 2
    assert "--num-mdps must be >= 1" in capsys.readouterr().err
    assert cli.main(["bias", "lr", "--num-repeats", "1", *out]) == 2
    assert "--num-repeats must be >= 2" in capsys.readouterr().err
    assert cli.main(["bias", "steps", "--steps", "0", *out]) == 2
    assert "--steps must all be >= 1" in capsys.readouterr().err
    assert cli.main(["bias", "lirpg", "--patterns", "lll", *out]) == 2
    assert "use --patterns ele" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_name_flags_replaces_whole_names_only() -> None:
    names = {"--num-agents": "--agents", "num_mdps": "--num-mdps"}
    message = "--num-agents must be at least 1; --num-agents-x, num_mdps_all and num_mdps stay"
    assert name_flags(message, names) == (
        "--agents must be at least 1; --num-agents-x, num_mdps_all and --num-mdps stay"
    )
