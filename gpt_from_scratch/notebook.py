"""What every notebook's setup cell needs: mode, seed, device, inline plots."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass

import torch

from .device import get_device

QUICK_ENV = "GPT_FROM_SCRATCH_QUICK"


def where_am_i() -> str:
    if "google.colab" in sys.modules:
        return "Colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ:
        return "Kaggle"
    return "local"


def quick_mode(device: torch.device | None = None) -> bool:
    """Quick mode unless a CUDA GPU is present; GPT_FROM_SCRATCH_QUICK=1/0 forces it on/off."""
    flag = os.environ.get(QUICK_ENV, "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    if device is None:
        return not torch.cuda.is_available()
    return device.type != "cuda"


@dataclass
class NotebookEnv:
    device: torch.device
    quick: bool
    seed: int
    platform: str

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def pick(self, quick, full):
        """The quick-mode or the full-mode value of a setting."""
        return quick if self.quick else full


def notebook_setup(seed: int = 1337, device: str = "auto") -> NotebookEnv:
    """Seed, device and mode for a notebook, printed so the reader knows what runs."""
    try:
        ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
        ip.run_line_magic("matplotlib", "inline")
    except NameError:
        pass
    torch.manual_seed(seed)
    dev = get_device(device)
    quick = quick_mode(dev)
    env = NotebookEnv(device=dev, quick=quick, seed=seed, platform=where_am_i())
    if quick:
        why = "GPT_FROM_SCRATCH_QUICK=1" if os.environ.get(QUICK_ENV) else "no CUDA GPU"
        print(f"mode: quick ({why}): shorter training runs that still show the loss falling")
    else:
        print("mode: full: the complete training schedules")
    print(f"platform: {env.platform} | python {platform.python_version()} | torch {torch.__version__} | seed {seed}")
    return env
