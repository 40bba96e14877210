"""The README's embedding example runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_embedding_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    block = re.search(
        r"<!-- embed:start -->\s*```python\n(.*?)```\s*<!-- embed:end -->", text, re.S
    )
    assert block is not None, "README lost its embedding example"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 25
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "meta-grad norm" in out and "return" in out


EXTENDING = Path(__file__).resolve().parent / "test_extending.py"


@pytest.mark.parametrize("part", ["env", "rule", "score"])
def test_readme_extension_examples_are_the_tested_ones(part: str) -> None:
    """Each "Extending lpgx" block of the README is defined verbatim in test_extending.py,
    whose tests meta-train it, so the README's examples run."""
    block = re.search(rf"<!-- extend:{part} -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None, f"README lost its extension example {part!r}"
    assert block.group(1) in EXTENDING.read_text()


def test_readme_documents_every_metric() -> None:
    """The README's metrics table is `lpgx.metrics.METRICS` (the live table and `lpgx plot`
    read the same one)."""
    from lpgx.metrics import METRICS

    text = README.read_text()
    for key, info in METRICS.items():
        assert f"| `{key}` | {info.name} | {info.unit} |" in text, key
