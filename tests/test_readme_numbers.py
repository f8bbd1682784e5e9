"""The README's notebook table and the notes quote measured numbers, never their own copies.

A number in the quick-mode column must be one that the notebook's committed
outputs print (rounded to the digits the README shows); a number in the
full-mode column must be printed or stated in the notebook (its "Expected
results" table is where a full-mode number from another run is written down).
So a notebook that is re-run with other results makes this test fail until
the README quotes the new numbers. The notes' measured numbers (three or more
decimals) must come from a notebook, or from a results file that measuring
code writes (benchmarks/*.json, the checkpoints' model cards).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| (\d\d) \| \[\w+\]\((notebooks/[\w.]+\.ipynb)\)")
DECIMAL = re.compile(r"(?<![\d.])\d+\.\d+(?![\d.])")
FULL, QUICK = 4, 6  # columns of the table: | # | Notebook | Idea | Open | full mode | full time | quick mode |


def table_rows() -> dict[str, tuple[Path, list[str]]]:
    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if m := ROW.match(line):
            rows[m.group(1)] = (ROOT / m.group(2), [c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def notebook_numbers(path: Path) -> tuple[list[str], list[str]]:
    """(the decimals its outputs print, the decimals its markdown and code state)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    outputs, sources = [], []
    for cell in cells:
        sources += DECIMAL.findall("".join(cell["source"]))
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            outputs += DECIMAL.findall(text)
    return outputs, sources


def quoted(number: str, candidates: list[str]) -> bool:
    """True if some candidate, rounded to `number`'s decimals, is `number` (1.5949 quotes as 1.595).
    JSON drops trailing zeros: 2.405 there is 2.4050 in a note."""
    digits = len(number.split(".")[1])
    return any(f"{float(c):.{digits}f}" == number and (len(c.split(".")[1]) >= digits or float(c) == float(number))
               for c in candidates)


def measured_numbers() -> list[str]:
    """Every decimal that the notebooks, the solutions and the results files hold."""
    found = []
    for path in [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")]:
        outputs, sources = notebook_numbers(path)
        found += outputs + sources
    for path in [*ROOT.glob("benchmarks/*.json"), *ROOT.glob("benchmarks/*.md"), *ROOT.glob("checkpoints/*.md")]:
        found += DECIMAL.findall(path.read_text(encoding="utf-8"))
    return found


def test_the_table_has_a_row_per_notebook():
    rows = table_rows()
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(path.name for path, _ in rows.values()) == notebooks
    assert all(len(cols) == 7 for _, cols in rows.values())


@pytest.mark.parametrize("number", sorted(table_rows()))
def test_every_number_in_the_table_comes_from_its_notebook(number):
    path, cols = table_rows()[number]
    outputs, sources = notebook_numbers(path)
    quick = [n for n in DECIMAL.findall(cols[QUICK]) if not quoted(n, outputs)]
    assert not quick, f"README row {number}, quick mode: {quick} are not printed by {path.name}'s outputs"
    full = [n for n in DECIMAL.findall(cols[FULL]) if not quoted(n, outputs + sources)]
    assert not full, f"README row {number}, full mode: {full} appear nowhere in {path.name}"


def test_the_check_catches_a_drifted_number():
    assert quoted("1.595", ["1.5949"]) and quoted("2.49", ["2.4932"])
    assert not quoted("1.596", ["1.5949"]) and not quoted("1.5949", ["1.595"])
    assert quoted("2.4050", ["2.405"]) and not quoted("2.4051", ["2.405"])


def test_the_notes_quote_measured_numbers():
    measured = measured_numbers()
    unsourced = {}
    for note in sorted((ROOT / "notes").glob("*.md")):
        numbers = re.findall(r"(?<![\d.])\d+\.\d{3,}(?![\d.])", note.read_text(encoding="utf-8"))
        if missing := [n for n in numbers if not quoted(n, measured)]:
            unsourced[note.name] = missing
    assert not unsourced, f"numbers in the notes that no notebook or results file holds: {unsourced}"
