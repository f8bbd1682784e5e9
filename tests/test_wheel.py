"""The wheel holds what a user imports and the shipped checkpoint, and works outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    if r.returncode != 0 and "No module named" in r.stderr and "setuptools" in r.stderr:
        pytest.skip("setuptools is not installed in this environment, so no wheel can be built offline")
    assert r.returncode == 0, r.stderr
    (found,) = out.glob("gpt_from_scratch-*.whl")
    return found


def test_wheel_holds_the_package_and_the_checkpoint_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"gpt_from_scratch"}, top  # no tools/, tests/, notebooks/ or benchmarks/
    assert "gpt_from_scratch/checkpoints/cpu-tiny.pt" in names
    assert "gpt_from_scratch/checkpoints/README.md" in names
    assert "gpt_from_scratch/model.py" in names and "gpt_from_scratch/bpe.py" in names
    assert {"gpt_from_scratch/assets/gpt2.tiktoken", "gpt_from_scratch/assets/LICENSE-gpt2.txt"} <= set(names)
    assert not any(n.endswith(("badges.py", "figures.py")) for n in names)


def test_installed_wheel_samples_from_outside_the_repo(wheel, tmp_path):
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                        str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("GPT_FROM_SCRATCH_CHECKPOINT", None)
    where = subprocess.run([sys.executable, "-c", "import gpt_from_scratch as g; print(g.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr  # not the checkout
    r = subprocess.run([sys.executable, "-m", "gpt_from_scratch", "sample", "--max-new-tokens", "20", "--seed", "1"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) >= 20 and "loaded " in r.stderr and str(site) in r.stderr  # the installed checkpoint
    gpt2 = subprocess.run([sys.executable, "-c", "import gpt_from_scratch as g; "
                           "print(g.BPETokenizer.from_pretrained('gpt2').encode('Hello world'))"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert gpt2.stdout.strip() == "[15496, 995]", gpt2.stderr  # GPT-2's vocabulary ships in the wheel
