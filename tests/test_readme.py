"""The README and the pages under docs/ say what the code does: every ```python block in them
runs or is checked, one test per block, and their tables list what the code defines.

A block is run as written, on its own, unless an HTML comment on the line before it says
otherwise (docs/development.md):

- ``<!-- extend:NAME -->``: defined verbatim in tests/test_extending.py, whose tests meta-train
  it (a class needs the surrounding imports, so it is not run here);
- ``<!-- run-with: tests/FILE.py -->``: run with that test module's names in scope;
- ``<!-- slow: why -->``: run in the ``slow`` tests only;
- ``<!-- no-run: why -->``: only compiled, and counted by `test_unrun_blocks_are_counted`;
- ``<!-- embed:start -->``: the README's embedding example, also checked by
  `test_readme_embedding_example_runs`.

A block runs at most once per test process (`_run` keeps its output), so the tests that look at
the same block share one compilation.
"""

import contextlib
import importlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
EXTENDING = Path(__file__).resolve().parent / "test_extending.py"
PAGES = (README, *sorted(DOCS.rglob("*.md")))

# Blocks deliberately not run (`<!-- no-run: why -->`): lpgx.enable_speedups() in
# docs/startup.md, which changes process-wide XLA options and JAX lowerings. Raise this only
# for a block that cannot run in a test process.
NO_RUN_BLOCKS = 1
# README.md's hard limit (issue 34): the rest belongs in docs/.
README_MAX_LINES = 220

_FENCE = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)
_COMMENT = re.compile(r"<!--\s*(.*?)\s*-->")
_MARKER = re.compile(r"embed:start|extend:\w+|slow: .+|no-run: .+|run-with: tests/\w+\.py")


@dataclass(frozen=True)
class Block:
    """One ```python block of a page: where it starts, its code, and the marker comments on
    the lines right before it."""

    page: Path
    line: int  # 1-based line of the opening fence
    code: str
    markers: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def marker(self, prefix: str) -> str | None:
        """The text after `prefix` of this block's marker that starts with it, if any."""
        found = [m.removeprefix(prefix) for m in self.markers if m.startswith(prefix)]
        return found[0] if found else None


def _blocks(page: Path) -> list[Block]:
    text = page.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].splitlines()
        markers: list[str] = []
        while before and _COMMENT.fullmatch(before[-1].strip()):
            comment = _COMMENT.fullmatch(before.pop().strip())
            assert comment is not None
            markers.insert(0, comment.group(1))
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(page, line, match.group(1), tuple(markers)))
    return blocks


BLOCKS = [block for page in PAGES for block in _blocks(page)]
_OUTPUT: dict[str, str] = {}


def _run(block: Block) -> str:
    """Execute `block` once per process; **returns** what it printed."""
    if block.id not in _OUTPUT:
        namespace: dict[str, object] = {"__name__": "__docs__"}
        module_path = block.marker("run-with: ")
        if module_path is not None:
            module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
            namespace = dict(vars(module))
        # Leading newlines: a traceback names the page's own line numbers.
        code = compile("\n" * block.line + block.code, str(block.page), "exec")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
        _OUTPUT[block.id] = out.getvalue()
    return _OUTPUT[block.id]


def _param(block: Block) -> object:
    slow = block.marker("slow: ") is not None
    return pytest.param(block, id=block.id, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_python_block(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block runs (in a scratch directory) or, where marked, is checked another way."""
    for marker in block.markers:
        assert _MARKER.fullmatch(marker), f"{block.id}: unknown marker <!-- {marker} -->"
    part = block.marker("extend:")
    if part is not None:
        assert block.code in EXTENDING.read_text(), (
            f"{block.id}: the extend:{part} block is not defined verbatim in {EXTENDING.name}"
        )
    elif block.marker("no-run: ") is not None:
        compile(block.code, str(block.page), "exec")
    else:
        monkeypatch.chdir(tmp_path)
        _run(block)


def test_every_python_block_is_found() -> None:
    """No block escapes the parser (an indented fence, ```py, a fence without a newline)."""
    for page in PAGES:
        text = page.read_text()
        fences = re.findall(r"^[ \t]*```[ \t]*py.*$", text, re.M)
        assert all(fence == "```python" for fence in fences), (page, fences)
        assert len(fences) == sum(b.page == page for b in BLOCKS), page


def test_unrun_blocks_are_counted() -> None:
    """A block left unrun is a deliberate, counted exception, with its reason."""
    unrun = [b for b in BLOCKS if b.marker("no-run: ") is not None]
    assert len(unrun) == NO_RUN_BLOCKS, [b.id for b in unrun]
    assert all(b.marker("no-run: ").strip() for b in unrun)  # type: ignore[union-attr]


def test_readme_embedding_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text()
    block = re.search(
        r"<!-- embed:start -->\s*```python\n(.*?)```\s*<!-- embed:end -->", text, re.S
    )
    assert block is not None, "README lost its embedding example"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 25
    (embed,) = [b for b in BLOCKS if b.page == README and "embed:start" in b.markers]
    assert embed.code == code
    monkeypatch.chdir(tmp_path)
    out = _run(embed)
    assert "meta-grad norm" in out and "return" in out


@pytest.mark.parametrize("part", ["env", "rule", "score"])
def test_readme_extension_examples_are_the_tested_ones(part: str) -> None:
    """Each block of "Extending lpgx" (docs/extending.md) is defined verbatim in
    test_extending.py, whose tests meta-train it, so the documented examples run."""
    page = DOCS / "extending.md"
    block = re.search(rf"<!-- extend:{part} -->\s*```python\n(.*?)```", page.read_text(), re.S)
    assert block is not None, f"{page.name} lost its extension example {part!r}"
    assert block.group(1) in EXTENDING.read_text()


def test_readme_documents_every_metric() -> None:
    """The metrics table of docs/metrics.md is `lpgx.metrics.METRICS` (the live table and
    `lpgx plot` read the same one)."""
    from lpgx.metrics import METRICS

    text = (DOCS / "metrics.md").read_text()
    for key, info in METRICS.items():
        assert f"| `{key}` | {info.name} | {info.unit} |" in text, key


def test_readme_is_library_sized() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_lists_every_command() -> None:
    """The README's command-line table has one row per `lpgx` command, in the same order."""
    from lpgx_cli.main import COMMANDS

    rows = re.findall(r"^\| `lpgx (\w+)", README.read_text(), re.M)
    assert rows == list(COMMANDS)


def test_docs_list_every_preset() -> None:
    """docs/training.md's presets table has one row per preset of `lpgx.PRESETS`."""
    from lpgx.compose import PRESETS

    rows = re.findall(r"^\| `([\w-]+)` \|", (DOCS / "training.md").read_text(), re.M)
    assert rows == list(PRESETS)


def test_docs_pages_are_linked() -> None:
    """Every page under docs/ is in mkdocs.yml's nav and linked from the README, and every
    link from the README into docs/ leads to a page."""
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    nav = set(re.findall(r":\s*([\w/-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    assert nav == pages
    linked = set(re.findall(r"\]\(docs/([\w/-]+\.md)(?:#[\w-]*)?\)", README.read_text()))
    assert linked <= pages, linked - pages
    assert linked == pages, pages - linked
