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
    """{name: bound} of the package's dependencies plus the named extras (and the extras they name, such as
    test's "gpt-from-scratch[gpt2,gguf]"), read from pyproject.toml."""
    project = pyproject["project"]
    out = _parse(project["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in project["optional-dependencies"][extra]:
            m = REQ_RE.match(line)
            if m and m.group(1).lower() == project["name"]:
                todo += [e.strip() for e in m.group(2).strip("[]").split(",")]
            else:
                out.update(_parse([line]))
    return out


def test_bounds_are_lower_bounds_only(pyproject):
    """No install ever forces a downgrade or a reinstall of the torch that Colab, Kaggle or conda has."""
    for name, bound in deps(pyproject, *pyproject["project"]["optional-dependencies"]).items():
        assert bound.startswith(">="), f"{name}{bound}"


def _stdlib_modules() -> set:
    if hasattr(sys, "stdlib_module_names"):  # Python >= 3.10
        return set(sys.stdlib_module_names)
    import sysconfig

    folder = Path(sysconfig.get_paths()["stdlib"])
    return set(sys.builtin_module_names) | {p.name.split(".")[0] for p in folder.iterdir()}


def test_the_tests_import_only_what_the_test_extra_declares(pyproject):
    """Every third-party module that tests/ imports is declared, so a missing one fails instead of skipping."""
    declared = {name.replace("-", "_") for name in deps(pyproject, "test")}
    declared |= {"packaging"}  # pytest's own dependency
    modules = set()
    for path in [*ROOT.joinpath("tests").glob("*.py"), ROOT / "conftest.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    local = {"gpt_from_scratch", "conftest", "tests", "tomli"}  # tomli: only Python < 3.11, see _load_pyproject
    local |= {path.stem for path in ROOT.joinpath("tests").glob("*.py")}  # the tests' own helper modules
    third_party = {m for m in modules if m not in _stdlib_modules() and m not in local}
    assert third_party <= declared, f"declare in pyproject's test extra: {sorted(third_party - declared)}"


def test_licence_files_ship_with_the_package(pyproject):
    project = pyproject["project"]
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith(f"{project['license']} License\n") and "the gpt-from-scratch authors" in licence
    for name in project["license-files"]:
        assert (ROOT / name).is_file(), name
    notice = (ROOT / "NOTICE").read_text(encoding="utf-8")
    for material in ("Tiny Shakespeare", "GPT-2", "Copyright (c) 2019 OpenAI", "SmolLM2", "Apache License 2.0"):
        assert material in notice, material


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


def test_requirements_txt_matches(pyproject):
    """Colab/Kaggle/local notebooks: the package plus the notebooks, gpt2 and gguf extras, never pinned."""
    lines = _requirement_lines(ROOT / "requirements.txt")
    assert not [ln for ln in lines if "==" in ln], "requirements.txt must not pin versions"
    assert _parse(lines) == deps(pyproject, "notebooks", "gpt2", "gguf")


def test_environment_yml_matches(pyproject):
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^channels:\s*\n\s*-\s*conda-forge\s*$", text, re.M)
    found = _parse(_conda_lines(ROOT / "environment.yml"))
    assert found.pop("python") == pyproject["project"]["requires-python"].replace(" ", "")
    found.pop("pip", None)
    assert "torch" in found and "- torch" not in text  # conda calls it pytorch
    assert found == deps(pyproject, *pyproject["project"]["optional-dependencies"])


def test_lowest_versions_are_the_declared_bounds(pyproject):
    """.ci/lowest installs every lower bound exactly (torch aside, see there) and runs the unit tests."""
    script = (ROOT / ".ci" / "lowest").read_text(encoding="utf-8")
    pins = dict(re.findall(r"\b([A-Za-z_][\w\-]*)==([\w.]+)", script))
    for name, bound in deps(pyproject, "test").items():
        if name in ("torch", "nbval"):
            continue  # torch: only 2.13.0 is installable offline; nbval: the unit tests do not use it
        assert name in pins and Version(pins[name]) == Version(bound[2:]), f"{name}{bound} is not installed by .ci/lowest"
