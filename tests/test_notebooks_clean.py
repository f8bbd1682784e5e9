"""The committed notebooks are clean, small and shaped alike (NOTEBOOK_STYLE.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import gpt_from_scratch as gfs

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((Path(__file__).resolve().parent.parent / "solutions").glob("*.ipynb"))
EXPECTED = [
    "01_bigram", "02_single_head_attention", "03_multi_head_attention", "04_gpt", "05_generation",
    "06_bpe_tokenizer", "07_modern_block", "08_gpt2", "09_your_own_text", "10_a_real_model",
]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_the_course_is_complete():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_clean_and_small(path):
    nb = load(path)
    assert path.stat().st_size < 1_000_000, "keep each notebook under about 1 MB with its outputs"
    assert set(nb["metadata"]) <= {"kernelspec", "language_info"}, "volatile notebook metadata"
    for cell in nb["cells"]:
        assert not {"execution", "collapsed", "scrolled", "jupyter"} & set(cell.get("metadata", {}))
    for cell in code_cells(nb):
        if cell["outputs"]:
            assert cell["execution_count"] is not None, "nbval rejects outputs without an execution count"
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"an error is committed in {path.name}"
            text = "".join(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/plain", ""))
            assert not re.search(r"/(work|tmp|home|root|Users)/", text), "a local path is committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_shape_follows_the_style_guide(path):
    nb = load(path)
    first = source(nb["cells"][0])
    assert first.startswith(f"# {path.stem[:2]} · "), "title: '# 0N · Title'"
    assert "colab.research.google.com" in first and "kaggle.com" in first, "badges at the top"
    setup = [c for c in code_cells(nb) if "gfs.notebook_setup(" in source(c)]
    assert len(setup) == 1, "exactly one setup cell"
    assert f'REPO_URL = "{gfs.REPO_URL}"' in source(setup[0])
    assert "gfs.load_text()" in source(setup[0])
    assert any("NBVAL_CHECK_OUTPUT" in source(c) for c in code_cells(nb)), "no deterministic cell is checked"
    markdown = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert re.search(r"^#+ .*Expected results", markdown, re.M)
    assert re.search(r"^#+ .*Exercises", markdown, re.M)
    assert "../notes/" in markdown, "link the notebook's note"
