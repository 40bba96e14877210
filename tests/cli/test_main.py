"""The `lpgx` console script: `lpgx_cli.main.run` tunes Python's garbage collector, then runs
the command line, which turns lpgx's speed-ups on before the sub-command is imported."""

import gc
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

import lpgx
from lpgx_cli import main as cli


def test_the_console_script_is_run() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["lpgx"] == "lpgx_cli.main:run"


def test_run_collects_less_and_freezes_the_imports_before_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[str] = []
    # A sub-command module of its own, so the order of import, freeze and run can be seen.
    (tmp_path / "lpgx_fake_command.py").write_text(
        "import lpgx_cli.main as m\n"
        "m.RECORD.append('imported')\n"
        "def main(argv):\n"
        "    m.RECORD.append(f'ran {argv}')\n"
        "    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "RECORD", calls, raising=False)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("lpgx_fake_command", "a test's command"))
    # The test process keeps its own collector: record what run() asks of it instead.
    fake_gc = SimpleNamespace(
        set_threshold=lambda *t: calls.append(f"threshold {t}"),
        freeze=lambda: calls.append("freeze"),
    )
    monkeypatch.setattr(cli, "gc", fake_gc)
    monkeypatch.setattr(sys, "argv", ["lpgx", "fake", "--flag"])
    monkeypatch.setattr(cli._compile_cache, "configure", lambda cache: None)
    monkeypatch.setattr(lpgx, "enable_speedups", lambda: calls.append("speedups"))
    monkeypatch.setattr(
        cli._compile_cache,
        "fast_compile_flags",
        lambda faster=False: calls.append(f"fast {faster}"),
    )

    assert cli.run() == 3
    assert calls == [
        "threshold (50000, 10, 10)",
        "speedups",
        "fast False",
        "imported",
        "freeze",
        "ran ['--flag']",
    ]
    # In-process callers of main() keep their collector as it is.
    calls.clear()
    monkeypatch.delitem(sys.modules, "lpgx_fake_command")
    assert cli.main(["fake"]) == 3
    assert calls == ["speedups", "fast False", "imported", "ran []"]
    # --fast-compile, like --no-compile-cache, is the CLI's and never reaches the command.
    calls.clear()
    monkeypatch.delitem(sys.modules, "lpgx_fake_command")
    assert cli.main(["fake", "--fast-compile", "--flag"]) == 3
    assert calls == ["speedups", "fast True", "imported", "ran ['--flag']"]
    # Help and an unknown command run nothing, so turn nothing on.
    calls.clear()
    assert cli.main(["--help"]) == 0 and cli.main(["nope"]) == 2
    assert calls == []
    assert gc.isenabled()
