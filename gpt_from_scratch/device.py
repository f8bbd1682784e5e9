"""Pick the device to run on: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import sys
from typing import IO, Optional, Union

import torch

__all__ = ["get_device", "mps_available", "describe_device"]


def mps_available() -> bool:
    """True when Apple's Metal backend is present and usable (safe on any build)."""
    mps = getattr(torch.backends, "mps", None)
    if mps is None:
        return False
    try:
        return bool(mps.is_available())
    except Exception:
        return False


def _cuda_available() -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def describe_device(device: torch.device) -> str:
    """One short human-readable line, e.g. ``cuda (NVIDIA H100 80GB HBM3)``."""
    if device.type == "cuda":
        try:
            index = device.index if device.index is not None else torch.cuda.current_device()
            name = torch.cuda.get_device_name(index)
        except Exception:
            name = "NVIDIA GPU"
        return f"{device} ({name})"
    if device.type == "mps":
        return f"{device} (Apple GPU)"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"{device} ({n} thread{'s' if n != 1 else ''})"
    return str(device)


def _requested_device(pref: str, preference) -> torch.device:
    """The device an explicit name asks for, when this machine has it; else ValueError naming what to use."""
    try:
        device = torch.device(pref)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"unknown device {preference!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cpu":
        device = torch.device("cpu")
    elif device.type == "cuda":
        if not _cuda_available():
            raise ValueError(
                f"device {pref!r} was requested but CUDA is not available; "
                "use --device auto or cpu"
            )
        if device.index is not None:
            count = torch.cuda.device_count()
            if device.index >= count:
                raise ValueError(
                    f"device {pref!r} was requested but only {count} CUDA "
                    f"device(s) exist; use cuda:0..cuda:{max(count - 1, 0)} or auto"
                )
    elif device.type == "mps":
        if not mps_available():
            raise ValueError(
                f"device {pref!r} was requested but MPS (Apple GPU) is not "
                "available; use --device auto or cpu"
            )
    else:
        raise ValueError(
            f"unknown device {preference!r}; use auto, cpu, cuda, cuda:N or mps"
        )
    return device


def get_device(
    preference: Union[str, torch.device, None] = "auto",
    verbose: bool = True,
    file: Optional[IO[str]] = None,
) -> torch.device:
    """Return a ``torch.device``.

    ``"auto"`` (or ``None``) picks CUDA, then MPS, then CPU. An explicit
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` is honoured when available,
    otherwise ``ValueError``. With ``verbose`` one line says what was chosen.
    """
    if preference is None:
        pref = "auto"
    elif isinstance(preference, torch.device):
        pref = str(preference)
    elif isinstance(preference, str):
        pref = preference.strip().lower()
    else:
        raise ValueError(
            f"device must be a string such as 'auto', 'cpu', 'cuda' or 'mps', got {preference!r}"
        )

    if pref == "auto":
        if _cuda_available():
            device = torch.device("cuda")
        elif mps_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
    else:
        device = _requested_device(pref, preference)

    if verbose:
        print(f"device: {describe_device(device)}", file=file if file is not None else sys.stdout)
    return device
