"""The teaching models: the stepping stones of notebooks 02-04, one idea per class.

`causal_mask`, `Head`, `MultiHeadAttention` (and its batched and fused
`batched_multi_head_attention` / `sdpa_multi_head_attention` forms),
`FeedForward`, `Block` and `AttentionLanguageModel`, the small models of the
loss ladder. The notebooks build each of these by hand and check them against
this file. They are written for reading, not speed.

The real GPT is model.py: one readable model file, as in nanoGPT, with its
fused attention, KV cache, RoPE and norms. A test keeps its block equal to
`Block` here (`model.copy_block_weights`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .generate import GenerationMixin
from .weights import init_weights


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) boolean lower-triangular matrix: True where a position may look."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


class Head(nn.Module):
    """One head of causal self-attention."""

    def __init__(self, n_embd: int, head_size: int, dropout: float = 0.0):
        super().__init__()
        self.head_size = head_size
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """How much each position attends to each earlier one: (B, T, T)."""
        B, T, C = x.shape
        k = self.key(x)  # (B, T, head_size)
        q = self.query(x)  # (B, T, head_size)
        # Scale by the HEAD size: keeps the scores at unit variance so softmax
        # does not saturate into a one-hot at initialisation.
        wei = q @ k.transpose(-2, -1) * self.head_size**-0.5  # (B, T, T)
        wei = wei.masked_fill(~causal_mask(T, x.device), float("-inf"))
        return F.softmax(wei, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wei = self.dropout(self.attention_weights(x))  # (B, T, T)
        v = self.value(x)  # (B, T, head_size)
        return wei @ v  # (B, T, head_size)


class MultiHeadAttention(nn.Module):
    """Several heads side by side, concatenated, then mixed by a projection."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        head_size = n_embd // n_head
        self.heads = nn.ModuleList([Head(n_embd, head_size, dropout) for _ in range(n_head)])
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, n_embd)
        return self.dropout(self.proj(out))


def stacked_qkv_weights(mha: MultiHeadAttention) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The heads' query, key and value weights stacked: each (n_head, head_size, n_embd)."""
    wq = torch.stack([h.query.weight for h in mha.heads])
    wk = torch.stack([h.key.weight for h in mha.heads])
    wv = torch.stack([h.value.weight for h in mha.heads])
    return wq, wk, wv


def batched_multi_head_attention(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """The loop over heads as one batched computation (no dropout), same weights."""
    B, T, C = x.shape
    wq, wk, wv = stacked_qkv_weights(mha)
    nh, hs = wq.shape[0], wq.shape[1]
    q = torch.einsum("btc,hsc->bhts", x, wq)  # (B, nh, T, hs)
    k = torch.einsum("btc,hsc->bhts", x, wk)
    v = torch.einsum("btc,hsc->bhts", x, wv)
    wei = q @ k.transpose(-2, -1) * hs**-0.5  # (B, nh, T, T)
    wei = wei.masked_fill(~causal_mask(T, x.device), float("-inf")).softmax(dim=-1)
    out = (wei @ v).transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, n_embd)
    return mha.proj(out)


def sdpa_multi_head_attention(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """The same computation through PyTorch's fused scaled_dot_product_attention."""
    B, T, C = x.shape
    wq, wk, wv = stacked_qkv_weights(mha)
    nh, hs = wq.shape[0], wq.shape[1]
    w = torch.cat([wq.reshape(C, C), wk.reshape(C, C), wv.reshape(C, C)])  # (3C, C)
    q, k, v = F.linear(x, w).split(C, dim=-1)  # each (B, T, C)
    q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
    return mha.proj(out.transpose(1, 2).reshape(B, T, C))


class FeedForward(nn.Module):
    """A per-position MLP: attention gathers information, this processes it."""

    def __init__(self, n_embd: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),
            nn.ReLU(),
            nn.Linear(4 * n_embd, n_embd),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    """Communication (attention) then computation (feed-forward), each on a residual path."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.sa = MultiHeadAttention(n_embd, n_head, dropout)
        self.ffwd = FeedForward(n_embd, dropout)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sa(self.ln1(x))  # pre-norm: normalise what goes INTO each sub-layer
        x = x + self.ffwd(self.ln2(x))
        return x


STAGES = ("single_head", "multi_head", "feed_forward", "blocks")


class AttentionLanguageModel(GenerationMixin, nn.Module):
    """The small models of the loss ladder in notebooks 02 and 03.

    stage:
      - "single_head": embeddings -> one Head -> logits
      - "multi_head": embeddings -> MultiHeadAttention -> logits
      - "feed_forward": embeddings -> MultiHeadAttention -> FeedForward -> logits
      - "blocks": embeddings -> n_layer Blocks (residual + LayerNorm) -> LayerNorm -> logits
    """

    model_type = "attention_lm"

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 8,
        n_embd: int = 32,
        n_head: int = 4,
        n_layer: int = 3,
        stage: str = "blocks",
        dropout: float = 0.0,
    ):
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
        self.vocab_size, self._block_size = vocab_size, block_size
        self.n_embd, self.n_head, self.n_layer = n_embd, n_head, n_layer
        self.stage, self.dropout = stage, dropout
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        if stage == "single_head":
            self.body = Head(n_embd, n_embd, dropout)
        elif stage == "multi_head":
            self.body = MultiHeadAttention(n_embd, n_head, dropout)
        elif stage == "feed_forward":
            self.body = nn.Sequential(
                MultiHeadAttention(n_embd, n_head, dropout), FeedForward(n_embd, dropout)
            )
        else:
            self.body = nn.Sequential(
                *[Block(n_embd, n_head, dropout) for _ in range(n_layer)], nn.LayerNorm(n_embd)
            )
        self.lm_head = nn.Linear(n_embd, vocab_size)
        self.apply(init_weights)

    @property
    def block_size(self) -> int:
        return self._block_size

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError(f"sequence length {T} is longer than block_size {self.block_size}")
        tok_emb = self.token_embedding_table(idx)  # (B, T, n_embd)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, n_embd)
        x = self.body(tok_emb + pos_emb)  # (B, T, n_embd)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
        return logits, loss

    def config_dict(self) -> dict:
        return dict(
            vocab_size=self.vocab_size, block_size=self.block_size, n_embd=self.n_embd,
            n_head=self.n_head, n_layer=self.n_layer, stage=self.stage, dropout=self.dropout,
        )

    @classmethod
    def from_config_dict(cls, config: dict) -> "AttentionLanguageModel":
        return cls(**config)
