"""docs/walkthrough.md runs: its ```python cells are executed in order in one namespace, as
a notebook kernel would (no kernel needed), so the walkthrough cannot drift from the code.
Every cell asserts what the text around it claims."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WALKTHROUGH = ROOT / "docs" / "walkthrough.md"


def code_cells(text):
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)


def run_cells(text, name):
    """Execute the ```python cells of ``text`` in order in one namespace; the first failing
    cell raises AssertionError naming its number and showing it. Returns the cell count."""
    cells = code_cells(text)
    namespace = {"__name__": "walkthrough"}
    for i, cell in enumerate(cells, start=1):
        try:
            exec(compile(cell, f"{name} cell {i}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{name} cell {i} failed: {type(exc).__name__}: {exc}\n{cell}") from exc
    return len(cells)


def test_walkthrough_cells_run_in_order(capsys):
    assert run_cells(WALKTHROUGH.read_text(encoding="utf-8"), WALKTHROUGH.name) >= 10
    out = capsys.readouterr().out
    assert "C = 32  d' = 4" in out and "ResNeXt50_32x4d: 25.03 M parameters, 4.23 G MACs" in out
    # the gradient check: a fixed step fails on a 2**-9 channel, a step relative to the
    # weights passes on every trainable tensor, and so does the directional derivative
    assert "h = 1e-6 gives" in out and "29 tensors checked at their largest gradient entry" in out
    assert "directional derivative: backward" in out


def test_the_runner_fails_on_a_false_claim_and_names_the_cell():
    """The runner the walkthrough goes through really executes every cell, in order, in one
    namespace: a later cell sees an earlier one's names, and a false claim in cell 3 fails
    the run naming cell 3 (its earlier cells having run)."""
    text = ("```python\nseen = [1]\n```\ntext\n```python\nseen.append(2)\n```\n"
            "```python\nassert seen == [1, 2]\nassert 1 + 1 == 3, 'arithmetic'\n```\n")
    with pytest.raises(AssertionError, match=r"doc cell 3 failed: AssertionError: arithmetic"):
        run_cells(text, "doc")
    assert run_cells(text.replace("1 + 1 == 3", "1 + 1 == 2"), "doc") == 3


def test_walkthrough_is_jupytext_markdown():
    text = WALKTHROUGH.read_text(encoding="utf-8")
    assert text.startswith("---\njupyter:\n  jupytext:")
    assert "format_name: markdown" in text
