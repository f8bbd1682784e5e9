"""The bigram model: the next character depends only on the current one."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .weights import init_weights


class BigramLanguageModel(nn.Module):
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

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_kv_cache: bool = True,  # ignored: a bigram has nothing to cache
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        from .generate import generate

        return generate(
            self, idx, max_new_tokens, temperature=temperature, top_k=top_k,
            top_p=top_p, use_kv_cache=False, generator=generator,
        )

    def config_dict(self) -> dict:
        return {"vocab_size": self.vocab_size}

    @classmethod
    def from_config_dict(cls, config: dict) -> "BigramLanguageModel":
        return cls(int(config["vocab_size"]))
