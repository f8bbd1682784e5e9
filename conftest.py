"""Settings that every test run needs, whatever command started it.

* The notebooks always run in quick mode under pytest: on a CUDA machine the
  default would be full mode, which trains the flagship for minutes and cannot
  reproduce the committed quick-mode outputs of `# NBVAL_CHECK_OUTPUT` cells.
  The nbval kernels inherit this process's environment.
* ``GPT_FROM_SCRATCH_DATA`` points at ``../shared/data/tinyshakespeare.txt``
  when that file exists and the variable is unset (CI keeps a local copy there).
* Figures are drawn off-screen.
* Under pytest-xdist (the README's `-n 2`) each worker, and each notebook kernel
  it starts, computes on one thread unless OMP_NUM_THREADS is set: two workers
  then never compete for a core, and these tiny models gain little from a
  second thread. The checked notebook outputs must hold at any thread count
  (NOTEBOOK_STYLE.md), so CI's .ci/threads runs the notebooks again at torch's
  default count.
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
