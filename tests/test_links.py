"""Every relative link in README.md, notes/*.md and the notebooks' markdown cells points at a real file.

Web links (http, https, mailto) and pure #anchors are not checked; a #fragment
is stripped; a link resolves relative to the folder of the file that holds it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent

# [text](target "title"), where text may hold an image or [brackets]; the target stops at whitespace or ")"
_TARGET = r"\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)"
LINK_RE = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]" + _TARGET)
# ![alt](target), also inside a link's text
IMAGE_RE = re.compile(r"!\[[^\[\]]*\]" + _TARGET)
# [label]: target  (reference definitions)
REFDEF_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
# <img src="..."> and <a href="..."> in raw HTML
HTML_RE = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
FENCE_RE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN_RE = re.compile(r"`[^`\n]*`")
EXTERNAL = ("http://", "https://", "mailto:", "ftp://", "data:")


def markdown_sources() -> list[tuple[str, Path, str]]:
    """(name for the report, folder links resolve from, markdown text); a notebook's cells are joined."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "notes").glob("*.md"))]:
        if path.is_file():
            out.append((path.relative_to(ROOT).as_posix(), path.parent, path.read_text(encoding="utf-8")))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = []
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "markdown":
                src = cell.get("source", "")
                cells.append("".join(src) if isinstance(src, list) else src)
        out.append((path.relative_to(ROOT).as_posix(), path.parent, "\n\n".join(cells)))
    return out


def extract_links(text: str) -> list[str]:
    text = FENCE_RE.sub("", text)  # code blocks are not links
    text = CODE_SPAN_RE.sub("", text)
    found = []
    for rx in (LINK_RE, IMAGE_RE, REFDEF_RE, HTML_RE):
        found += [(m.start(1), m.group(1)) for m in rx.finditer(text)]
    return [link for _, link in sorted(set(found))]


def broken_links(name: str, folder: Path, text: str) -> list[str]:
    bad = []
    for link in extract_links(text):
        if link.lower().startswith(EXTERNAL) or link.startswith("#"):
            continue
        target = unquote(link.split("#", 1)[0].split("?", 1)[0])
        if not target:
            continue
        resolved = (ROOT / target.lstrip("/")) if target.startswith("/") else (folder / target)
        if not resolved.exists():
            where = resolved.resolve()
            shown = where.relative_to(ROOT.resolve()).as_posix() if ROOT.resolve() in where.parents else where
            bad.append(f"{name}: {link} (no file {shown})")
    return bad


def test_the_link_extractor():
    text = (
        "See [the note](../notes/02_attention.md#why) and ![fig](figures/a.png \"A\").\n"
        "[web](https://example.com) [anchor](#top) [mail](mailto:a@b.c)\n"
        "`[not a link](nowhere.md)`\n```\n[also not](nowhere.md)\n```\n"
        "[ref]: ../gpt_from_scratch/model.py\n<img src=\"figures/b.png\" width=300>\n"
        "[![badge](https://img/x.svg)](https://colab/y) [nested [brackets]](c.md)\n"
    )
    assert extract_links(text) == [
        "../notes/02_attention.md#why", "figures/a.png", "https://example.com", "#top", "mailto:a@b.c",
        "../gpt_from_scratch/model.py", "figures/b.png", "https://img/x.svg", "https://colab/y", "c.md",
    ]


def test_a_broken_link_is_reported(tmp_path):
    assert broken_links("x.md", ROOT / "notes", "[ok](../README.md) [gone](../no_such_file.md#a)") == [
        "x.md: ../no_such_file.md#a (no file no_such_file.md)"
    ]


SOURCES = markdown_sources()


@pytest.mark.parametrize("name,folder,text", SOURCES, ids=[s[0] for s in SOURCES])
def test_relative_links_resolve(name, folder, text):
    bad = broken_links(name, folder, text)
    assert not bad, "broken relative links:\n" + "\n".join(bad)


def test_there_is_something_to_check():
    names = [s[0] for s in SOURCES]
    assert "README.md" in names
