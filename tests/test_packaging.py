"""pyproject.toml holds every dependency bound once; requirements.txt and environment.yml follow from it."""

import ast
import re
import sys
from pathlib import Path

import pytest
from packaging.version import Version  # a dependency of pytest

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}
REQ_RE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*((?:[<>=!~]=?|===)\s*[^\s;#]+)?")


def _load_pyproject():
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


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


def deps(pyproject, *extras) -> dict:
    """{name: bound} of the package's dependencies plus the named extras, read from pyproject.toml."""
    project = pyproject["project"]
    out = _parse(project["dependencies"])
    for extra in extras:
        out.update(_parse(project["optional-dependencies"][extra]))
    return out


def test_pyproject_metadata(pyproject):
    project = pyproject["project"]
    assert project["name"] == "gpt-from-scratch"
    assert project["scripts"]["gpt-from-scratch"] == "gpt_from_scratch.cli:main"
    extras = project["optional-dependencies"]
    assert set(extras) == {"notebooks", "gpt2", "test", "dev"}
    assert extras["dev"] == ["gpt-from-scratch[notebooks,gpt2,test]"]  # no bound written twice
    # only lower bounds, so no install ever forces a downgrade or a torch reinstall
    for name, bound in deps(pyproject, "notebooks", "gpt2", "test").items():
        assert bound.startswith(">="), f"{name}{bound}"


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


def test_requirements_txt_matches(pyproject):
    """Colab/Kaggle/local notebooks: the package plus the notebooks and gpt2 extras, never pinned."""
    lines = _requirement_lines(ROOT / "requirements.txt")
    assert not [ln for ln in lines if "==" in ln], "requirements.txt must not pin versions"
    assert _parse(lines) == deps(pyproject, "notebooks", "gpt2")


def test_environment_yml_matches(pyproject):
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^channels:\s*\n\s*-\s*conda-forge\s*$", text, re.M)
    found = _parse(_conda_lines(ROOT / "environment.yml"))
    assert found.pop("python") == pyproject["project"]["requires-python"].replace(" ", "")
    found.pop("pip", None)
    assert "torch" in found and "- torch" not in text  # conda calls it pytorch
    assert found == deps(pyproject, "notebooks", "gpt2", "test")


def test_lowest_versions_are_the_declared_bounds(pyproject):
    """.ci/lowest installs every lower bound exactly (torch aside, see there) and runs the unit tests."""
    script = (ROOT / ".ci" / "lowest").read_text(encoding="utf-8")
    pins = dict(re.findall(r"\b([A-Za-z_][\w\-]*)==([\w.]+)", script))
    for name, bound in deps(pyproject, "gpt2", "test").items():
        if name in ("torch", "nbval"):
            continue  # torch: only 2.13.0 is installable offline; nbval: the unit tests do not use it
        assert name in pins and Version(pins[name]) == Version(bound[2:]), f"{name}{bound} is not installed by .ci/lowest"
