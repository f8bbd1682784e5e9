"""The full GPT: the teaching pieces of attention.py, fused for speed.

One qkv projection instead of three per head, PyTorch's
scaled_dot_product_attention instead of an explicit (T, T) matrix, GELU, tied
input/output embeddings and GPT-2 initialisation. With bias=True,
activation="relu" and dropout=0 a block computes exactly what the teaching
`attention.Block` computes (tests/test_model.py copies the weights across).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from .generate import GenerationMixin
from .weights import INIT_STD, init_weights


@dataclass
class GPTConfig:
    vocab_size: int = 65  # characters in the vocabulary
    block_size: int = 256  # the longest context the model sees
    n_layer: int = 6  # transformer blocks stacked
    n_head: int = 6  # attention heads per block
    n_embd: int = 384  # width of the residual stream
    dropout: float = 0.2  # dropout probability while training
    bias: bool = False  # biases in Linear and LayerNorm layers
    activation: str = "gelu"  # "gelu" (GPT-2) or "relu" (the teaching FeedForward)
    tie_weights: bool = True  # share the token embedding with the output layer

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {self.activation!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown GPTConfig fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


class Linear(nn.Linear):
    """nn.Linear, with a faster route for one position at a time on a CPU.

    During cached generation every step feeds a single token, so each weight
    matrix meets one vector per sample. The CPU BLAS that PyTorch calls for
    such a matrix-vector product streams the weights from memory at about
    10 GB/s on the 2-core AMD VM of benchmarks/README.md; its batched matrix
    product streams them 3-4x faster. So the weight is multiplied as two
    stacked halves: the same sums, only float32 rounding differs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 3 or x.size(1) != 1 or self.out_features % 2:
            return super().forward(x)
        B, _, C = x.shape
        half = self.out_features // 2
        w = self.weight.view(2, half, C)  # the two halves of the output rows, no copy
        # (2, C, B): x laid out column by column, the layout the fast kernel wants
        xt = x.view(B, C).t().expand(2, C, B)
        if self.bias is None:
            y = torch.bmm(w, xt)  # (2, half, B)
        else:
            y = torch.baddbmm(self.bias.view(2, half, 1), w, xt)
        return y.view(self.out_features, B).t().unsqueeze(1)  # (B, 1, out)


class KVCache:
    """Keys and values of the tokens seen so far, for every layer.

    Preallocated to block_size; `length` says how many positions are filled.
    """

    def __init__(self, config: GPTConfig, batch_size: int, device, dtype):
        hs = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, config.block_size, hs)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) after the cached positions; all keys and values so far."""
        end = self.length + k.size(2)
        cache_k, cache_v = self.k[layer], self.v[layer]  # (B, nh, block_size, hs)
        cache_k.narrow(2, self.length, k.size(2)).copy_(k)
        cache_v.narrow(2, self.length, v.size(2)).copy_(v)
        return cache_k.narrow(2, 0, end), cache_v.narrow(2, 0, end)  # (B, nh, end, hs)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.dropout = config.dropout
        self.c_attn = Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v at once
        self.c_proj = Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        hs = C // self.n_head
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if cache is None:
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
            )
        else:
            start = cache.length
            k, v = cache.append(layer, k, v)  # (B, nh, start+T, hs)
            if start == 0:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif T == 1:  # one new token may look at everything cached
                y = F.scaled_dot_product_attention(q, k, v)
            else:
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.act = nn.GELU() if config.activation == "gelu" else nn.ReLU()
        self.c_proj = Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPTBlock(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(GenerationMixin, nn.Module):
    """A decoder-only transformer language model."""

    model_type = "gpt"

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([GPTBlock(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            # One matrix maps characters to vectors and vectors back to characters.
            self.transformer.wte.weight = self.lm_head.weight
        self.apply(init_weights)
        # GPT-2: scale the layers that write into the residual stream by
        # 1/sqrt(2 * n_layer), so its variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=INIT_STD / math.sqrt(2 * config.n_layer))

    @property
    def block_size(self) -> int:
        return self.config.block_size

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, each shared tensor counted once."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def _hidden(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(
                f"cannot run a sequence of length {start + T}: block_size is {self.config.block_size}"
            )
        pos = torch.arange(start, start + T, device=idx.device)  # (T,), on the input's device
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache, i)
        if cache is not None:
            cache.length += T
        return self.transformer.ln_f(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self._hidden(idx)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    # --- generation --------------------------------------------------------

    def new_kv_cache(self, batch_size: int) -> KVCache:
        p = self.lm_head.weight
        return KVCache(self.config, batch_size, p.device, p.dtype)

    def forward_cached(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Feed new tokens through the cache; logits of the last one: (B, vocab_size)."""
        return self.lm_head(self._hidden(idx, cache)[:, -1, :])

    def next_token_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits for the token after idx, recomputing the whole context: (B, vocab_size)."""
        return self.lm_head(self._hidden(idx)[:, -1, :])

    # --- checkpoints ---------------------------------------------------------

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def from_config_dict(cls, config: dict) -> "GPT":
        return cls(GPTConfig.from_dict(config))
