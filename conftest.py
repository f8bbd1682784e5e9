"""Settings that every test run needs, whatever command started it.

* The notebooks always run in quick mode under pytest: on a CUDA machine the
  default would be full mode, which trains the flagship for minutes and cannot
  reproduce the committed quick-mode outputs of `# NBVAL_CHECK_OUTPUT` cells.
  The nbval kernels inherit this process's environment.
* ``GPT_FROM_SCRATCH_DATA`` points at ``../shared/data/tinyshakespeare.txt``
  when that file exists and the variable is unset (CI keeps a local copy there).
* Figures are drawn off-screen.
* Under pytest-xdist (the README's `-n 2`) each worker, and each notebook kernel
  it starts, computes on one thread: two workers of two threads each on two
  cores wait for each other, several times slower than one thread each. The
  checked notebook outputs hold at any thread count (NOTEBOOK_STYLE.md).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["GPT_FROM_SCRATCH_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):  # set before torch is imported, and inherited by the kernels
    os.environ.setdefault("OMP_NUM_THREADS", "1")

_SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data" / "tinyshakespeare.txt"
if not os.environ.get("GPT_FROM_SCRATCH_DATA") and _SHARED_DATA.is_file():
    os.environ["GPT_FROM_SCRATCH_DATA"] = str(_SHARED_DATA)
