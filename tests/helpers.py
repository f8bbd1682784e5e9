"""Small helpers that several test files share (import them with `from helpers import ...`)."""

from __future__ import annotations

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
