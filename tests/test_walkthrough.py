"""docs/walkthrough.md runs: its ```python cells are executed in order in one namespace, as
a notebook kernel would (no kernel needed), so the walkthrough cannot drift from the code.
Every cell asserts what the text around it claims."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WALKTHROUGH = ROOT / "docs" / "walkthrough.md"


def code_cells(text):
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)


def test_walkthrough_cells_run_in_order(capsys):
    cells = code_cells(WALKTHROUGH.read_text(encoding="utf-8"))
    assert len(cells) >= 10
    namespace = {"__name__": "walkthrough"}
    for i, cell in enumerate(cells, start=1):
        try:
            exec(compile(cell, f"{WALKTHROUGH.name} cell {i}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"walkthrough cell {i} failed: {type(exc).__name__}: {exc}\n{cell}") from exc
    out = capsys.readouterr().out
    assert "C = 32  d' = 4" in out and "ResNeXt50_32x4d: 25.03 M parameters, 4.23 G MACs" in out
    # the gradient check: a fixed step fails on a 2**-9 channel, a step relative to the
    # weights passes on every trainable tensor, and so does the directional derivative
    assert "h = 1e-6 gives" in out and "29 tensors checked at their largest gradient entry" in out
    assert "directional derivative: backward" in out


def test_a_wrong_claim_in_a_cell_would_fail():
    """The runner really executes: a cell with a false assertion raises."""
    bad = "```python\nassert 1 + 1 == 3\n```\n"
    (cell,) = code_cells(bad)
    try:
        exec(compile(cell, "bad", "exec"), {})
    except AssertionError:
        return
    raise AssertionError("a false assert did not fail")


def test_walkthrough_is_jupytext_markdown():
    text = WALKTHROUGH.read_text(encoding="utf-8")
    assert text.startswith("---\njupyter:\n  jupytext:")
    assert "format_name: markdown" in text
