"""The output options of every `lpgx` command, with one meaning each.

``--json PATH`` writes the command's JSON document to PATH; ``--json -`` writes it to stdout,
which then carries nothing else: the tables and drawings a command prints on stdout go to
stderr instead, with its progress. ``--png PATH`` writes a PNG file to PATH. A command declares
them with `json_option` and `png_option` (one type, metavar and wording everywhere), checks
them with `path_problems` before it starts working, prints its tables on `table_console` and
writes the document with `write_json`. `name_flags` rewrites the names of a library's
arguments in its error messages as the command's flags.
"""

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tyro
from rich.console import Console

__all__ = [
    "JSON_HELP",
    "PNG_HELP",
    "STDOUT",
    "json_option",
    "name_flags",
    "path_problems",
    "png_option",
    "table_console",
    "to_stdout",
    "write_json",
]

STDOUT = "-"
"""The ``--json`` value that writes the document to stdout."""

JSON_HELP = (
    "Write {what} as JSON to PATH{note}; `--json -` writes it to stdout, and then everything "
    "else the command prints goes to stderr."
)
"""Help text of every ``--json`` (``{what}``: the document; ``{note}``: a remark or nothing)."""

PNG_HELP = "Write {what} as a PNG file to PATH{note}."
"""Help text of every ``--png`` (``{what}``: the figure; ``{note}``: a remark or nothing)."""


def _option(name: str, template: str, what: str, note: str) -> Any:
    text = template.format(what=what, note=f" ({note})" if note else "")
    return tyro.conf.arg(name=name, metavar="PATH", help=text, help_behavior_hint="(optional)")


def json_option(what: str, note: str = "") -> Any:
    """The tyro marker of a ``--json PATH`` option (a ``Path | None`` field or argument,
    default ``None``); `what` names the document, `note` adds a remark in parentheses."""
    return _option("json", JSON_HELP, what, note)


def png_option(what: str, note: str = "") -> Any:
    """The tyro marker of a ``--png PATH`` option (a ``Path | None`` field or argument,
    default ``None``); `what` names the figure, `note` adds a remark in parentheses."""
    return _option("png", PNG_HELP, what, note)


def to_stdout(json_out: Path | None) -> bool:
    """Whether ``--json`` asks for stdout (``--json -``)."""
    return json_out is not None and str(json_out) == STDOUT


def table_console(json_out: Path | None, **kwargs: Any) -> Console:
    """Where a command's tables and drawings go: stdout, or stderr under ``--json -``."""
    return Console(stderr=to_stdout(json_out), **kwargs)


def path_problems(json_out: Path | None = None, png: Path | None = None) -> list[str]:
    """What is wrong with ``--json`` and ``--png`` (empty when nothing), to report before the
    command spends any time: a missing folder, a folder given for a file, ``--png -``."""
    problems = []
    for flag, path in (("--json", json_out), ("--png", png)):
        if path is None or (flag == "--json" and to_stdout(path)):
            continue
        if str(path) == STDOUT:
            problems.append("--png writes a file: give it a path (`-`, stdout, is for --json)")
        elif path.is_dir():
            problems.append(f"{flag} {path} is a folder; give a file path")
        elif not path.parent.is_dir():
            problems.append(f"the folder of {flag} {path} does not exist; create it first")
    return problems


def write_json(
    document: Any, json_out: Path, *, indent: int | None = None, allow_nan: bool = True
) -> None:
    """Write `document` to the file `json_out`, or to stdout for ``-``: the same text."""
    text = json.dumps(document, indent=indent, allow_nan=allow_nan) + "\n"
    if to_stdout(json_out):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        json_out.write_text(text)


def name_flags(message: str, names: Mapping[str, str]) -> str:
    """`message` (a library's error) with each name of `names` — a library argument or flag
    of another command, as a whole word — replaced by the command's own flag."""
    for name, flag in names.items():
        pattern = rf"(?<![\w-]){re.escape(name)}(?![\w-])"
        message = re.sub(pattern, lambda _, flag=flag: flag, message)
    return message
