"""What CI runs is what the README says it runs: the thread counts of the notebook kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _kernel_threads(exported: str | None) -> str:
    """OMP_NUM_THREADS as conftest.py leaves it in an xdist worker, whose notebook kernels inherit it."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTEST_XDIST_WORKER"] = "gw0"
    if exported is not None:
        env["OMP_NUM_THREADS"] = exported
    code = "import os, runpy; runpy.run_path('conftest.py'); print(os.environ['OMP_NUM_THREADS'])"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_xdist_workers_default_to_one_thread_and_keep_an_exported_count():
    """.ci/threads exports torch's default count to check the notebooks at it: conftest must not undo that."""
    assert _kernel_threads(None) == "1"
    assert _kernel_threads("2") == "2"
