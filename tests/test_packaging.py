"""requirements.txt, environment.yml and pyproject.toml must agree."""

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = {"torch": ">=2.1", "numpy": ">=1.24", "matplotlib": ">=3.7", "tqdm": ">=4.64"}
DEV = {"jupyter": ">=1.0", "nbval": ">=0.11", "pytest": ">=7.4"}
CONDA_NAMES = {"pytorch": "torch"}
REQ_RE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*((?:[<>=!~]=?|===)\s*[^\s;#]+)?")


def _load_pyproject():
    path = ROOT / "pyproject.toml"
    if sys.version_info >= (3, 11):
        import tomllib

        with open(path, "rb") as f:
            return tomllib.load(f)
    try:
        import tomli

        with open(path, "rb") as f:
            return tomli.load(f)
    except ImportError:
        return _tiny_toml(path.read_text(encoding="utf-8"))


def _tiny_toml(src):
    """Just enough TOML for this pyproject: sections, strings and string arrays."""
    out = {}
    table = out
    key = None
    buf = None
    for raw in src.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.strip().startswith("#") else ""
        if buf is not None:
            buf += " " + line
            if "]" in line:
                table[key] = re.findall(r'"([^"]*)"', buf)
                buf = None
            continue
        if not line:
            continue
        m = re.match(r"^\[([^\]]+)\]$", line)
        if m:
            table = out
            for part in [p.strip().strip('"') for p in m.group(1).split(".")]:
                table = table.setdefault(part, {})
            continue
        k, _, v = line.partition("=")
        key, v = k.strip().strip('"'), v.strip()
        if v.startswith("[") and "]" not in v:
            buf = v
        elif v.startswith("["):
            table[key] = re.findall(r'"([^"]*)"', v)
        elif v.startswith("{"):
            table[key] = dict(re.findall(r'"?([^"=\s{},]+)"?\s*=\s*"([^"]*)"', v))
        elif v.startswith('"'):
            table[key] = v.strip('"')
        else:
            table[key] = v
    return out


def _parse(lines):
    found = {}
    for line in lines:
        m = REQ_RE.match(line)
        assert m, f"cannot parse requirement {line!r}"
        name = m.group(1).lower()
        found[CONDA_NAMES.get(name, name)] = (m.group(3) or "").replace(" ", "")
    return found


def _requirement_lines(path):
    return [
        ln.strip()
        for ln in path.read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]


def _conda_lines(path):
    lines, in_deps = [], False
    for ln in path.read_text(encoding="utf-8").splitlines():
        if ln.strip().startswith("#") or not ln.strip():
            continue
        if not ln.startswith(" ") and not ln.startswith("-"):
            in_deps = ln.startswith("dependencies:")
            continue
        m = re.match(r"^\s*-\s*([^\s#:]+)\s*$", ln)
        if in_deps and m:  # skips nested "- pip:" sections
            lines.append(m.group(1))
    return lines


@pytest.fixture(scope="module")
def pyproject():
    return _load_pyproject()


def test_pyproject_metadata(pyproject):
    project = pyproject["project"]
    assert project["name"] == "gpt-from-scratch"
    assert project["requires-python"].replace(" ", "") == ">=3.9"
    assert project["scripts"]["gpt-from-scratch"] == "gpt_from_scratch.cli:main"
    assert _parse(project["dependencies"]) == RUNTIME
    assert _parse(project["optional-dependencies"]["dev"]) == DEV


def test_homepage_matches_package_repo_url(pyproject):
    tree = ast.parse((ROOT / "gpt_from_scratch" / "__init__.py").read_text(encoding="utf-8"))
    values = {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert pyproject["project"]["urls"]["Homepage"] == values["REPO_URL"]


def test_checkpoints_are_package_data(pyproject):
    st = pyproject["tool"]["setuptools"]
    assert "gpt_from_scratch" in st["packages"]
    assert st["package-dir"]["gpt_from_scratch.checkpoints"] == "checkpoints"
    assert set(st["package-data"]["gpt_from_scratch.checkpoints"]) >= {"*.pt", "*.md"}
    assert (ROOT / "checkpoints" / "__init__.py").is_file()


def test_pytest_addopts_has_no_nbval(pyproject):
    opts = pyproject["tool"]["pytest"]["ini_options"]
    assert opts["testpaths"] == ["tests"]
    assert "nbval" not in str(opts.get("addopts", ""))


def test_requirements_txt_matches():
    lines = _requirement_lines(ROOT / "requirements.txt")
    assert not [ln for ln in lines if "==" in ln], "requirements.txt must not pin versions"
    assert _parse(lines) == {**RUNTIME, **DEV}


def test_environment_yml_matches():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^channels:\s*\n\s*-\s*conda-forge\s*$", text, re.M)
    deps = _parse(_conda_lines(ROOT / "environment.yml"))
    assert deps.pop("python") == ">=3.9"
    deps.pop("pip", None)
    assert "torch" in deps and "- torch" not in text  # conda calls it pytorch
    assert deps == {**RUNTIME, **DEV}


def test_tiny_toml_fallback_agrees_with_tomllib(pyproject):
    tiny = _tiny_toml((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert tiny["project"]["dependencies"] == pyproject["project"]["dependencies"]
    assert tiny["project"]["optional-dependencies"]["dev"] == pyproject["project"]["optional-dependencies"]["dev"]
    assert tiny["project"]["urls"]["Homepage"] == pyproject["project"]["urls"]["Homepage"]
    assert tiny["tool"]["setuptools"]["package-dir"] == pyproject["tool"]["setuptools"]["package-dir"]
    assert tiny["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
