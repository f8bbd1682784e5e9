"""Turning a model's next-token logits into text.

Every model in the package generates through `generate` here, so temperature,
top-k, top-p, seeding and the sliding context window behave the same for the
bigram, the small ladder models and the full GPT.

The context window. A model with learned position embeddings only knows
positions 0..block_size-1. Once the text is longer than that, the context must
slide. Both paths below slide it the same way: the window starts at the last
block_size tokens of the prompt, and when it is full it jumps forward by
block_size // 4 tokens. Between jumps the KV cache appends one token at a time;
at a jump it is re-filled from the new window, so every token keeps the
position it had when its keys and values were computed. The cached and the
recomputing paths therefore see exactly the same context at every step and
produce the same tokens.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn.functional as F


def check_sampling_args(
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    max_new_tokens: int = 0,
) -> None:
    """Raise ValueError with one clear line for any out-of-range setting."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number, got {temperature!r}") from None
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k must be a whole number >= 1, got {top_k}")
    if top_p is not None:
        p = float(top_p)
        if not (math.isfinite(p) and 0.0 < p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if int(max_new_tokens) != max_new_tokens or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens}")


def filter_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Probabilities after temperature, top-k and top-p: (B, V), rows sum to 1.

    temperature must be > 0 here; greedy decoding never calls this.
    """
    logits = logits.float() / temperature
    V = logits.size(-1)
    if top_k is not None and top_k < V:
        kth = torch.topk(logits, int(top_k), dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        # keep the smallest set of top tokens whose mass reaches top_p (always >= 1 token)
        sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample_from_probs(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one index per row of probs (B, V) -> (B, 1).

    Inverse-CDF sampling with exactly one uniform number per row, so the random
    stream advances the same way whatever the probabilities are.
    """
    B, V = probs.shape
    gen_device = generator.device if generator is not None else probs.device
    u = torch.rand((B, 1), generator=generator, device=gen_device).to(probs.device)
    cdf = probs.cumsum(dim=-1)
    idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)  # first index with cdf > u
    # guard against rounding at the very top: never return a zero-probability token
    last_nonzero = V - 1 - (probs.flip(-1) > 0).int().argmax(dim=-1, keepdim=True)
    return torch.minimum(idx, last_nonzero)


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next token ids (B, 1) from next-token logits (B, V). temperature=0 is greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    return sample_from_probs(filter_probs(logits, temperature, top_k, top_p), generator)


def window_stride(block_size: int) -> int:
    return max(1, block_size // 4)


def window_start(length: int, prompt_length: int, block_size: int) -> int:
    """First index of the context window when the sequence has `length` tokens."""
    start = max(0, prompt_length - block_size)
    overflow = length - start - block_size
    if overflow > 0:
        stride = window_stride(block_size)
        start += stride * math.ceil(overflow / stride)
    return start


@contextlib.contextmanager
def _small_step_kernels(device: torch.device) -> Iterator[None]:
    """PyTorch's own CPU kernels for a one-token step, instead of oneDNN's.

    On CPU PyTorch hands GELU to oneDNN, which costs about 8 us per call at any
    size: more than the whole GELU of one token. The switch is put back before
    the caller sees the token, so nothing outside generation is affected.
    """
    if device.type != "cpu" or not torch.backends.mkldnn.enabled:
        yield
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True


@torch.inference_mode()  # like no_grad, with less bookkeeping per op: ~10% faster on CPU
def iter_generate(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_kv_cache: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the new tokens one step at a time, each (B, 1). Used for streaming."""
    check_sampling_args(temperature, top_k, top_p, max_new_tokens)
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError("idx must be a (batch, time) tensor with at least one token")
    use_cache = use_kv_cache and hasattr(model, "new_kv_cache")
    block_size = model.block_size
    prompt_length = idx.size(1)
    was_training = model.training
    model.eval()  # dropout off: generation must be repeatable
    try:
        cache, cache_start = None, -1
        for _ in range(max_new_tokens):
            start = window_start(idx.size(1), prompt_length, block_size)
            if use_cache:
                if start != cache_start:  # the window moved (or first step): re-fill
                    cache, cache_start = model.new_kv_cache(idx.size(0)), start
                    logits = model.forward_cached(idx[:, start:], cache)
                else:
                    with _small_step_kernels(idx.device):
                        logits = model.forward_cached(idx[:, -1:], cache)
            elif hasattr(model, "next_token_logits"):
                logits = model.next_token_logits(idx[:, start:])
            else:
                logits = model(idx[:, start:])[0][:, -1, :]
            next_id = sample_next_token(logits, temperature, top_k, top_p, generator)  # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)
            with torch.inference_mode(False):
                next_id = next_id.clone()  # an ordinary tensor for the caller, not an inference tensor
            yield next_id
    finally:
        model.train(was_training)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_kv_cache: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """idx (B, T) -> (B, T + max_new_tokens): the prompt followed by the new tokens."""
    new = list(
        iter_generate(model, idx, max_new_tokens, temperature, top_k, top_p, use_kv_cache, generator)
    )
    return torch.cat([idx, *new], dim=1) if new else idx.clone()


class GenerationMixin:
    """`model.generate(...)` for every model of the package, with one implementation.

    The KV cache is used only by models that have one (the GPT); the others
    recompute their short context, so use_kv_cache makes no difference to them.
    """

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_kv_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, use_kv_cache, generator)


def generate_text(
    model: torch.nn.Module,
    tokenizer,
    prompt: str = "\n",
    max_new_tokens: int = 500,
    num_samples: int = 1,
    device: torch.device | str | None = None,
    **kwargs,
) -> list[str]:
    """Convenience for notebooks: prompt string in, num_samples strings out (prompt included)."""
    if device is None:
        device = next(model.parameters()).device
    ids = tokenizer.encode(prompt or "\n")
    idx = torch.tensor([ids] * num_samples, dtype=torch.long, device=device)
    out = generate(model, idx, max_new_tokens, **kwargs)
    return [tokenizer.decode(row.tolist()) for row in out]
