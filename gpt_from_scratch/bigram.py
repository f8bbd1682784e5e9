"""The bigram model: the next character depends only on the current one."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .generate import GenerationMixin
from .weights import init_weights


class BigramLanguageModel(GenerationMixin, nn.Module):
    """A lookup table of next-character logits, one row per character."""

    model_type = "bigram"

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        # row i holds the logits for the character that follows character i
        self.token_embedding_table = nn.Embedding(vocab_size, vocab_size)
        self.apply(init_weights)

    @property
    def block_size(self) -> int:
        # Only the last character matters, so one character of context is enough.
        return 1

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.token_embedding_table(idx)  # (B, T) -> (B, T, vocab_size)
        loss = None
        if targets is not None:
            B, T, V = logits.shape
            loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T))
        return logits, loss

    def config_dict(self) -> dict:
        return {"vocab_size": self.vocab_size}

    @classmethod
    def from_config_dict(cls, config: dict) -> "BigramLanguageModel":
        return cls(int(config["vocab_size"]))
