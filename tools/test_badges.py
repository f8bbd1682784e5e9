"""Every Colab/Kaggle badge and repository URL agrees with gpt_from_scratch.REPO_URL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import gpt_from_scratch as gfs
import badges

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OWNER, NAME = badges.repo_slug(gfs.REPO_URL)
WRONG = "someone-else"


def _nbformat_text(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def _tiny_notebook(rel_path: str) -> dict:
    """A notebook in nbformat's layout with badges, a setup cell and a link to another notebook."""
    return {
        "cells": [
            {"cell_type": "markdown", "id": "title", "metadata": {},
             "source": f"# 01 · Tiny\n\n{badges.badge_markdown(rel_path)}\n\nÜnïcode stays as it is.".splitlines(True)},
            {"cell_type": "code", "execution_count": 1, "id": "setup", "metadata": {}, "outputs": [],
             "source": ["import os, sys\n", f'REPO_URL = "{gfs.REPO_URL}"\n', "print(REPO_URL)"]},
            {"cell_type": "markdown", "id": "next", "metadata": {},
             "source": f"Next: [open 02 in Colab]({badges.colab_url('notebooks/02_next.ipynb')})"},
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _break_owner(text: str) -> str:
    broken = text.replace(f"{OWNER}/{NAME}", f"{WRONG}/{NAME}")
    assert broken != text
    return broken


def test_url_helpers():
    assert badges.repo_slug("https://github.com/a-b/c.d.git") == ("a-b", "c.d")
    assert badges.colab_url("notebooks/x.ipynb", "https://github.com/o/n", "dev") == (
        "https://colab.research.google.com/github/o/n/blob/dev/notebooks/x.ipynb"
    )
    assert badges.kaggle_url("notebooks/x.ipynb", "https://github.com/o/n", "dev") == (
        "https://kaggle.com/kernels/welcome?src=https://github.com/o/n/blob/dev/notebooks/x.ipynb"
    )
    with pytest.raises(ValueError):
        badges.repo_slug("https://gitlab.com/o/n")


def test_the_repository_as_committed_passes_the_check():
    problems = badges.check(ROOT)
    assert problems == [], "\n".join(map(str, problems)) + "\nrun `python tools/badges.py`"
    assert badges.main(["--check", "--root", str(ROOT)]) == 0


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_each_notebook_has_both_badges_for_its_own_file(nb_path):
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    title = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    src = "".join(title["source"])
    rel = f"notebooks/{nb_path.name}"
    assert badges.colab_url(rel) in src, f"{rel}: no Colab badge for its own file in the first markdown cell"
    assert badges.kaggle_url(rel) in src, f"{rel}: no Kaggle badge for its own file in the first markdown cell"
    setup = [c for c in nb["cells"] if c["cell_type"] == "code" and "REPO_URL =" in "".join(c["source"])]
    assert setup and f'REPO_URL = "{gfs.REPO_URL}"' in "".join(setup[0]["source"])


def test_pyproject_homepage_is_the_repo_url():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'Homepage = "{gfs.REPO_URL}"' in text


def _make_tree(tmp_path: Path) -> dict[str, str]:
    """README, a note, pyproject and two notebooks (one real if any exists) under tmp_path."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notes").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "notes" / "x.md").write_text(
        f"Clone it: `git clone --depth 1 {gfs.REPO_URL}`, then open "
        f"[Colab]({badges.colab_url('notebooks/01_tiny.ipynb')}).\n", encoding="utf-8")
    (tmp_path / "notebooks" / "01_tiny.ipynb").write_text(
        _nbformat_text(_tiny_notebook("notebooks/01_tiny.ipynb")), encoding="utf-8")
    (tmp_path / "notebooks" / "02_next.ipynb").write_text(
        _nbformat_text(_tiny_notebook("notebooks/02_next.ipynb")), encoding="utf-8")
    for nb in NOTEBOOKS[:1]:
        shutil.copy(nb, tmp_path / "notebooks" / nb.name)
    # the README links notebooks that may not exist in this small tree: make empty stand-ins
    for line in (tmp_path / "README.md").read_text(encoding="utf-8").splitlines():
        for m in badges.COLAB_RE.finditer(line):
            target = tmp_path / m.group("path")
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_nbformat_text(_tiny_notebook(m.group("path"))), encoding="utf-8")
    return {str(p.relative_to(tmp_path)): p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()}


def test_a_wrong_owner_is_detected_and_the_rewrite_restores_every_file(tmp_path, capsys):
    good = _make_tree(tmp_path)
    assert badges.check(tmp_path) == []
    for rel, text in good.items():
        if f"{OWNER}/{NAME}" in text:
            (tmp_path / rel).write_text(_break_owner(text), encoding="utf-8")

    problems = badges.check(tmp_path)
    files = {p.file for p in problems}
    assert {"README.md", "notes/x.md", "notebooks/01_tiny.ipynb", "pyproject.toml"} <= files
    assert any("REPO_URL" in p.message for p in problems)
    assert any("git clone" in p.message for p in problems)
    assert all(p.fixable for p in problems)
    assert badges.main(["--check", "--root", str(tmp_path)]) == 1
    assert WRONG in capsys.readouterr().out

    changed = badges.rewrite(tmp_path)
    assert changed
    assert badges.check(tmp_path) == []
    for rel, text in good.items():  # byte for byte what it was: nothing else was touched
        assert (tmp_path / rel).read_text(encoding="utf-8") == text, rel


def test_a_moved_home_rewrites_badges_setup_cells_and_homepage(tmp_path):
    _make_tree(tmp_path)
    new_home, branch = "https://github.com/new-owner/new-name", "dev"
    assert badges.check(tmp_path, new_home, branch)
    assert badges.main(["--root", str(tmp_path), "--repo-url", new_home, "--branch", branch]) == 0
    assert badges.check(tmp_path, new_home, branch) == []
    nb_text = (tmp_path / "notebooks" / "01_tiny.ipynb").read_text(encoding="utf-8")
    assert nb_text.endswith("}\n") and '\n "cells": [' in nb_text  # nbformat layout kept
    nb = json.loads(nb_text)
    assert f'REPO_URL = "{new_home}"\n' in nb["cells"][1]["source"]
    assert badges.colab_url("notebooks/01_tiny.ipynb", new_home, branch) in "".join(nb["cells"][0]["source"])
    assert badges.colab_url("notebooks/02_next.ipynb", new_home, branch) in nb["cells"][2]["source"]
    assert "Ünïcode" in nb_text
    assert f'Homepage = "{new_home}"' in (tmp_path / "pyproject.toml").read_text(encoding="utf-8")
    assert f"git clone --depth 1 {new_home}`" in (tmp_path / "notes" / "x.md").read_text(encoding="utf-8")


def test_a_badge_for_another_notebook_in_the_title_cell_is_fixed_to_its_own_path(tmp_path):
    _make_tree(tmp_path)
    path = tmp_path / "notebooks" / "01_tiny.ipynb"
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("blob/main/notebooks/01_tiny.ipynb", "blob/main/notebooks/02_next.ipynb"),
                    encoding="utf-8")
    problems = badges.check(tmp_path)
    assert any(p.file == "notebooks/01_tiny.ipynb" and "01_tiny" in p.message for p in problems)
    badges.rewrite(tmp_path)
    assert path.read_text(encoding="utf-8") == good


def test_a_notebook_without_badges_or_with_a_dead_link_cannot_be_fixed(tmp_path):
    _make_tree(tmp_path)
    nb = _tiny_notebook("notebooks/01_tiny.ipynb")
    nb["cells"][0]["source"] = ["# no badges here\n"]
    nb["cells"][2]["source"] = f"[gone]({badges.colab_url('notebooks/99_gone.ipynb')})"
    (tmp_path / "notebooks" / "01_tiny.ipynb").write_text(_nbformat_text(nb), encoding="utf-8")
    problems = [p for p in badges.check(tmp_path) if p.file == "notebooks/01_tiny.ipynb"]
    assert len(problems) == 3 and not any(p.fixable for p in problems)
    assert badges.main(["--root", str(tmp_path)]) == 1


def test_a_notebook_in_another_json_layout_keeps_its_layout(tmp_path):
    _make_tree(tmp_path)
    path = tmp_path / "notebooks" / "01_tiny.ipynb"
    good = json.dumps(_tiny_notebook("notebooks/01_tiny.ipynb"), indent=2)  # ascii-escaped, no newline
    path.write_text(_break_owner(good), encoding="utf-8")
    badges.rewrite(tmp_path)
    assert path.read_text(encoding="utf-8") == good
