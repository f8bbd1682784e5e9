"""The full GPT: the teaching pieces of teaching.py, fused for speed.

One qkv projection instead of three per head, PyTorch's
scaled_dot_product_attention instead of an explicit (T, T) matrix, GELU, tied
input/output embeddings and GPT-2 initialisation. With bias=True,
activation="relu" and dropout=0 a block computes exactly what the teaching
`teaching.Block` computes (`copy_block_weights` copies the weights across).

GPTConfig's defaults are nanoGPT's shakespeare-char block: GPT-2's layout
without biases (GPT-2 itself is bias=True, activation="gelu_tanh", see
pretrained.py). Four options swap in the pieces of newer models (chapter 07),
each a small branch below:

- norm="rmsnorm": `RMSNorm` instead of LayerNorm (no mean, no bias).
- activation="swiglu": a gated MLP with three matrices (`MLP`); "gelu_tanh"
  is GPT-2's own tanh approximation of GELU.
- pos="rope": no position embedding; queries and keys are rotated by their
  position (`rope_cos_sin`, `apply_rope`), so attention sees only distances.
  Such a model also runs on sequences longer than block_size, as
  sliding-window attention: each position attends to the last block_size
  positions, in every layer. That is what its rolling KV cache computes.
- n_kv_head: grouped-query attention, fewer key/value heads than query heads
  (a smaller KV cache).

Four more from the modded-nanogpt speedrun (the CPU speedrun, benchmarks/README.md):

- activation="relu2": ReLU squared, max(0, x)^2.
- qk_norm=True: each head's queries and keys are RMS-normalised (no gain)
  before attention, so the attention logits cannot grow without bound.
- logit_softcap=c: logits = c * tanh(logits / c), smooth and never beyond +-c.
- zero_init_proj=True: the layers that write into the residual stream (c_proj)
  start at zero, so every block starts as the identity.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Callable, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from .teaching import Block
from .generate import GenerationMixin
from .weights import INIT_STD, init_weights

NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "relu2", "swiglu")
POSITIONS = ("learned", "rope")
# Positions that attention sees only as distances between tokens. Such a model has a sliding window
# (GPTConfig.sliding_window); a new relative encoding (ALiBi, say) is added here and nowhere else.
RELATIVE_POSITIONS = ("rope",)
ROPE_BASE = 10000.0


@dataclass
class GPTConfig:
    vocab_size: int = 65  # characters in the vocabulary
    block_size: int = 256  # the longest context the model sees
    n_layer: int = 6  # transformer blocks stacked
    n_head: int = 6  # attention heads per block
    n_embd: int = 384  # width of the residual stream
    dropout: float = 0.2  # dropout probability while training
    bias: bool = False  # biases in Linear and LayerNorm layers
    activation: str = "gelu"  # "gelu" | "gelu_tanh" (GPT-2's) | "relu" (the teaching FeedForward) | "relu2" | "swiglu"
    tie_weights: bool = True  # share the token embedding with the output layer
    norm: str = "layernorm"  # "layernorm" | "rmsnorm"
    pos: str = "learned"  # "learned" position embeddings | "rope" (rotary)
    n_kv_head: int | None = None  # key/value heads; None means n_head (grouped-query attention below it)
    mlp_hidden: int | None = None  # the MLP's hidden width; None: 4 * n_embd, or swiglu_hidden(n_embd)
    rope_theta: float = ROPE_BASE  # the base of RoPE's angles (SmolLM2: 100000.0)
    norm_eps: float = 1e-5  # the epsilon of LayerNorm / RMSNorm (Llama files state theirs)
    qk_norm: bool = False  # RMS-normalise each head's queries and keys before attention
    logit_softcap: float | None = None  # None, or c > 0: logits = c * tanh(logits / c)
    zero_init_proj: bool = False  # the residual-stream writers (c_proj) start at zero

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
        for name, allowed in (("activation", ACTIVATIONS), ("norm", NORMS), ("pos", POSITIONS)):
            if getattr(self, name) not in allowed:
                choices = ", ".join(repr(a) for a in allowed)
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        n_kv = self.n_kv_head
        if n_kv is not None and (not isinstance(n_kv, int) or isinstance(n_kv, bool) or n_kv < 1 or self.n_head % n_kv):
            raise ValueError(f"n_kv_head must be None or a divisor of n_head ({self.n_head}), got {n_kv}")
        if self.mlp_hidden is not None and (isinstance(self.mlp_hidden, bool) or int(self.mlp_hidden) < 1):
            raise ValueError(f"mlp_hidden must be None or a whole number >= 1, got {self.mlp_hidden}")
        if self.logit_softcap is not None and not 0 < float(self.logit_softcap) < math.inf:
            raise ValueError(f"logit_softcap must be None or a finite number > 0, got {self.logit_softcap}")
        if self.pos == "rope" and self.head_size % 2:
            raise ValueError(f"pos='rope' needs an even head size, got n_embd // n_head = {self.head_size}")

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        """The config a checkpoint recorded; fields it lacks (older files) take their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown GPTConfig fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def head_size(self) -> int:
        """Numbers per head and position: the residual width split evenly among the query heads."""
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        """How many key/value heads: n_kv_head, or one per query head when it is None."""
        return self.n_kv_head or self.n_head

    @property
    def mlp_width(self) -> int:
        """The MLP's hidden width: mlp_hidden, or by default 4 * n_embd (swiglu_hidden with SwiGLU's third matrix)."""
        if self.mlp_hidden:
            return int(self.mlp_hidden)
        return swiglu_hidden(self.n_embd) if self.activation == "swiglu" else 4 * self.n_embd

    @property
    def sliding_window(self) -> bool:
        """Does the context slide one token at a time? The one place that decides it.

        True with relative positions (RoPE): attention sees only distances, so
        a sequence longer than block_size runs as sliding-window attention (each
        position sees the last block_size ones, in every layer), the KV cache
        rolls instead of being re-filled, and generation never re-positions a
        token. False with learned positions: the model knows positions
        0..block_size-1 only, so generation's window jumps (generate.window_start).
        """
        return self.pos in RELATIVE_POSITIONS


# --- the pieces of a block ------------------------------------------------------------


class RMSNorm(nn.Module):
    """LayerNorm without the mean and the bias: x / rms(x) * gain. Cheaper, and trains as well."""

    def __init__(self, n_embd: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms_inv = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (B, T, 1)
        return x * rms_inv * self.weight


def make_norm(config: GPTConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, eps=config.norm_eps)
    return nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)


def rope_cos_sin(
    positions: torch.Tensor, head_size: int, base: float = ROPE_BASE
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles position * base^(-2i / head_size): each (T, head_size // 2).

    Computed in float64 on the CPU, then rounded to float32, so that a
    position far beyond block_size is as exact as an early one (the KV cache
    relies on it).
    """
    i = torch.arange(0, head_size, 2, dtype=torch.float64, device="cpu")  # (hs/2,)
    inv_freq = float(base) ** (-i / head_size)  # from 1 (fast rotation) down to ~1/base
    angles = positions.to("cpu", torch.float64)[:, None] * inv_freq  # (T, hs/2)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate every head of x (B, nh, T, hs) by its position's angles (cos, sin each (T, hs/2)).

    Rotate-halves convention (GPT-NeoX, Llama): dimension i is paired with
    dimension i + hs/2. A query at position p and a key at position s then
    score q.k as a function of p - s only.
    """
    x1, x2 = x.chunk(2, dim=-1)  # each (B, nh, T, hs/2)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, nh, T, hs)


class KVCache:
    """Keys and values of the tokens seen so far, for every layer.

    Preallocated to block_size positions, with n_kv_head heads per layer
    (fewer than n_head with grouped-query attention: that is the memory it
    saves). Each layer's `append` advances that layer. Without a sliding
    window (learned positions) the cache is full at block_size and generate.py
    re-fills a new one; with one (RoPE) it rolls: appending one token to a
    full cache drops the oldest position, which is sliding-window attention.
    (A chunk of several tokens cannot roll exactly: its first tokens would
    still need what is dropped.) A chat keeps one cache across turns and
    calls `reset()` for a new conversation.
    """

    def __init__(self, config: GPTConfig, batch_size: int, device, dtype):
        shape = (config.n_layer, batch_size, config.kv_heads, config.block_size, config.head_size)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.sliding_window = config.sliding_window  # attention sees only distances: old keys stay valid
        self.seen = [0] * config.n_layer  # tokens appended so far, per layer

    def reset(self) -> None:
        """Forget every token (a new conversation); the memory is kept for reuse."""
        self.seen = [0] * len(self.seen)

    @property
    def position(self) -> int:
        """Absolute position of the next token: the tokens fed through the whole model so far."""
        return self.seen[-1]

    @property
    def length(self) -> int:
        """Positions held (at most block_size)."""
        return min(self.position, self.k.size(3))

    @property
    def nbytes(self) -> int:
        """Memory of the keys and values, in bytes."""
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, n_kv_head, T, hs) after this layer's cached positions; all keys and values held."""
        size, T = self.k.size(3), k.size(2)
        held = min(self.seen[layer], size)
        if held + T > size:
            if not self.sliding_window or T > 1:
                raise ValueError(f"the KV cache holds {size} positions; cannot add {T} to {held}")
            for buf in (self.k[layer], self.v[layer]):  # (B, n_kv_head, size, hs): drop the oldest
                buf[:, :, : held - 1] = buf[:, :, 1:held].clone()
            held -= 1
        self.k[layer][:, :, held : held + T] = k
        self.v[layer][:, :, held : held + T] = v
        self.seen[layer] += T
        return self.k[layer][:, :, : held + T], self.v[layer][:, :, : held + T]  # (B, n_kv_head, held+T, hs)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.n_kv_head = config.kv_heads
        self.kv_dim = config.kv_heads * config.head_size  # C, or less with fewer k/v heads
        self.dropout = config.dropout
        self.qk_norm = config.qk_norm
        self.window = config.block_size  # with RoPE, longer sequences attend to the last `window` positions
        # q, k, v at once: (C + 2 * kv_dim) outputs, 3C without grouped-query attention
        self.c_attn = nn.Linear(config.n_embd, config.n_embd + 2 * self.kv_dim, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, rope=None, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split([C, self.kv_dim, self.kv_dim], dim=2)  # (B, T, C), (B, T, kv_dim) x 2
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_kv_head, hs).transpose(1, 2)  # (B, n_kv, T, hs)
        v = v.view(B, T, self.n_kv_head, hs).transpose(1, 2)
        if self.qk_norm:  # every query and key vector to RMS 1: the logits q.k/sqrt(hs) stay within +-sqrt(hs)
            q, k = F.rms_norm(q, (hs,)), F.rms_norm(k, (hs,))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        past = 0
        if cache is not None:
            k, v = cache.append(layer, k, v)  # (B, n_kv, past+T, hs): the cached positions, then these
            past = k.size(2) - T
        if self.n_kv_head != self.n_head:  # each group of n_head // n_kv_head query heads shares a k/v head
            k = k.repeat_interleave(self.n_head // self.n_kv_head, dim=1)  # (B, nh, past+T, hs)
            v = v.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
        dropout_p = self.dropout if self.training else 0.0
        if past == 0 and T <= self.window:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        elif past == 0:  # sliding-window attention: query i sees keys i-window+1 .. i
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril().triu(1 - self.window)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        elif T == 1:  # one new token may look at everything cached
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:  # new token i sees the past and new tokens 0..i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))


def swiglu_hidden(n_embd: int) -> int:
    """SwiGLU's hidden width: 2/3 of 4C = 8C/3, rounded UP to a multiple of 8, i.e. 8 * ceil(C / 3).

    Three C x hidden matrices then hold about 8C^2 numbers, like the two
    C x 4C matrices of the GELU MLP (exactly 8C^2 when C is a multiple of 3).
    """
    return 8 * ((n_embd + 2) // 3)


class ReLUSquared(nn.Module):
    """max(0, x)^2: as cheap as ReLU, smooth at 0 in its first derivative (modded-nanogpt's MLP)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


class MLP(nn.Module):
    """c_proj(act(c_fc(x))), or with SwiGLU c_proj(silu(c_gate(x)) * c_fc(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        C = config.n_embd
        hidden = config.mlp_width
        self.c_fc = nn.Linear(C, hidden, bias=config.bias)  # "up"
        self.c_gate = nn.Linear(C, hidden, bias=config.bias) if config.activation == "swiglu" else None
        self.act = {
            "gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU(), "relu2": ReLUSquared(),
            "swiglu": nn.SiLU(),
        }[config.activation]
        self.c_proj = nn.Linear(hidden, C, bias=config.bias)  # "down"
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_gate is not None:
            h = self.act(self.c_gate(x)) * self.c_fc(x)  # (B, T, hidden): the gate scales each unit
        else:
            h = self.act(self.c_fc(x))  # (B, T, 4C)
        return self.dropout(self.c_proj(h))  # (B, T, C)


class GPTBlock(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rope=None, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, cache, layer)
        x = x + self.mlp(self.ln_2(x))
        return x


def copy_block_weights(block: Block, gpt_block: GPTBlock) -> None:
    """Copy a teaching.Block's weights into a fused GPT block, so both compute the same.

    The GPT must be built with bias=True and activation="relu" (and the default
    norm, pos and n_kv_head). The heads' query, key and value weights are
    stacked head-major into c_attn.weight: first all query rows (head 0,
    head 1, ...), then all key rows, then all value rows. The teaching heads
    have no bias, so c_attn's bias is zero.
    """
    attn, mlp = gpt_block.attn, gpt_block.mlp
    if attn.c_attn.bias is None or not isinstance(mlp.act, nn.ReLU) or not isinstance(gpt_block.ln_1, nn.LayerNorm):
        raise ValueError("copy_block_weights needs a GPT built with bias=True, activation='relu', norm='layernorm'")
    if attn.n_kv_head != attn.n_head or len(block.sa.heads) != attn.n_head:
        raise ValueError(f"copy_block_weights needs {attn.n_head} heads on both sides and no n_kv_head")
    heads = block.sa.heads
    with torch.no_grad():
        wq = torch.cat([h.query.weight for h in heads], dim=0)  # (C, C)
        wk = torch.cat([h.key.weight for h in heads], dim=0)
        wv = torch.cat([h.value.weight for h in heads], dim=0)
        attn.c_attn.weight.copy_(torch.cat([wq, wk, wv], dim=0))  # (3C, C)
        attn.c_attn.bias.zero_()
        pairs = [(attn.c_proj, block.sa.proj), (mlp.c_fc, block.ffwd.net[0]), (mlp.c_proj, block.ffwd.net[2]),
                 (gpt_block.ln_1, block.ln1), (gpt_block.ln_2, block.ln2)]
        for dst, src in pairs:
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)


# --- the model ------------------------------------------------------------------------


class GPT(GenerationMixin, nn.Module):
    """A decoder-only transformer language model."""

    model_type = "gpt"

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        modules = dict(wte=nn.Embedding(config.vocab_size, config.n_embd))
        if config.pos == "learned":
            modules["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        modules.update(
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([GPTBlock(config) for _ in range(config.n_layer)]),
            ln_f=make_norm(config),
        )
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            # One matrix maps characters to vectors and vectors back to characters.
            self.transformer.wte.weight = self.lm_head.weight
        if config.pos == "rope":  # the angles of positions 0..block_size-1, computed once (not saved)
            positions = torch.arange(config.block_size, device="cpu")  # real numbers, even under torch.device("meta")
            cos, sin = rope_cos_sin(positions, config.head_size, config.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)  # (block_size, hs/2)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(init_weights)
        # GPT-2: scale the layers that write into the residual stream by
        # 1/sqrt(2 * n_layer), so its variance does not grow with depth.
        # zero_init_proj: start them at zero instead (each block the identity; the gradient still reaches them).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                if config.zero_init_proj:
                    nn.init.zeros_(p)
                else:
                    nn.init.normal_(p, mean=0.0, std=INIT_STD / math.sqrt(2 * config.n_layer))
        # Training only: recompute each block's activations in the backward pass
        # instead of storing them (less memory, about a third more compute).
        self.gradient_checkpointing = False

    @property
    def block_size(self) -> int:
        return self.config.block_size

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def sliding_window(self) -> bool:
        """GPTConfig.sliding_window: the context slides token by token (see generate.py)."""
        return self.config.sliding_window

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, each shared tensor counted once."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def _rope(self, start: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (T, hs/2) for positions start..start+T-1 (beyond block_size: computed here and now)."""
        if start + T <= self.config.block_size:
            return self.rope_cos[start : start + T], self.rope_sin[start : start + T]
        hs = self.config.n_embd // self.config.n_head
        cos, sin = rope_cos_sin(torch.arange(start, start + T), hs, self.config.rope_theta)
        return cos.to(self.rope_cos), sin.to(self.rope_sin)

    def _hidden(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T = idx.shape
        start = cache.position if cache is not None else 0  # absolute position of idx[:, 0]
        # learned positions stop at block_size; a sliding window has no such limit
        if not self.config.sliding_window and start + T > self.config.block_size:
            raise ValueError(f"cannot run a sequence of length {start + T}: block_size is {self.config.block_size}")
        x = self.transformer.wte(idx)  # (B, T, C)
        rope = None
        if self.config.pos == "learned":
            pos = torch.arange(start, start + T, device=idx.device)  # (T,), on the input's device
            x = x + self.transformer.wpe(pos)  # (B, T, C)
        else:
            rope = self._rope(start, T)  # each (T, hs/2)
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            if self.gradient_checkpointing and self.training and cache is None:
                x = torch.utils.checkpoint.checkpoint(block, x, rope, use_reentrant=False)
            else:
                x = block(x, rope, cache, i)
        return self.transformer.ln_f(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """The output layer, with the soft cap when the config has one."""
        logits = self.lm_head(x)
        cap = self.config.logit_softcap
        if cap is not None:  # smooth, and never beyond +-cap: over-confident logits cannot run away
            logits = cap * torch.tanh(logits / cap)
        return logits

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self._hidden(idx)
        logits = self._logits(x)  # (B, T, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    # --- generation (see GenerationMixin for what each method promises) ------

    def new_kv_cache(self, batch_size: int) -> KVCache:
        p = self.lm_head.weight
        return KVCache(self.config, batch_size, p.device, p.dtype)

    def forward_cached(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Feed new tokens through the cache; logits of the last one: (B, vocab_size)."""
        return self._logits(self._hidden(idx, cache)[:, -1, :])

    def next_token_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits for the token after idx, recomputing the whole context: (B, vocab_size).

        With a sliding window each layer looks back block_size - 1 positions,
        so only the last n_layer * (block_size - 1) + 1 tokens can reach the
        next one: the rest is cut off without changing the result.
        """
        if self.config.sliding_window:
            idx = idx[:, -(self.config.n_layer * (self.config.block_size - 1) + 1) :]
        return self._logits(self._hidden(idx)[:, -1, :])

    # --- checkpoints ---------------------------------------------------------

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def from_config_dict(cls, config: dict) -> "GPT":
        return cls(GPTConfig.from_dict(config))

    # from_pretrained's loader. loading.py registers it: loaders import the model, never the other
    # way round. Importing any part of the package imports gpt_from_scratch/__init__.py, which imports
    # loading.py, so the loader is always in place.
    pretrained_loader: ClassVar[Callable[..., "GPT"] | None] = None

    @classmethod
    def from_pretrained(cls, name_or_dir: str, device: str | torch.device = "cpu") -> "GPT":
        """A pretrained model in this class: OpenAI's GPT-2 ("gpt2" .. "gpt2-xl"), a Llama-family Hub name
        (HuggingFaceTB/SmolLM2-135M-Instruct), a Hugging Face folder or a .gguf file. pretrained.py and
        llama.py write out how their weights map onto ours; loading.py picks the one."""
        if cls.pretrained_loader is None:
            raise RuntimeError("no pretrained loader is registered; import gpt_from_scratch.loading")
        return cls.pretrained_loader(name_or_dir, device)
