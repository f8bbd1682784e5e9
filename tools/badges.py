"""Keep every "Open in Colab / Kaggle" badge pointing at the project's home.

The home is written once, as ``gpt_from_scratch.REPO_URL`` and ``REPO_BRANCH``.
Everything below is made from it:

* the Colab and Kaggle links in README.md, notes/*.md and the markdown cells of
  notebooks/*.ipynb (a notebook's own badges, in its first markdown cell, must
  point at the notebook's own file);
* the ``REPO_URL = "..."`` line of each notebook's setup cell;
* ``git clone https://github.com/OWNER/NAME`` commands in README.md and
  notes/*.md (every such command is taken to clone this project);
* ``Homepage`` under ``[project.urls]`` in pyproject.toml.

Usage::

    python tools/badges.py            # rewrite everything from REPO_URL
    python tools/badges.py --check    # only report; exit 1 on any mismatch

A rewritten notebook keeps nbformat's own JSON layout (indent 1, sorted keys,
trailing newline) and changes nothing but the lines that held a wrong URL.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from gpt_from_scratch import REPO_BRANCH, REPO_URL

__all__ = [
    "Problem",
    "repo_slug",
    "colab_url",
    "kaggle_url",
    "badge_markdown",
    "check",
    "rewrite",
    "main",
]

COLAB_BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
KAGGLE_BADGE_IMG = "https://kaggle.com/static/images/open-in-kaggle.svg"

_PART = r"[A-Za-z0-9_.-]+"
_PATH = r"[^\s)\"'<>\]]+"
COLAB_RE = re.compile(
    rf"https://colab\.research\.google\.com/github/(?P<owner>{_PART})/(?P<name>{_PART})"
    rf"/blob/(?P<branch>[^/\s]+)/(?P<path>{_PATH})"
)
KAGGLE_RE = re.compile(
    rf"https://(?:www\.)?kaggle\.com/kernels/welcome\?src=https://github\.com/(?P<owner>{_PART})"
    rf"/(?P<name>{_PART})/blob/(?P<branch>[^/\s]+)/(?P<path>{_PATH})"
)
CLONE_RE = re.compile(
    rf"(?P<head>git clone (?:--depth[ =]\d+ )?)https://github\.com/{_PART}/{_PART}?(?:\.git)?(?=[\s`)\"']|$)"
)
REPO_URL_LINE_RE = re.compile(r"^(?P<head>\s*REPO_URL\s*=\s*)(?P<q>[\"'])(?P<url>[^\"']*)(?P=q)")
HOMEPAGE_RE = re.compile(r"^(?P<head>Homepage\s*=\s*)\"(?P<url>[^\"]*)\"", re.M)


def default_root() -> Path:
    """The repository root: the folder above the package in a checkout, else the cwd."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def repo_slug(repo_url: str = REPO_URL) -> tuple[str, str]:
    """("owner", "name") of a GitHub URL such as https://github.com/owner/name(.git)."""
    m = re.fullmatch(rf"https://github\.com/({_PART})/({_PART}?)(?:\.git)?/?", repo_url.strip())
    if not m:
        raise ValueError(f"REPO_URL must look like https://github.com/OWNER/NAME, got {repo_url!r}")
    return m.group(1), m.group(2)


def _home(repo_url: str) -> str:
    owner, name = repo_slug(repo_url)
    return f"https://github.com/{owner}/{name}"


def colab_url(path: str, repo_url: str = REPO_URL, branch: str = REPO_BRANCH) -> str:
    owner, name = repo_slug(repo_url)
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/{path}"


def kaggle_url(path: str, repo_url: str = REPO_URL, branch: str = REPO_BRANCH) -> str:
    return f"https://kaggle.com/kernels/welcome?src={_home(repo_url)}/blob/{branch}/{path}"


def badge_markdown(path: str, repo_url: str = REPO_URL, branch: str = REPO_BRANCH) -> str:
    """The two badges for one notebook, e.g. path="notebooks/01_bigram.ipynb"."""
    return (
        f"[![Open In Colab]({COLAB_BADGE_IMG})]({colab_url(path, repo_url, branch)})\n"
        f"[![Open In Kaggle]({KAGGLE_BADGE_IMG})]({kaggle_url(path, repo_url, branch)})"
    )


@dataclass(frozen=True)
class Problem:
    file: str  # relative to the root, with forward slashes
    where: str  # "line 12" or "cell 0"
    message: str
    fixable: bool = True  # False: the rewrite cannot fix it (a missing badge, a link to a missing file)

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


# --- one line of text ----------------------------------------------------------------


def _fix_line(
    line: str,
    repo_url: str,
    branch: str,
    own_path: str | None = None,
    clone: bool = False,
    exists: Callable[[str], bool] = lambda p: True,
) -> tuple[str, list[str]]:
    """The corrected line and what was wrong with it."""
    issues: list[str] = []
    owner, name = repo_slug(repo_url)

    def badge(kind: str, make: Callable[[str, str, str], str]):
        def sub(m: re.Match) -> str:
            path = own_path or m.group("path")
            new = make(path, repo_url, branch)
            if m.group(0) != new:
                got = f"{m.group('owner')}/{m.group('name')}@{m.group('branch')}:{m.group('path')}"
                issues.append(f"{kind} link points at {got}, expected {owner}/{name}@{branch}:{path}")
            elif own_path is None and not exists(path):
                issues.append(f"!{kind} link points at {path}, which is not in the repository")
            return new

        return sub

    new = COLAB_RE.sub(badge("Colab", colab_url), line)
    new = KAGGLE_RE.sub(badge("Kaggle", kaggle_url), new)
    if clone:
        def clone_sub(m: re.Match) -> str:
            fixed = m.group("head") + _home(repo_url)
            if m.group(0) != fixed:
                issues.append(f"`git clone` of {m.group(0)[len(m.group('head')):]}, expected {_home(repo_url)}")
            return fixed

        new = CLONE_RE.sub(clone_sub, new)
    return new, issues


def _problem(file: str, where: str, msg: str) -> Problem:
    """Messages that start with "!" describe something a rewrite cannot fix."""
    return Problem(file, where, msg.lstrip("!"), fixable=not msg.startswith("!"))


# --- files ---------------------------------------------------------------------------------


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _markdown_files(root: Path) -> list[Path]:
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    return files + sorted((root / "notes").glob("*.md"))


def _notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("*.ipynb"))


def _process_markdown(path: Path, root: Path, repo_url: str, branch: str) -> tuple[str, list[Problem]]:
    text = path.read_text(encoding="utf-8")
    out, problems = [], []
    exists = lambda p: (root / p).exists()  # noqa: E731
    for i, line in enumerate(text.splitlines(keepends=True), start=1):
        new, issues = _fix_line(line, repo_url, branch, clone=True, exists=exists)
        problems += [_problem(_rel(path, root), f"line {i}", msg) for msg in issues]
        out.append(new)
    return "".join(out), problems


def _source_lines(cell: dict) -> list[str]:
    src = cell.get("source", "")
    return list(src) if isinstance(src, list) else src.splitlines(keepends=True)


def _set_source(cell: dict, lines: list[str]) -> None:
    if isinstance(cell.get("source"), list):
        cell["source"] = lines
    else:
        cell["source"] = "".join(lines)


def _nbformat_dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def _process_notebook(path: Path, root: Path, repo_url: str, branch: str) -> tuple[str, list[Problem]]:
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    rel = _rel(path, root)
    exists = lambda p: (root / p).exists()  # noqa: E731
    problems: list[Problem] = []
    replacements: list[tuple[str, str]] = []  # (old line, new line), for the fallback below
    first_md = next((i for i, c in enumerate(nb.get("cells", [])) if c.get("cell_type") == "markdown"), None)
    own = {"Colab": False, "Kaggle": False}
    for ci, cell in enumerate(nb.get("cells", [])):
        lines = _source_lines(cell)
        new_lines = []
        for line in lines:
            if cell.get("cell_type") == "markdown":
                own_path = rel if ci == first_md else None
                new, issues = _fix_line(line, repo_url, branch, own_path=own_path, exists=exists)
                if ci == first_md:
                    own["Colab"] |= bool(COLAB_RE.search(line))
                    own["Kaggle"] |= bool(KAGGLE_RE.search(line))
            elif cell.get("cell_type") == "code":
                new, issues = line, []
                m = REPO_URL_LINE_RE.match(line)
                if m and m.group("url") != repo_url:
                    issues.append(f"setup cell has REPO_URL = {m.group('url')!r}, expected {repo_url!r}")
                    new = line[: m.start("url")] + repo_url + line[m.end("url"):]
            else:
                new, issues = line, []
            problems += [_problem(rel, f"cell {ci}", msg) for msg in issues]
            if new != line:
                replacements.append((line, new))
            new_lines.append(new)
        _set_source(cell, new_lines)
    for kind, found in own.items():
        if not found:
            problems.append(Problem(rel, f"cell {first_md or 0}", f"no {kind} badge in the notebook's first markdown cell", False))
    if not replacements:
        return raw, problems
    if _nbformat_dumps(json.loads(raw)) == raw:  # written by nbformat: write it back the same way
        return _nbformat_dumps(nb), problems
    # Some other layout: replace only the JSON strings of the changed lines, byte for byte.
    text = raw
    for old, new in replacements:
        for ascii_only in (False, True):
            enc_old = json.dumps(old, ensure_ascii=ascii_only)
            if enc_old in text:
                text = text.replace(enc_old, json.dumps(new, ensure_ascii=ascii_only), 1)
                break
        else:
            raise ValueError(f"{rel}: cannot find the line {old.strip()!r} in the file's JSON; fix it by hand")
    return text, problems


def _process_pyproject(path: Path, root: Path, repo_url: str) -> tuple[str, list[Problem]]:
    text = path.read_text(encoding="utf-8")
    section = re.search(r"^\[project\.urls\]\s*$(?P<body>.*?)(?=^\[|\Z)", text, re.M | re.S)
    if not section:
        return text, [Problem(_rel(path, root), "[project.urls]", f"missing; add Homepage = \"{repo_url}\"", False)]
    m = HOMEPAGE_RE.search(section.group("body"))
    if not m:
        return text, [Problem(_rel(path, root), "[project.urls]", f"no Homepage; add Homepage = \"{repo_url}\"", False)]
    if m.group("url") == repo_url:
        return text, []
    line = text[: section.start("body") + m.start()].count("\n") + 1
    start = section.start("body") + m.start("url")
    end = section.start("body") + m.end("url")
    return text[:start] + repo_url + text[end:], [
        Problem(_rel(path, root), f"line {line}", f"Homepage is {m.group('url')!r}, expected {repo_url!r}")
    ]


def _scan(root: Path, repo_url: str, branch: str) -> Iterable[tuple[Path, str, str, list[Problem]]]:
    """(path, old text, corrected text, problems) for every file the badges live in."""
    repo_slug(repo_url)  # fail early on a malformed URL
    for path in _markdown_files(root):
        new, problems = _process_markdown(path, root, repo_url, branch)
        yield path, path.read_text(encoding="utf-8"), new, problems
    for path in _notebooks(root):
        new, problems = _process_notebook(path, root, repo_url, branch)
        yield path, path.read_text(encoding="utf-8"), new, problems
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        new, problems = _process_pyproject(pyproject, root, repo_url)
        yield pyproject, pyproject.read_text(encoding="utf-8"), new, problems


def check(root: str | Path | None = None, repo_url: str = REPO_URL, branch: str = REPO_BRANCH) -> list[Problem]:
    """Every mismatch between the files under root and repo_url/branch (empty when all agree)."""
    root = Path(root) if root is not None else default_root()
    return [p for _, _, _, problems in _scan(root, repo_url, branch) for p in problems]


def rewrite(root: str | Path | None = None, repo_url: str = REPO_URL, branch: str = REPO_BRANCH) -> list[Path]:
    """Rewrite every badge, setup-cell REPO_URL, clone command and Homepage; return the changed files."""
    root = Path(root) if root is not None else default_root()
    changed = []
    for path, old, new, _ in list(_scan(root, repo_url, branch)):
        if new != old:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(new)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python tools/badges.py",
        description="Rewrite (or --check) every Colab/Kaggle badge and repository URL from gpt_from_scratch.REPO_URL.",
    )
    p.add_argument("--check", action="store_true", help="only report mismatches; exit 1 if there are any")
    p.add_argument("--root", default=None, help="repository root (default: this checkout)")
    p.add_argument("--repo-url", default=REPO_URL, help=f"default: {REPO_URL}")
    p.add_argument("--branch", default=REPO_BRANCH, help=f"default: {REPO_BRANCH}")
    args = p.parse_args(argv)
    try:
        root = Path(args.root) if args.root else default_root()
        problems = check(root, args.repo_url, args.branch)
        if args.check:
            for prob in problems:
                print(prob)
            if problems:
                print(f"badges: {len(problems)} mismatch(es); fix them with `python tools/badges.py`")
                return 1
            print(f"badges: everything points at {args.repo_url} (branch {args.branch})")
            return 0
        unfixable = [pr for pr in problems if not pr.fixable]
        changed = rewrite(root, args.repo_url, args.branch)
        for path in changed:
            print(f"rewrote {_rel(path, root)}")
        for prob in unfixable:
            print(f"cannot fix by rewriting: {prob}", file=sys.stderr)
        print(f"badges: {len(changed)} file(s) rewritten for {args.repo_url} (branch {args.branch})")
        return 1 if unfixable else 0
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
