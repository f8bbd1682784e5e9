"""Checkers for the notebooks' exercises: each looks at the learner's own answer and says one line.

Every notebook ends with exercises. Each has a "your turn" cell that runs as it stands
(a function returning ``None``, or ``answer = None``), followed by one call to a checker
here. A checker:

- compares the learner's answer with the package's reference, on random inputs and on
  the chapter's data, and names the first mistake it finds precisely (a wrong shape and
  the shape expected, the position where the future leaks into the past, ...);
- prints exactly one line, which starts with one of the three verdicts below, and
  returns ``True`` only when the answer is right;
- never raises, so "Run all" always reaches the end of the notebook, whatever the
  learner wrote.

Worked answers live in ``solutions/NN_*.ipynb``; every check there prints "correct".
"""

from __future__ import annotations

import codecs
import math
import traceback
from collections import Counter
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .bpe import BPETokenizer
from .generate import filter_probs
from .model import GPT, GPTConfig, KVCache, RMSNorm, apply_rope, rope_cos_sin
from .pretrained import convert_gpt2_state
from .teaching import Block
from .tokenizer import CharTokenizer

NOT_TRIED = "not tried yet"
WRONG = "not yet"
CORRECT = "correct"


def verdict(status: str, message: str) -> bool:
    """Print the one line a checker says, and return True only for a correct answer."""
    print(f"{status}: {message}")
    return status == CORRECT


def run_answer(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """Call the learner's function; return (result, None), or (None, a one-line description of its error).

    Checkers must never raise, so an exception inside the learner's code becomes a
    message naming the exception and the learner's line where it happened.
    """
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001 - any mistake of the learner's is reported, never raised
        frames = traceback.extract_tb(e.__traceback__)
        where = f" (line {frames[-1].lineno})" if frames else ""
        return None, f"your code raised {type(e).__name__}: {e}{where}"


def guarded(check: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap a checker so that a bug anywhere in it still prints one line instead of raising."""

    def wrapper(*args: Any, **kwargs: Any) -> bool:
        try:
            return bool(check(*args, **kwargs))
        except Exception as e:  # noqa: BLE001
            return verdict(WRONG, f"the check could not run on your answer ({type(e).__name__}: {e})")

    wrapper.__name__, wrapper.__doc__ = check.__name__, check.__doc__
    wrapper.__wrapped__ = check
    return wrapper


# --- chapter checkers below, one section per chapter, in course order -------------------


# Helpers shared by the chapter checkers.


def _random(*shape: int, seed: int = 0) -> torch.Tensor:
    """A reproducible random tensor, so that every machine checks the same inputs."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _tensor_answer(fn: Callable, args: tuple, name: str, hint: str) -> tuple[torch.Tensor | None, bool]:
    """Run the learner's fn on args: (its tensor, False), or (None, the verdict already said about it).

    None back means "not tried yet" (with the hint); an error, or a result that is not a
    tensor, is a wrong answer that says so.
    """
    out, err = run_answer(fn, *args)
    if out is None and err is None:
        return None, verdict(NOT_TRIED, hint)
    if err:
        return None, verdict(WRONG, err)
    if not isinstance(out, torch.Tensor):
        return None, verdict(WRONG, f"{name} should return a torch.Tensor, got {type(out).__name__}")
    return out, False


def _same(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    """Equal shapes and values within atol (NaN never equals anything)."""
    return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), atol=atol, rtol=1e-4))


def _where_differs(a: torch.Tensor, b: torch.Tensor) -> str:
    """The index of the largest difference between two tensors of one shape, as text."""
    diff = (a.float() - b.float()).abs().nan_to_num(float("inf"))
    index = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    return f"first large difference at index {index}"


def _name_mistake(out: torch.Tensor, mistakes: dict[str, torch.Tensor]) -> str | None:
    """The message of the first known wrong answer that `out` equals, if any."""
    return next((msg for msg, wrong in mistakes.items() if _same(out, wrong)), None)


def _future_leak(fn: Callable, inputs: list[torch.Tensor], time_dim: int = 1) -> str | None:
    """Where an output at position s changes when only a later position t > s changes, if anywhere."""
    base, _ = run_answer(fn, *inputs)
    T = inputs[0].shape[time_dim]
    for t in range(T - 1, 0, -1):
        changed = [x.clone() for x in inputs]
        for x in changed:
            x.narrow(time_dim, t, 1).add_(1.0)
        out, _ = run_answer(fn, *changed)
        if not (isinstance(out, torch.Tensor) and isinstance(base, torch.Tensor) and out.shape == base.shape):
            return None
        moved = (out - base).abs().narrow(time_dim, 0, t).amax(dim=tuple(d for d in range(out.dim()) if d != time_dim))
        if (moved > 1e-6).any():
            s = int((moved > 1e-6).nonzero()[0])
            return f"the future leaks: changing position {t} changes the output at position {s}"
    return None


@guarded
def check_prediction(guess: Any, choices: tuple[str, ...]) -> bool:
    """A "predict, then run" exercise: check that a prediction is written down, as one of `choices`."""
    options = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
    if guess is None:
        return verdict(NOT_TRIED, f"write your prediction first: one of {options}")
    if not isinstance(guess, str) or guess.strip().lower() not in choices:
        return verdict(WRONG, f"write the prediction as one of {options}, not {guess!r}")
    return verdict(CORRECT, f"you predicted {guess.strip().lower()!r}; now compare it with the measurement")


# --- chapter 01: the bigram model -------------------------------------------------------


@guarded
def check_cross_entropy(fn: Callable) -> bool:
    """fn(logits (B, T, V), targets (B, T)) must return the mean of -ln softmax(logits)[target], a scalar."""
    logits, targets = _random(4, 8, 65), torch.randint(65, (4, 8), generator=torch.Generator().manual_seed(1))
    out, said = _tensor_answer(fn, (logits.clone(), targets.clone()), "my_cross_entropy",
                               "return the mean over all positions of -log(softmax(logits)[target])")
    if out is None:
        return said
    flat, ref = logits.view(-1, 65), F.cross_entropy(logits.view(-1, 65), targets.view(-1))
    if out.shape == targets.shape or out.numel() == targets.numel():
        return verdict(WRONG, f"you returned one loss per position, shape {tuple(out.shape)}: take the mean")
    if out.numel() != 1:
        return verdict(WRONG, f"the loss is one number, got shape {tuple(out.shape)}")
    picked = lambda p: p[torch.arange(len(flat)), targets.view(-1)]  # noqa: E731
    mistakes = {
        "no minus sign: the loss is -ln p, a positive number": -ref,
        "a sum over positions: divide by the number of positions (take the mean)": ref * targets.numel(),
        "you averaged the probabilities, not -ln of them: take the log": -picked(flat.softmax(-1)).mean(),
        "log base 2: cross-entropy here is in nats, use the natural log": ref / math.log(2),
        "softmax over the wrong dimension: normalise over the vocabulary, dim=-1":
            -picked(logits.softmax(1).reshape(-1, 65)).log().mean(),
    }
    out = out.reshape(())
    if _same(out, ref):
        return verdict(CORRECT, "your cross-entropy equals F.cross_entropy")
    return verdict(WRONG, _name_mistake(out, mistakes) or f"got {out.item():.4f}, F.cross_entropy gives {ref.item():.4f}")


@guarded
def check_bigram_counts(fn: Callable, train_data: torch.Tensor, vocab_size: int) -> bool:
    """fn(train_data, vocab_size) must return the counted bigram table P[current, next], +1 smoothed, (V, V)."""
    out, said = _tensor_answer(fn, (train_data, vocab_size), "bigram_probs",
                               "count neighbouring pairs with torch.bincount, add 1, divide each row by its sum")
    if out is None:
        return said
    V = vocab_size
    if out.shape != (V, V):
        return verdict(WRONG, f"the table has shape {tuple(out.shape)}, expected ({V}, {V})")
    counts = torch.bincount(train_data[:-1] * V + train_data[1:], minlength=V * V).view(V, V).float()
    ref = (counts + 1) / (counts + 1).sum(dim=1, keepdim=True)
    out = out.float()
    if _same(out, ref, atol=1e-6):
        return verdict(CORRECT, "your table equals the counted, +1 smoothed bigram on the chapter's training text")
    mistakes = {
        "no +1: pairs never seen get probability 0, and one of them in the val text makes the loss infinite":
            counts / counts.sum(dim=1, keepdim=True).clamp(min=1),
        "these are raw counts: divide each row by its sum so that it becomes probabilities": counts + 1,
        "the columns sum to 1: normalise each ROW (dim=1, keepdim=True), one row per current character":
            (counts + 1) / (counts + 1).sum(dim=0, keepdim=True),
        "the table is transposed: row = current character, column = next (pair id = current * V + next)":
            ref.T,
    }
    return verdict(WRONG, _name_mistake(out, mistakes) or f"your table differs from the counted one ({_where_differs(out, ref)})")


# --- chapter 02: one head of self-attention ---------------------------------------------


@guarded
def check_running_mean(fn: Callable) -> bool:
    """fn(x (B, T, C)) must return xbow, where xbow[b, t] is the mean of x[b, 0..t] (the current position included)."""
    x = _random(2, 6, 3)
    out, said = _tensor_answer(fn, (x.clone(),), "running_mean",
                               "average x[:, :t + 1] for every t, with a loop or a lower-triangular matrix")
    if out is None:
        return said
    if out.shape != x.shape:
        return verdict(WRONG, f"output shape {tuple(out.shape)}, expected {tuple(x.shape)} (the same as x)")
    T = x.shape[1]
    tril = torch.tril(torch.ones(T, T))
    ref = (tril / tril.sum(1, keepdim=True)) @ x
    if _same(out, ref):
        return verdict(CORRECT, "every position holds the mean of itself and the positions before it")
    before = torch.tril(torch.ones(T, T), diagonal=-1)
    mistakes = {
        "off by one: position t must average x[0..t] INCLUDING itself (tril, not tril(diagonal=-1))":
            (before / before.sum(1, keepdim=True).clamp(min=1)) @ x,
        "a running sum: divide position t by t + 1 to get the mean": tril @ x,
        "divided by T everywhere: position t averages only t + 1 positions": (tril / T) @ x,
    }
    msg = _name_mistake(out, mistakes) or _future_leak(fn, [x])
    return verdict(WRONG, msg or f"your running mean differs from the reference ({_where_differs(out, ref)})")


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: bool = True, mask: int | None = 0,
               dim: int = -1) -> torch.Tensor:
    """Reference attention and its usual mistakes: mask=None for no mask, an offset for an off-by-one mask."""
    T, hs = q.shape[-2], q.shape[-1]
    wei = q @ k.transpose(-2, -1) * (hs**-0.5 if scale else 1.0)
    if mask is not None:
        allowed = torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=mask)
        wei = wei.masked_fill(~allowed, float("-inf"))
    return wei.softmax(dim=dim).nan_to_num(0.0) @ v


@guarded
def check_attention(fn: Callable) -> bool:
    """fn(q, k, v), each (B, T, hs), must return causal scaled dot-product attention, (B, T, hs).

    Named mistakes: no causal mask, no 1/sqrt(hs) scale, softmax over the wrong dimension,
    a mask off by one, and a future that leaks in any other way.
    """
    q, k, v = _random(2, 6, 8, seed=0) * 2, _random(2, 6, 8, seed=1) * 2, _random(2, 6, 8, seed=2)
    out, said = _tensor_answer(fn, (q.clone(), k.clone(), v.clone()), "my_attention",
                               "scores q @ k^T / sqrt(hs), mask the future with -inf, softmax over the last dim, @ v")
    if out is None:
        return said
    if out.shape != v.shape:
        return verdict(WRONG, f"output shape {tuple(out.shape)}, expected (B, T, hs) = {tuple(v.shape)}")
    ref = _attention(q, k, v)
    if _same(out, ref):
        q2, k2, v2 = _random(1, 11, 16, seed=3), _random(1, 11, 16, seed=4), _random(1, 11, 16, seed=5)
        again, _ = run_answer(fn, q2, k2, v2)
        if isinstance(again, torch.Tensor) and _same(again, _attention(q2, k2, v2)):
            return verdict(CORRECT, "causal, scaled by 1/sqrt(hs), softmax over the keys: equal to the reference")
        return verdict(WRONG, "right for (2, 6, 8) inputs but not for (1, 11, 16): read T and hs from the inputs")
    mistakes = {
        "no causal mask: position t attends to later positions (mask them with -inf before the softmax)":
            _attention(q, k, v, mask=None),
        "no 1/sqrt(hs) scale: multiply the scores by hs ** -0.5 before the softmax": _attention(q, k, v, scale=False),
        "softmax over the wrong dimension: each ROW (one query) must sum to 1, use softmax(dim=-1)":
            _attention(q, k, v, dim=-2),
        "no causal mask and no 1/sqrt(hs) scale": _attention(q, k, v, scale=False, mask=None),
        "the mask is off by one: it hides the current position too (use tril, diagonal included)":
            _attention(q, k, v, mask=-1),
        "the mask is off by one: position t also sees position t + 1": _attention(q, k, v, mask=1),
        "scaled by 1/hs: the scale is 1/sqrt(hs)": _attention(q / q.shape[-1], k, v, scale=False),
    }
    msg = _name_mistake(out, mistakes) or _future_leak(fn, [q, k, v])
    return verdict(WRONG, msg or f"your output differs from causal attention ({_where_differs(out, ref)})")



# --- chapter 03: multi-head attention and the transformer block -------------------------


@guarded
def check_split_heads(fn: Callable) -> bool:
    """fn(x (B, T, C), n_head) must return (B, n_head, T, C // n_head): head h holds channels h*hs..(h+1)*hs-1."""
    x, n_head = _random(2, 5, 12), 3
    out, said = _tensor_answer(fn, (x.clone(), n_head), "split_heads",
                               "view x as (B, T, n_head, hs), then swap T and n_head with transpose(1, 2)")
    if out is None:
        return said
    B, T, C = x.shape
    ref = x.view(B, T, n_head, C // n_head).transpose(1, 2)
    if out.shape == (B, T, n_head, C // n_head):
        return verdict(WRONG, f"shape (B, T, n_head, hs) = {tuple(out.shape)}: now transpose(1, 2) to (B, n_head, T, hs)")
    if out.shape != ref.shape:
        return verdict(WRONG, f"output shape {tuple(out.shape)}, expected (B, n_head, T, hs) = {tuple(ref.shape)}")
    if _same(out, ref, atol=0):
        return verdict(CORRECT, "(B, T, C) -> (B, n_head, T, hs), each head with its own slice of channels")
    if _same(out, x.reshape(B, n_head, T, C // n_head), atol=0):
        return verdict(WRONG, "right shape, wrong layout: a plain view(B, n_head, T, hs) mixes positions into "
                              "heads; view(B, T, n_head, hs) first, then transpose(1, 2)")
    return verdict(WRONG, f"right shape, but the numbers are not x's channels split into heads ({_where_differs(out, ref)})")


@guarded
def check_merge_heads(fn: Callable) -> bool:
    """fn(y (B, n_head, T, hs)) must return (B, T, n_head * hs): the heads side by side, as torch.cat would."""
    y = _random(2, 3, 5, 4)
    out, said = _tensor_answer(fn, (y.clone(),), "merge_heads",
                               "transpose(1, 2) to (B, T, n_head, hs), then reshape to (B, T, n_head * hs)")
    if out is None:
        return said
    B, nh, T, hs = y.shape
    ref = torch.cat([y[:, h] for h in range(nh)], dim=-1)
    if out.shape == (B, T, nh, hs):
        return verdict(WRONG, f"shape (B, T, n_head, hs) = {tuple(out.shape)}: reshape it to (B, T, n_head * hs)")
    if out.shape != ref.shape:
        return verdict(WRONG, f"output shape {tuple(out.shape)}, expected (B, T, n_head * hs) = {tuple(ref.shape)}")
    if _same(out, ref, atol=0):
        return verdict(CORRECT, "(B, n_head, T, hs) -> (B, T, n_head * hs), the same as concatenating the heads")
    if _same(out, y.reshape(B, T, nh * hs), atol=0):
        return verdict(WRONG, "right shape, wrong layout: reshape without transpose(1, 2) first mixes positions "
                              "and heads")
    return verdict(WRONG, f"right shape, but not the heads side by side ({_where_differs(out, ref)})")


def _whole_number(answer: Any) -> str | None:
    """None if answer is a whole number, else what to write instead."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or answer != int(answer):
        return f"write a whole number of parameters, not {answer!r}"
    return None


@guarded
def check_block_params(answer: Any) -> bool:
    """The parameters of one Block(32, 4), counted by hand: attention, feed-forward, two LayerNorms."""
    if answer is None:
        return verdict(NOT_TRIED, "count q, k, v (no bias), proj, the two feed-forward layers (with biases) and two LayerNorms")
    bad = _whole_number(answer)
    if bad:
        return verdict(WRONG, bad)
    block, C = Block(32, 4), 32
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    total = count(block)
    if int(answer) == total:
        return verdict(CORRECT, f"{total:,} parameters: attention {count(block.sa):,}, feed-forward "
                                f"{count(block.ffwd):,}, LayerNorms {count(block.ln1) + count(block.ln2):,}")
    mistakes = {
        12 * C * C: "you counted the weight matrices only: add the biases of proj and of the two feed-forward "
                    "layers, and each LayerNorm's gain and bias",
        count(block.sa): "that is the attention alone: add the feed-forward layer and the two LayerNorms",
        count(block.ffwd): "that is the feed-forward layer alone: add the attention and the two LayerNorms",
        total - 4 * C: "add the two LayerNorms: each has a gain and a bias per channel",
        total + 3 * C: "the query, key and value layers have no bias (bias=False)",
    }
    hint = mistakes.get(int(answer), f"{int(answer):,} is too {'high' if answer > total else 'low'}")
    return verdict(WRONG, hint)


# --- chapter 04: GPT ----------------------------------------------------------------------


@guarded
def check_layer_norm(fn: Callable) -> bool:
    """fn(x (..., C), weight (C,), bias (C,), eps) must equal F.layer_norm over the last dimension."""
    x = torch.cat([_random(2, 3, 8) * 0.05 + 1.0, torch.full((2, 1, 8), 3.0)], dim=1)   # the last row is constant
    w, b, eps = _random(8, seed=1), _random(8, seed=2), 1e-5
    out, said = _tensor_answer(fn, (x.clone(), w.clone(), b.clone(), eps), "my_layer_norm",
                               "(x - mean) / sqrt(var + eps) over the last dim (biased var), then * weight + bias")
    if out is None:
        return said
    if out.shape != x.shape:
        return verdict(WRONG, f"output shape {tuple(out.shape)}, expected the shape of x, {tuple(x.shape)}")
    ref = F.layer_norm(x, (8,), w, b, eps)
    if _same(out, ref, atol=1e-4):
        return verdict(CORRECT, "equal to F.layer_norm, also on a position whose numbers are all equal")
    if torch.isnan(out).any():
        return verdict(WRONG, "NaN on a position whose numbers are all equal (variance 0): add eps inside the square root")
    mean, var = x.mean(-1, keepdim=True), x.var(-1, keepdim=True, unbiased=False)
    norm = (x - mean) / torch.sqrt(var + eps)
    mistakes = {
        "you forgot the learned gain and bias: return normalised * weight + bias": norm,
        "unbiased variance: LayerNorm divides by C, not C - 1 (var(unbiased=False))":
            (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps) * w + b,
        "eps belongs inside the square root: sqrt(var + eps), not std + eps":
            (x - mean) / (var.sqrt() + eps) * w + b,
        "normalised over the wrong dimension: each position is normalised over its own channels (dim=-1)":
            (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True, unbiased=False) + eps) * w + b,
    }
    return verdict(WRONG, _name_mistake(out, mistakes) or f"differs from F.layer_norm ({_where_differs(out, ref)})")


@guarded
def check_gpt_params(fn: Callable) -> bool:
    """fn(vocab_size, block_size, n_layer, n_embd) must give GPT(GPTConfig(...)).num_params(): tied, no biases."""
    shapes = [(65, 256, 6, 384), (50, 16, 2, 24)]
    answers = [run_answer(fn, *s) for s in shapes]
    if all(a is None and e is None for a, e in answers):
        return verdict(NOT_TRIED, "add the embeddings (tokens and positions), n_layer blocks, and the final LayerNorm")
    for (got, err), (V, Bs, L, C) in zip(answers, shapes):
        if err:
            return verdict(WRONG, err)
        bad = _whole_number(got)
        if bad:
            return verdict(WRONG, bad)
        torch.manual_seed(0)
        n = GPT(GPTConfig(vocab_size=V, block_size=Bs, n_layer=L, n_head=2, n_embd=C)).num_params()
        if int(got) == n:
            continue
        where = f"for vocab_size={V}, block_size={Bs}, n_layer={L}, n_embd={C} you count {int(got):,}"
        mistakes = {
            n - Bs * C: "you forgot the position embeddings, block_size x n_embd",
            n + V * C: "lm_head shares the token embedding's matrix (tied weights): count it once",
            n - L * 2 * C - C: "you forgot the LayerNorms: two per block and a final one, n_embd gains each",
            n - C: "you forgot the final LayerNorm, ln_f",
            n - L * 2 * C: "you forgot the two LayerNorms in each block",
            n + L * 9 * C + 2 * L * C + C: "our GPT has no biases (bias=False): count weights only",
            n - L * 4 * C * C: "count the MLP twice: n_embd -> 4 * n_embd and back, 8 * n_embd² per block",
        }
        return verdict(WRONG, f"{where}: {mistakes.get(int(got), 'too high' if got > n else 'too low')}")
    return verdict(CORRECT, "your formula gives num_params() for the flagship shape and for a small one")


@guarded
def check_c_proj_std(fn: Callable) -> bool:
    """fn(n_layer) must give the init std of each c_proj weight: 0.02 / sqrt(2 * n_layer), as in GPT-2."""
    answers = {L: run_answer(fn, L) for L in (6, 12, 24, 1)}
    if all(a is None and e is None for a, e in answers.values()):
        return verdict(NOT_TRIED, "each block adds to the residual stream twice; scale 0.02 so that the variances add to a constant")
    for L, (got, err) in answers.items():
        if err:
            return verdict(WRONG, err)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return verdict(WRONG, f"return a number, got {type(got).__name__} for n_layer={L}")
        ref = 0.02 / math.sqrt(2 * L)
        if math.isclose(got, ref, rel_tol=1e-6):
            continue
        mistakes = {
            0.02 / math.sqrt(L): "each block adds to the stream TWICE (attention and MLP): sqrt(2 * n_layer)",
            0.02 / (2 * L): "the spread grows like the square root of the number of additions: divide by sqrt(2 * n_layer)",
            0.02: "that is the unscaled init: the stream then grows with depth",
        }
        hint = next((m for v, m in mistakes.items() if math.isclose(got, v, rel_tol=1e-6)), "not 0.02 scaled for depth")
        return verdict(WRONG, f"for n_layer={L} you give {got:.6g}: {hint}")
    return verdict(CORRECT, "0.02 / sqrt(2 * n_layer), the package's c_proj init, for 1, 6, 12 and 24 blocks")


# --- chapter 05: generation -----------------------------------------------------------------


def _logit_rows() -> torch.Tensor:
    """Two rows of next-token logits with distinct values, so that top-k and top-p have one right answer."""
    return torch.stack([torch.linspace(-3, 3, 12)[torch.randperm(12, generator=torch.Generator().manual_seed(s))]
                        for s in (0, 1)])


@guarded
def check_top_k(fn: Callable) -> bool:
    """fn(logits (B, V), k) must keep the k largest logits of each row and set the others to -inf."""
    logits, k = _logit_rows(), 3
    out, said = _tensor_answer(fn, (logits.clone(), k), "my_top_k",
                               "find the k-th largest logit of each row with torch.topk, set the smaller ones to -inf")
    if out is None:
        return said
    if out.shape != logits.shape:
        return verdict(WRONG, f"output shape {tuple(out.shape)}, expected the logits' shape {tuple(logits.shape)}")
    kth = logits.topk(k, dim=-1).values[:, -1:]
    ref = logits.masked_fill(logits < kth, float("-inf"))
    if torch.equal(out, ref):
        return verdict(CORRECT, "the k largest logits of each row kept, unchanged; the rest at -inf")
    kept = (out > float("-inf")).sum(-1)
    if (out == 0).sum(-1).ge(logits.size(-1) - k).all() and not torch.isinf(out).any():
        return verdict(WRONG, "the dropped logits are 0, which softmax still turns into a probability: set them to -inf")
    if (kept != k).any():
        off = " (off by one)" if abs(int(kept[0]) - k) == 1 else ""
        return verdict(WRONG, f"row 0 keeps {int(kept[0])} logits, expected k = {k}{off}")
    if not torch.equal(out.isfinite(), ref.isfinite()):
        return verdict(WRONG, "you kept k logits, but not the k largest of each row (topk over dim=-1, largest=True)")
    return verdict(WRONG, "the right logits are kept, but their values changed: keep them as they are")


@guarded
def check_top_p(fn: Callable) -> bool:
    """fn(probs (B, V), p) must keep the smallest set of likeliest tokens whose mass reaches p, renormalised."""
    probs, p = _logit_rows().softmax(-1), 0.6
    out, said = _tensor_answer(fn, (probs.clone(), p), "my_top_p",
                               "sort descending, keep tokens while the mass BEFORE them is below p, renormalise")
    if out is None:
        return said
    if out.shape != probs.shape:
        return verdict(WRONG, f"output shape {tuple(out.shape)}, expected the probabilities' shape {tuple(probs.shape)}")
    ref = filter_probs(probs.log(), top_p=p)
    if _same(out, ref, atol=1e-6):
        return verdict(CORRECT, "the smallest set of likeliest tokens that reaches p, renormalised to sum to 1")
    sums = out.sum(-1)
    if torch.equal(out > 0, ref > 0):
        return verdict(WRONG, f"the right tokens are kept, but row 0 sums to {sums[0].item():.3f}: divide by the kept mass")
    n_out, n_ref = int((out[0] > 0).sum()), int((ref[0] > 0).sum())
    if n_out == n_ref - 1:
        return verdict(WRONG, f"row 0 keeps {n_out} tokens, one too few: keep the token that crosses p too "
                              "(compare the mass BEFORE each token with p)")
    if n_out == n_ref + 1:
        return verdict(WRONG, f"row 0 keeps {n_out} tokens, one too many: stop at the first token whose mass reaches p")
    return verdict(WRONG, f"row 0 keeps {n_out} tokens, expected {n_ref}: keep the likeliest tokens (sort descending)")


@guarded
def check_kv_cache(cache_class: Callable) -> bool:
    """cache_class(block_size) with append(k, v) -> (keys, values): every position held, at most block_size, newest last.

    k and v are (B, n_head, 1, hs), one new token; keys and values are (B, n_head, held, hs).
    """
    block_size, steps = 4, 6
    ks = [_random(1, 2, 1, 3, seed=10 + i) for i in range(steps)]
    first, err = run_answer(cache_class, block_size)
    if err:
        return verdict(WRONG, err)
    for step, k in enumerate(ks, start=1):
        got, err = run_answer(first.append, k, -k)
        if err:
            return verdict(WRONG, err)
        if got is None and step == 1:
            return verdict(NOT_TRIED, "append() should concatenate along dim 2 and drop the oldest beyond block_size")
        if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
            return verdict(WRONG, "append(k, v) should return a tuple (keys, values) of tensors")
        want = torch.cat(ks[max(0, step - block_size):step], dim=2)
        keys, values = got
        if torch.equal(keys, want) and torch.equal(values, -want):
            continue
        held = keys.size(2) if keys.dim() == 4 else None
        if keys.dim() == 4 and keys.shape[:2] == want.shape[:2] and keys.size(3) == want.size(3):
            if held == 1 and step > 1:
                return verdict(WRONG, f"after {step} appends the cache holds 1 position: it forgets what it held (store "
                                      "the concatenation in self)")
            if held > block_size:
                return verdict(WRONG, f"after {step} appends it holds {held} positions, more than block_size = "
                                      f"{block_size}: drop the oldest")
            if held == want.size(2) and torch.equal(keys, torch.cat(ks[:block_size], dim=2)):
                return verdict(WRONG, f"after {step} appends it drops the NEWEST position: keep the last block_size")
        if keys.shape != want.shape:
            return verdict(WRONG, f"after {step} appends keys have shape {tuple(keys.shape)}, expected (B, n_head, "
                                  f"held, hs) = {tuple(want.shape)} (concatenate along dim 2)")
        return verdict(WRONG, f"after {step} appends the keys or values are not the ones appended, in order")
    second, err = run_answer(cache_class, block_size)
    got, _ = run_answer(second.append, ks[0], -ks[0]) if second is not None else (None, None)
    if not (isinstance(got, tuple) and torch.equal(got[0], ks[0])):
        return verdict(WRONG, "a new cache already holds keys: keep them in the instance (self), not in the class")
    return verdict(CORRECT, "every position held in order, never more than block_size, the oldest dropped first")


# --- chapter 06 · BPE: counting pairs, encoding by rank, printing a stream of bytes ----------

# A short text of our own, long enough to learn a few dozen merges from; any English would do.
_BPE_TEXT = (
    "The king is in the garden, and the queen is in the hall.\n"
    "Then they went to the river, and there they saw the other boats.\n"
    "The three thieves thought that the theatre was theirs.\n"
) * 3


def _pair_name(pair: tuple[int, int], vocab: dict[int, bytes] | None = None) -> str:
    """(a, b) with the bytes it stands for, when they are known: (116, 104) 'th'."""
    vocab = vocab or {}
    shown = b"".join(vocab.get(i, bytes([i]) if i < 256 else b"?") for i in pair)
    return f"{pair} {shown.decode('utf-8', errors='replace')!r}"


@guarded
def check_pair_counts(fn: Callable) -> bool:
    """fn(piece_counts) counts the neighbour pairs of pieces that occur piece_counts[piece] times each.

    The package counts each distinct piece once and weights its pairs by how often the
    piece occurs; the classic mistakes are to forget the weight or to pair across pieces."""
    pieces = {(116, 104, 101): 5, (32, 116, 104, 101): 3, (97, 97, 97): 2, (116, 111): 1, (101,): 4}
    result, error = run_answer(fn, dict(pieces))
    if error:
        return verdict(WRONG, error)
    if result is None:
        return verdict(NOT_TRIED, "for each piece, add its count to every pair zip(piece, piece[1:]) holds")
    if not isinstance(result, dict):
        return verdict(WRONG, f"return a dict {{(a, b): count}}, not a {type(result).__name__}")
    got = {pair: n for pair, n in result.items() if n}
    expected, unweighted = Counter(), Counter()
    for piece, n in pieces.items():
        for pair in zip(piece, piece[1:]):
            expected[pair] += n
            unweighted[pair] += 1
    if got == dict(unweighted):
        return verdict(WRONG, "every piece counted once: a piece that occurs n times adds n to each of its pairs "
                       f"(pair {_pair_name((116, 104))}: expected {expected[(116, 104)]}, got 2)")
    across = [p for p in got if p not in expected]
    if across:
        return verdict(WRONG, f"pair {_pair_name(across[0])} is not inside any piece: pairs are counted within "
                       "a piece, never across two")
    for pair, n in expected.items():
        if got.get(pair, 0) != n:
            return verdict(WRONG, f"pair {_pair_name(pair)}: expected {n}, got {got.get(pair, 0)}"
                           + (" (aaa holds the pair (97, 97) twice, overlapping)" if pair == (97, 97) else ""))
    return verdict(CORRECT, f"all {len(expected)} pair counts match, each weighted by its piece's count")


@guarded
def check_bpe_encode(fn: Callable) -> bool:
    """fn(text, merges) encodes text with the merges (no split pattern), by rank as GPT-2 does.

    Compared with gfs.BPETokenizer(merges, pattern=None) on a rank-order trap, on merges
    learned from English and on text with characters those merges never saw."""
    trap = {(98, 99): 256, (97, 98): 257}  # 'bc' learned first, then 'ab'
    learned = BPETokenizer.train(_BPE_TEXT, 256 + 40, pattern=None).merges
    cases = [("abc", trap), ("the thieves", learned), ("Then the queen saw café boats.", learned)]
    for text, merges in cases:
        result, error = run_answer(fn, text, dict(merges))
        if error:
            return verdict(WRONG, error)
        if result is None:
            return verdict(NOT_TRIED, "start from the text's bytes; while a learned pair is present, merge the "
                           "one with the lowest id (learned first) everywhere")
        ref = BPETokenizer(merges, pattern=None)
        expected, result = ref.encode_ordinary(text), [int(i) for i in result]
        if result == expected:
            continue
        if text == "abc" and result == [257, 99]:
            return verdict(WRONG, "merge applied out of rank order: 'abc' gave ab + c, but 'bc' (id 256) was "
                           "learned before 'ab' (id 257), so it is a + bc [97, 256]")
        if ref.decode(result) != text:
            return verdict(WRONG, f"your ids for {text!r} decode to {ref.decode(result)!r}: bytes were lost or changed")
        left = [p for p in zip(result, result[1:]) if p in merges]
        if len(result) > len(expected) and left:
            return verdict(WRONG, f"{text!r}: stopped too early, the learned pair {_pair_name(left[0], ref.vocab)} "
                           "is still there")
        return verdict(WRONG, f"{text!r}: merges applied out of rank order: got {result}, expected {expected} "
                       "(always merge the present pair with the lowest rank first)")
    return verdict(CORRECT, "the same ids as gfs.BPETokenizer on all three texts, rank-order trap included")


def _stream_reference(ids: list[int], vocab: dict[int, bytes]) -> str:
    """What a streaming printer may show: the text of the ids, minus an unfinished last character."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(b"".join(vocab[i] for i in ids))


@guarded
def check_stream_decode(fn: Callable) -> bool:
    """fn(ids, vocab) returns the text a streaming printer can show: every finished character, none held back.

    A character split over tokens must neither print as U+FFFD nor be lost; bytes
    that can never be valid UTF-8 do print as U+FFFD."""
    vocab = {i: bytes([i]) for i in range(256)} | {256: b"caf", 257: b"\xc3", 258: b"\xa9 \xf0\x9f", 259: b"\x99\x82"}
    stream = [256, 257, 258, 259, 33]  # caf + é split over two tokens, 🙂 split over two, then '!'
    cases = [stream] + [stream[:n] for n in range(1, len(stream))] + [[104, 0x80, 105], [99, 0xC3]]
    for ids in cases:
        result, error = run_answer(fn, list(ids), dict(vocab))
        if error:
            return verdict(WRONG, error)
        if result is None:
            return verdict(NOT_TRIED, "join the tokens' bytes, then decode all but the bytes of a character "
                           "that is not finished yet (codecs.getincrementaldecoder can help)")
        expected = _stream_reference(ids, vocab)
        if result == expected:
            continue
        if not isinstance(result, str):
            return verdict(WRONG, f"return the text as a str, not a {type(result).__name__}")
        if result.rstrip("\ufffd") == expected and result != expected:
            return verdict(WRONG, f"ids {ids}: you print {result!r}; the last character is not finished, so "
                           "hold its bytes back instead of printing U+FFFD")
        if "\ufffd" in result and "\ufffd" not in expected:
            return verdict(WRONG, f"ids {ids}: you print {result!r}, expected {expected!r}: decoding token by token "
                           "breaks a character whose bytes sit in two tokens")
        if len(result) < len(expected):
            return verdict(WRONG, f"ids {ids}: you print {result!r}, expected {expected!r}: finished characters lost")
        return verdict(WRONG, f"ids {ids}: you print {result!r}, expected {expected!r}")
    return verdict(CORRECT, f"{len(cases)} streams: split characters held back, then printed whole")


# --- chapter 07 · the modern block: RMSNorm, RoPE, grouped-query attention -------------------


def _first_match(result: torch.Tensor, candidates: dict[str, torch.Tensor], atol: float = 1e-5) -> str | None:
    """The name of the first known mistake whose output the learner's result reproduces."""
    for name, wrong in candidates.items():
        if wrong.shape == result.shape and torch.allclose(result, wrong, atol=atol):
            return name
    return None


def _as_tensor_answer(result: Any, shape: tuple[int, ...]) -> str | None:
    """A message when result is not a tensor of the expected shape, else None."""
    if not isinstance(result, torch.Tensor):
        return f"return a tensor, not a {type(result).__name__}"
    if tuple(result.shape) != shape:
        return f"wrong shape {tuple(result.shape)}, expected {shape}"
    return None


@guarded
def check_rmsnorm(fn: Callable) -> bool:
    """fn(x, weight, eps=1e-5) is RMSNorm over the last dimension: x / sqrt(mean(x**2) + eps) * weight."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 5, 16, generator=gen) + 0.7  # a mean far from 0, so LayerNorm differs
    w = 1 + 0.3 * torch.randn(16, generator=gen)
    result, error = run_answer(fn, x.clone(), w.clone())
    if error:
        return verdict(WRONG, error)
    if result is None:
        return verdict(NOT_TRIED, "divide x by the root of the mean of x**2 over the last dimension (plus eps), "
                       "then multiply by weight")
    if (problem := _as_tensor_answer(result, tuple(x.shape))) is not None:
        return verdict(WRONG, problem)
    rms = lambda t, dim: torch.sqrt(t.pow(2).mean(dim=dim, keepdim=True) + 1e-5)  # noqa: E731
    reference = RMSNorm(16, eps=1e-5)  # the package's own RMSNorm is the answer
    with torch.no_grad():
        reference.weight.copy_(w)
        expected = reference(x)
    if torch.allclose(result, expected, atol=1e-5):
        return verdict(CORRECT, "the same output as gfs.model.RMSNorm, with its gain, on inputs far from mean 0")
    centred = x - x.mean(-1, keepdim=True)
    mistakes = {
        "you subtracted the mean: that is LayerNorm; RMSNorm only divides by the root mean square": centred
        / rms(centred, -1) * w,
        "normalised over the wrong dimension: mean(x**2) must run over the last dimension, each token's C "
        "numbers (dim=-1), not over tokens or the batch": x / rms(x, 1) * w,
        "normalised over the wrong dimension (dim=0, the batch): use dim=-1, each token's C numbers": x / rms(x, 0) * w,
        "the gain is missing: multiply by weight at the end": x / rms(x, -1),
        "divided by mean(x**2) itself: take its square root": x / (x.pow(2).mean(-1, keepdim=True) + 1e-5) * w,
        "divided by the standard deviation: RMSNorm uses the root mean square, with no mean subtracted": x
        / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5) * w,
    }
    name = _first_match(result, mistakes)
    return verdict(WRONG, name or f"differs from RMSNorm by up to {(result - expected).abs().max():.3g}")


@guarded
def check_rope(fn: Callable) -> bool:
    """fn(x, positions) rotates x (B, nh, T, hs) by RoPE at positions (T,): dimension i paired with i + hs/2."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 6, 8, generator=gen)
    positions = torch.tensor([0, 1, 2, 5, 64, 1000])
    result, error = run_answer(fn, x.clone(), positions.clone())
    if error:
        return verdict(WRONG, error)
    if result is None:
        return verdict(NOT_TRIED, "angles positions[:, None] * 10000 ** (-2i / hs) for i < hs/2; rotate each "
                       "pair (x[..., i], x[..., i + hs/2]) by its angle")
    if (problem := _as_tensor_answer(result, tuple(x.shape))) is not None:
        return verdict(WRONG, problem)
    cos, sin = rope_cos_sin(positions, 8)
    expected = apply_rope(x, cos, sin)
    if torch.allclose(result, expected, atol=1e-5):
        return verdict(CORRECT, "the same rotation as gfs.model.apply_rope, at positions up to 1,000")
    even, odd = x[..., 0::2], x[..., 1::2]
    adjacent = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)
    wrong_theta = positions.double()[:, None] * 10000.0 ** (-torch.arange(4).double() / 8)
    mistakes = {
        "you rotated adjacent pairs (0, 1), (2, 3), ...: that is RoFormer's and Meta's layout; here dimension i "
        "pairs with i + hs/2 (rotate halves)": adjacent,
        "rotated the wrong way: the first half gets x1*cos - x2*sin, the second x1*sin + x2*cos": apply_rope(
            x, cos, -sin),
        "wrong angles: pair i turns by 10000 ** (-2i / hs) per position (i = 0 .. hs/2 - 1), not 10000 ** (-i / hs)":
        apply_rope(x, wrong_theta.cos().float(), wrong_theta.sin().float()),
        "every token got position 0's rotation (none): use the positions you were given": x,
    }
    name = _first_match(result, mistakes, atol=1e-4)
    return verdict(WRONG, name or f"differs from apply_rope by up to {(result - expected).abs().max():.3g}")


@guarded
def check_gqa_repeat(fn: Callable) -> bool:
    """fn(kv, n_head) expands kv (B, n_kv_head, T, hs) so that query head h reads key/value head h // group."""
    kv = torch.arange(2 * 2 * 3 * 4, dtype=torch.float32).view(2, 2, 3, 4)  # head j holds its own numbers
    for n_head in (4, 6):
        result, error = run_answer(fn, kv.clone(), n_head)
        if error:
            return verdict(WRONG, error)
        if result is None:
            return verdict(NOT_TRIED, "each key/value head serves n_head // n_kv_head query heads in a row: "
                           "repeat it that many times along dim=1")
        if (problem := _as_tensor_answer(result, (2, n_head, 3, 4))) is not None:
            return verdict(WRONG, problem)
        group = n_head // kv.size(1)
        if torch.equal(result, kv.repeat_interleave(group, dim=1)):
            continue
        if torch.equal(result, kv.repeat(1, group, 1, 1)):
            return verdict(WRONG, f"query head 1 got key/value head 1; with groups of {group} it must get head 0 "
                           "(h // group): you tiled the heads (repeat) instead of repeating each one "
                           "(repeat_interleave)")
        for h in range(n_head):
            if not torch.equal(result[:, h], kv[:, h // group]):
                return verdict(WRONG, f"n_head={n_head}: query head {h} should read key/value head {h // group}")
    return verdict(CORRECT, "each key/value head is shared by its own group of query heads (n_head 4 and 6)")


# --- chapter 08 · GPT-2's weights: renaming and transposing, counting, the tanh GELU ----------


def _tiny_gpt2_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A random 2-layer GPT-2 in Hugging Face's layout (GPT2LMHeadModel names, Conv1D (in, out), masks)."""
    C, V, P = 8, 11, 16
    w = {"transformer.wte.weight": torch.randn(V, C, generator=gen),
         "transformer.wpe.weight": torch.randn(P, C, generator=gen)}
    shapes = {"ln_1.weight": (C,), "ln_1.bias": (C,), "ln_2.weight": (C,), "ln_2.bias": (C,),
              "attn.c_attn.weight": (C, 3 * C), "attn.c_attn.bias": (3 * C,), "attn.c_proj.weight": (C, C),
              "attn.c_proj.bias": (C,), "mlp.c_fc.weight": (C, 4 * C), "mlp.c_fc.bias": (4 * C,),
              "mlp.c_proj.weight": (4 * C, C), "mlp.c_proj.bias": (C,)}
    for i in range(2):
        for name, shape in shapes.items():
            w[f"transformer.h.{i}.{name}"] = torch.randn(*shape, generator=gen)
        w[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
        w[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    w["transformer.ln_f.weight"], w["transformer.ln_f.bias"] = torch.randn(C, generator=gen), torch.randn(C, generator=gen)
    w["lm_head.weight"] = w["transformer.wte.weight"]
    return w


def _conversion_mistake(got: dict, expected: dict) -> str | None:
    """Name the first difference between a learner's converted GPT-2 state and the package's."""
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    masks = [n for n in extra if n.endswith((".attn.bias", ".attn.masked_bias"))]
    if masks:
        return f"kept {masks[0]}, the causal mask saved as if it were a weight: skip it"
    real_bias = [n for n in missing if n.endswith("attn.c_attn.bias")]
    if real_bias:
        return (f"dropped {real_bias[0]}, a real bias: only a name ending in '.attn.bias' (mind the dot) is "
                "the mask")
    if missing or extra:
        return (f"names differ: {'missing ' + missing[0] if missing else ''}{', ' if missing and extra else ''}"
                f"{'unexpected ' + extra[0] if extra else ''} (ours are like transformer.h.0.ln_1.weight)")
    for name, want in expected.items():
        have = got[name]
        if not isinstance(have, torch.Tensor):
            return f"{name} is a {type(have).__name__}, not a tensor"
        if torch.equal(have, want):
            continue
        if have.shape == want.t().shape and torch.equal(have, want.t()) and have.shape != want.shape:
            return (f"forgot to transpose {name}: GPT-2's Conv1D stores {tuple(have.shape)} (in, out), "
                    f"nn.Linear wants {tuple(want.shape)} (out, in)")
        if want.dim() == 2 and torch.equal(have, want.t()):
            if name.endswith(("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")):
                return (f"forgot to transpose {name}: it is square (C x C), so it loads without a shape error, "
                        "but the model computes the wrong function")
            return f"transposed {name}, which is not a Conv1D weight: only the four Conv1D matrices flip"
        return f"{name} does not hold GPT-2's numbers"
    return None


@guarded
def check_gpt2_to_ours(fn: Callable) -> bool:
    """fn(hf_state) renames, skips and transposes GPT-2's tensors into our GPT's state dict.

    Compared with gfs.pretrained.convert_gpt2_state on a random 2-layer GPT-2 in
    GPT2LMHeadModel's layout (with the 'transformer.' prefix and the mask buffers)."""

    hf = _tiny_gpt2_state(torch.Generator().manual_seed(5))
    config = GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=8, dropout=0.0, bias=True,
                       activation="gelu_tanh")
    expected = convert_gpt2_state({n: t.clone() for n, t in hf.items()}, config)
    result, error = run_answer(fn, {n: t.clone() for n, t in hf.items()})
    if error:
        return verdict(WRONG, error)
    if result is None:
        return verdict(NOT_TRIED, "drop 'transformer.', skip the mask buffers (.attn.bias, .attn.masked_bias), "
                       "transpose the four Conv1D weights, put 'transformer.' back in front")
    if isinstance(result, tuple):
        result = result[0]  # the notebook's gpt2_to_ours also returns what it skipped and transposed
    if not isinstance(result, dict):
        return verdict(WRONG, f"return a dict {{name: tensor}}, not a {type(result).__name__}")
    got = dict(result)
    head = got.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, expected["transformer.wte.weight"]):
        return verdict(WRONG, "lm_head.weight must be the token embedding transformer.wte.weight (tied)")
    mistake = _conversion_mistake(got, expected)
    if mistake:
        return verdict(WRONG, mistake)
    return verdict(CORRECT, f"all {len(expected)} tensors named, skipped and transposed as the package does")


def _gpt2_count(V: int, P: int, C: int, L: int) -> int:
    return V * C + P * C + L * (12 * C * C + 13 * C) + 2 * C


@guarded
def check_gpt2_params(fn: Callable) -> bool:
    """fn(V, P, C, L) is GPT-2's parameter count: tied embeddings, biases everywhere, a final LayerNorm."""
    cases = [(50257, 1024, 768, 12), (100, 16, 8, 2), (50257, 1024, 1600, 48)]
    for V, P, C, L in cases:
        result, error = run_answer(fn, V, P, C, L)
        if error:
            return verdict(WRONG, error)
        if result is None:
            return verdict(NOT_TRIED, "add up the token and position tables, L blocks (two LayerNorms, attention, "
                           "MLP, with biases) and the final LayerNorm")
        expected = _gpt2_count(V, P, C, L)
        if result == expected:
            continue
        mistakes = {
            V * C: "you counted an output layer of its own: GPT-2's is tied to the token embedding, no extra weights",
            -L * 9 * C: "the biases are missing: c_attn (3C), c_proj (C), c_fc (4C) and the MLP's c_proj (C) have them",
            -L * 13 * C: "the biases are missing (LayerNorms' included): a block has 13C numbers besides its matrices",
            -2 * C: "the final LayerNorm ln_f (weight and bias, 2C) is missing",
            -P * C: "the position embedding (P x C) is missing",
            -L * 4 * C: "the two LayerNorms of each block (4C) are missing",
        }
        name = mistakes.get(int(result) - expected) if isinstance(result, int) else None
        return verdict(WRONG, name or f"for V={V:,}, P={P:,}, C={C:,}, L={L}: got {result:,}, expected "
                       f"{expected:,}" if isinstance(result, int) else f"return an int, not {type(result).__name__}")
    return verdict(CORRECT, "the count matches our GPT for GPT-2 124M, a tiny GPT-2 and GPT-2 XL")


@guarded
def check_gelu_tanh(fn: Callable) -> bool:
    """fn(x) is GPT-2's GELU, the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))."""
    x = torch.linspace(-6, 6, 1201)
    result, error = run_answer(fn, x.clone())
    if error:
        return verdict(WRONG, error)
    if result is None:
        return verdict(NOT_TRIED, "write 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))")
    if (problem := _as_tensor_answer(result, tuple(x.shape))) is not None:
        return verdict(WRONG, problem)
    expected = F.gelu(x, approximate="tanh")
    if torch.allclose(result, expected, atol=1e-6):
        return verdict(CORRECT, "the same as F.gelu(x, approximate='tanh') on [-6, 6]")
    k = torch.sqrt(torch.tensor(2 / torch.pi))
    mistakes = {
        "that is the exact GELU x * Phi(x); GPT-2 uses the tanh approximation (they differ by up to 0.0005)": F.gelu(x),
        "the factor sqrt(2 / pi) inside tanh is missing": 0.5 * x * (1 + torch.tanh(x + 0.044715 * x**3)),
        "the 0.5 in front is missing": x * (1 + torch.tanh(k * (x + 0.044715 * x**3))),
        "the cubic term 0.044715 * x**3 is missing": 0.5 * x * (1 + torch.tanh(k * x)),
    }
    name = _first_match(result, mistakes, atol=1e-6)
    return verdict(WRONG, name or f"differs from the tanh GELU by up to {(result - expected).abs().max():.3g}")


# --- chapter 09 · your own text: unknown characters, a larger vocabulary, best.pt --------------


@guarded
def check_unknown_chars(fn: Callable) -> bool:
    """fn(text, vocab) counts the characters of text that vocab lacks: {character: count}."""
    vocab = set("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")  # cpu-tiny's 65
    text = "# 09 · Your text\nRun `train(cfg)` in 2-3 minutes: café, 100% ok!\n\tDone 3 times."
    result, error = run_answer(fn, text, set(vocab))
    if error:
        return verdict(WRONG, error)
    if result is None:
        return verdict(NOT_TRIED, "go through the text once and count every character that is not in vocab "
                       "(collections.Counter)")
    expected = Counter(ch for ch in text if ch not in vocab)
    if isinstance(result, (set, frozenset, list, str)) and set(result) == set(expected):
        return verdict(WRONG, "the right characters, but return how often each occurs: {character: count}")
    if not isinstance(result, dict):
        return verdict(WRONG, f"return a dict {{character: count}}, not a {type(result).__name__}")
    got = {ch: n for ch, n in result.items() if n}
    known = [ch for ch in got if ch in vocab]
    if known:
        return verdict(WRONG, f"{known[0]!r} is in the vocabulary, yet you count it as unknown")
    for ch, n in expected.items():
        if got.get(ch, 0) != n:
            return verdict(WRONG, f"{ch!r} occurs {n} times unknown, you counted {got.get(ch, 0)}"
                           + (" (whitespace counts too)" if ch.isspace() else ""))
    return verdict(CORRECT, f"{sum(expected.values())} unknown characters, {len(expected)} distinct, each counted")


def _grow_setup():
    """A tiny random character GPT, its tokenizer, and a larger tokenizer in which the old ids move."""

    old = CharTokenizer("\n !',.:?abcdehilmnorstuw")
    new = CharTokenizer(set(old.chars) | set("#0_éAT"))  # 'A' and 'T' sort before the letters: ids move
    torch.manual_seed(11)
    model = GPT(GPTConfig(vocab_size=old.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=8, dropout=0.0))
    return model.eval(), old, new


@guarded
def check_grow_vocab(fn: Callable) -> bool:
    """fn(model, old_tok, new_tok) returns a GPT for new_tok's larger vocabulary that scores old text as before."""
    model, old, new = _grow_setup()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result, error = run_answer(fn, model, old, new)
    if error:
        return verdict(WRONG, error)
    if result is None:
        return verdict(NOT_TRIED, "a GPT with vocab_size=new_tok.vocab_size; copy every weight; put old row i at "
                       "new_tok.stoi[old_tok.chars[i]]; new rows at the mean of the old ones")
    if not hasattr(result, "transformer") or result.config.vocab_size != new.vocab_size:
        size = getattr(getattr(result, "config", None), "vocab_size", None)
        return verdict(WRONG, f"return a GPT with vocab_size={new.vocab_size} (got {size or type(result).__name__})")
    old_wte, wte = before["transformer.wte.weight"], result.transformer.wte.weight.detach()
    at = torch.tensor([new.stoi[c] for c in old.chars])
    prompt = "we shall: hear, the music!"
    with torch.no_grad():
        want = model(torch.tensor([old.encode(prompt)]))[0]
        got = result.eval()(torch.tensor([new.encode(prompt)]))[0][..., at]
    if not torch.allclose(got, want, atol=1e-5):
        if torch.equal(wte[: old.vocab_size], old_wte):
            return verdict(WRONG, f"old rows copied in their old order: {old.chars[at.argmax()]!r} has id "
                           f"{int(at.max())} in the new tokenizer, not {int(at.argmax())}; the ids move when "
                           "the vocabulary is sorted")
        return verdict(WRONG, "the logits of the old characters changed: copy every weight, and each embedding "
                       "row to its character's new id")
    fresh = [i for i in range(new.vocab_size) if i not in set(at.tolist())]
    if not torch.allclose(wte[fresh], old_wte.mean(0).expand(len(fresh), -1), atol=1e-6):
        return verdict(WRONG, "the new characters' rows should start at the mean of the old rows")
    if result.lm_head.weight.data_ptr() != result.transformer.wte.weight.data_ptr():
        return verdict(WRONG, "the output layer is no longer tied to the embedding: build the GPT, then load")
    return verdict(CORRECT, f"{old.vocab_size} -> {new.vocab_size} characters: old logits unchanged, new rows at "
                   "the mean, weights still tied")


@guarded
def check_best_step(fn: Callable) -> bool:
    """fn(history) returns the iteration whose model best.pt holds, from evaluations {"iter", "train_loss", "val_loss"}."""
    rows = lambda evals: [dict(iter=i, train_loss=t, val_loss=v) for i, t, v in evals]  # noqa: E731
    overfit = rows([(0, 4.0, 4.1), (5, 3.0, 3.2), (10, 2.5, 2.9), (15, 1.4, 3.0), (20, 1.5, 3.3)])  # train is noisy too
    tie = rows([(0, 3.1, 3.0), (50, 2.6, 2.5), (100, 2.4, 2.5), (150, 2.2, 2.7)])
    for history, expected in ((overfit, 10), (tie, 50)):
        result, error = run_answer(fn, [dict(h) for h in history])
        if error:
            return verdict(WRONG, error)
        if result is None:
            return verdict(NOT_TRIED, "walk through the evaluations; best.pt is rewritten only when val_loss beats "
                           "the best so far")
        if result == expected:
            continue
        if result == history[-1]["iter"]:
            return verdict(WRONG, "that is the latest step, which ckpt.pt holds; best.pt holds the lowest val loss")
        if result == min(history, key=lambda h: h["train_loss"])["iter"]:
            return verdict(WRONG, "you picked the lowest train loss; best.pt is chosen by the val loss")
        if result == [h["iter"] for h in history].index(expected):
            return verdict(WRONG, f"returned the position {result} in the list; return its iteration, h['iter']")
        if history is tie and result == 100:
            return verdict(WRONG, "on a tie best.pt keeps the earlier step: only a strict improvement rewrites it")
        return verdict(WRONG, f"got {result}, but best.pt holds iteration {expected}")
    return verdict(CORRECT, "best.pt's step: the lowest val loss, the earlier one on a tie, not the last")


# --- chapter 10: a real model (notebooks/10_a_real_model.ipynb) ----------------------------
# The references these checkers compare with are written out here, small, so that a message
# can name the exact mistake; the tests check them against the package's loader.


def _gguf_to_halves(w, n_head: int):
    """GGUF's q or k rows (n_head * hs, C), adjacent pairs per head -> Hugging Face's halves layout.

    In each head, GGUF row 2j + s holds Hugging Face's row j + s * hs/2 (s = 0 or 1).
    """
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def _halves_to_gguf(w, n_head: int):
    """The permutation llama.cpp's converter applies (halves -> adjacent pairs): the mistake to name."""
    rows, cols = w.shape
    return w.reshape(n_head, 2, rows // n_head // 2, cols).transpose(1, 2).reshape(rows, cols)


def _unpermute_mistake(out, w, n_head: int) -> str | None:
    """What is wrong with out = fn(w, n_head), for w[r, c] = 100 r + c; None when right."""
    if not isinstance(out, torch.Tensor):
        return f"your function returned {type(out).__name__}; return a tensor of shape {tuple(w.shape)}"
    if tuple(out.shape) != tuple(w.shape):
        return f"your result has shape {tuple(out.shape)}, expected {tuple(w.shape)}: move rows, keep the shape"
    want = _gguf_to_halves(w, n_head)
    if torch.equal(out, want):
        return None
    hs = w.size(0) // n_head
    labels = (out[:, 0] / 100).round().long()  # which input row each output row came from
    if not (torch.equal(out, w[labels.clamp(0, w.size(0) - 1)]) and sorted(labels.tolist()) == list(range(w.size(0)))):
        return "your result holds values that are not the input's rows, each once: undo the permutation by moving whole rows"
    if torch.equal(out, w):
        return "nothing moved: the rows are still in GGUF's adjacent-pair order"
    if torch.equal(out, _halves_to_gguf(w, n_head)):
        return ("you applied llama.cpp's permutation (halves -> pairs) once more; undo it instead: "
                "row 2j + s of a head goes to row j + s * hs/2")
    moved = (labels // hs != torch.arange(w.size(0)) // hs).nonzero()
    if len(moved):
        r = moved[0].item()
        return (f"output row {r} (head {r // hs}) came from input row {labels[r].item()} (head {labels[r].item() // hs}): "
                f"permute inside each head of {hs} rows (reshape by n_head first)")
    r = (labels != want[:, 0].round().long()).nonzero()[0].item()
    return f"inside head {r // hs}, output row {r} came from input row {labels[r].item()}, expected row {want[r, 0].item() / 100:.0f}"


@guarded
def check_unpermute_qk(fn: Callable, weight=None, n_head: int | None = None) -> bool:
    """Exercise 10.1: fn(w, n_head) undoes GGUF's q/k row permutation, for any head count and width.

    Checked on labelled rows (so a mistake can be named), on random matrices, and on `weight`
    (a real attn_q or attn_k tensor from the GGUF, with its n_head) when the notebook passes one.
    """
    labelled = 100 * torch.arange(3 * 8.0)[:, None] + torch.arange(5.0)  # 3 heads of 8 rows: w[r, c] = 100 r + c
    out, err = run_answer(fn, labelled.clone(), 3)
    if err is None and out is None:
        return verdict(NOT_TRIED, "write my_unpermute(w, n_head): reshape to (n_head, hs/2, 2, C), swap two axes, reshape back")
    if err:
        return verdict(WRONG, err)
    mistake = _unpermute_mistake(out, labelled, 3)
    if mistake:
        return verdict(WRONG, f"3 heads of 8 rows (w[r, c] = 100 r + c): {mistake}")
    gen = torch.Generator().manual_seed(10)
    cases = [(torch.randn(9 * 64, 40, generator=gen), 9), (torch.randn(4 * 6, 7, generator=gen), 4)]
    if weight is not None:
        cases.append((torch.as_tensor(weight).float(), int(n_head)))
    for w, nh in cases:
        out, err = run_answer(fn, w.clone(), nh)
        if err:
            return verdict(WRONG, f"on a ({w.size(0)}, {w.size(1)}) matrix with n_head={nh}: {err}")
        if not isinstance(out, torch.Tensor) or out.shape != w.shape or not torch.equal(out, _gguf_to_halves(w, nh)):
            return verdict(WRONG, f"right on the small example, wrong on a ({w.size(0)}, {w.size(1)}) matrix with "
                                  f"n_head={nh}: is the head size w.size(0) // n_head, and are whole rows moved?")
    real = " and on the model's own weight" if weight is not None else ""
    return verdict(CORRECT, f"your my_unpermute gives Hugging Face's halves layout on every test{real}")


def _kv_cache_reference(config, context: int, bytes_per_number: int = 4) -> int:
    """Bytes of keys and values: 2 (k and v) x layers x key/value heads x head size x positions x bytes."""
    return 2 * config.n_layer * config.kv_heads * config.head_size * context * bytes_per_number


@guarded
def check_kv_cache_bytes(fn: Callable) -> bool:
    """Exercise 10.2: fn(config, context, bytes_per_number=4) is the KV cache's size in bytes, with GQA.

    Compared with the formula on SmolLM2-135M's shape and two others, and with the bytes the
    package's own KVCache allocates for a small model.
    """
    smol = GPTConfig(vocab_size=49152, block_size=8192, n_layer=30, n_head=9, n_embd=576, n_kv_head=3,
                     dropout=0.0, norm="rmsnorm", activation="swiglu", pos="rope", mlp_hidden=1536)
    out, err = run_answer(fn, smol, 1000, 4)
    if err is None and out is None:
        return verdict(NOT_TRIED, "write kv_cache_bytes(config, context, bytes_per_number=4): keys AND values, "
                                  "for every layer, n_kv_head heads of head size numbers per position")
    if err:
        return verdict(WRONG, err)
    want = _kv_cache_reference(smol, 1000, 4)
    if not isinstance(out, (int, float)) or isinstance(out, bool):
        return verdict(WRONG, f"your function returned {type(out).__name__}; return a number of bytes")
    if out != want:
        known = {3.0: "you used n_head (9) where the cache holds n_kv_head (3) key/value heads",
                 0.5: "the cache holds keys AND values: two tensors per layer",
                 1 / 30: "every one of the 30 layers keeps its own keys and values",
                 0.25: "count bytes, not numbers: multiply by bytes_per_number",
                 1 / 64: "each head holds head_size = n_embd // n_head numbers per position",
                 9.0: "each head holds head_size = n_embd // n_head numbers per position, not n_embd"}
        why = next((msg for ratio, msg in known.items() if abs(out / want - ratio) < 1e-9), None)
        return verdict(WRONG, f"SmolLM2-135M, 1,000 positions in float32: you say {out:,.0f} bytes, expected "
                              f"{want:,}" + (f": {why}" if why else ""))
    for config, context, nbytes in [(GPTConfig(n_kv_head=None), 256, 2), (GPTConfig(n_head=6, n_kv_head=2), 77, 4)]:
        out, err = run_answer(fn, config, context, nbytes)
        expected = _kv_cache_reference(config, context, nbytes)
        if err or out != expected:
            hint = " (n_kv_head=None means one key/value head per query head)" if config.n_kv_head is None else ""
            return verdict(WRONG, f"right for SmolLM2, but for {config.n_layer} layers, {config.n_head} heads, "
                                  f"n_kv_head={config.n_kv_head}, {context} positions, {nbytes} bytes each: "
                                  f"{err or f'{out} instead of {expected}'}{hint}")
    small = GPTConfig(vocab_size=10, block_size=48, n_layer=2, n_head=4, n_embd=32, n_kv_head=2, pos="rope")
    allocated = KVCache(small, 1, "cpu", torch.float32).nbytes  # a full cache of block_size positions
    out, err = run_answer(fn, small, small.block_size, 4)
    if err or out != allocated:
        return verdict(WRONG, f"the package's KVCache for a small model allocates {allocated} bytes; you say {err or out}")
    return verdict(CORRECT, f"SmolLM2-135M keeps {want // 1000:,} bytes per token in float32 "
                            f"({want / 1e6:.0f} MB for 1,000 tokens), and the package's KVCache agrees")



def _chat_text(tokenizer, messages, add_generation_prompt: bool = True) -> str:
    """The conversation as the tokenizer's own chat template writes it (Jinja, as transformers runs it)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(tokenizer.chat_template).render(messages=messages, add_generation_prompt=add_generation_prompt)


CHAT_EXAMPLES = (
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Hello!"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke about 42 cats."}],
)


def _chat_mistake(tokenizer, messages, out) -> str | None:
    """What is wrong with out, the learner's ids for messages; None when they are the template's ids."""
    want_text = _chat_text(tokenizer, messages)
    want = tokenizer.encode(want_text, allowed_special="all")
    if not isinstance(out, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in out):
        return f"return a list of ints (token ids), not {type(out).__name__}"
    if list(out) == want:
        return None
    try:
        got_text = tokenizer.decode(list(out))
    except Exception:  # noqa: BLE001 - ids outside the vocabulary
        return f"some ids are not in the vocabulary of {tokenizer.vocab_size:,} tokens"
    start = tokenizer.special_tokens.get("<|im_start|>")
    if got_text == want_text:
        return ("the text is right but the ids are not: <|im_start|> and <|im_end|> must be one special token each "
                "(encode with allowed_special=\"all\")")
    header = "<|im_start|>assistant\n"
    missing = want_text[len(got_text):] if want_text.startswith(got_text) else None
    if missing and header.endswith(missing):  # the reply's header, or its end, left off
        return "end with the assistant's header, '<|im_start|>assistant\\n': the model's reply follows it"
    if messages[0]["role"] != "system" and want_text.endswith(got_text) and got_text.startswith("<|im_start|>user"):
        return "a conversation without a system message starts with the template's default system message"
    if list(out).count(start) != want.count(start):
        return f"{list(out).count(start)} <|im_start|> tokens, expected {want.count(start)}: one per message, one for the reply"
    k = next((i for i, (a, b) in enumerate(zip(got_text, want_text)) if a != b), min(len(got_text), len(want_text)))
    return f"the text differs at character {k}: yours {got_text[max(0, k - 12):k + 12]!r}, expected {want_text[max(0, k - 12):k + 12]!r}"


@guarded
def check_chat_ids(fn: Callable, tokenizer) -> bool:
    """Exercise 10.3: fn(tokenizer, messages) gives a conversation's ChatML ids, as the model's chat template does.

    Checked on three conversations (without a system message, with one, and several turns), against the
    template the tokenizer carries, rendered as transformers renders it.
    """
    if getattr(tokenizer, "chat_template", None) is None:
        return verdict(WRONG, "this tokenizer has no chat template: pass the SmolLM2 tokenizer of the notebook")
    for messages in CHAT_EXAMPLES:
        out, err = run_answer(fn, tokenizer, [dict(m) for m in messages])
        if err is None and out is None:
            return verdict(NOT_TRIED, "write my_chat_ids(tokenizer, messages): '<|im_start|>' + role + '\\n' + content "
                                      "+ '<|im_end|>\\n' per message, then the assistant's header; encode it")
        roles = "/".join(m["role"] for m in messages)
        if err:
            return verdict(WRONG, f"on a {roles} conversation: {err}")
        mistake = _chat_mistake(tokenizer, messages, out)
        if mistake:
            return verdict(WRONG, f"on a {roles} conversation: {mistake}")
    return verdict(CORRECT, f"your ids equal the chat template's on {len(CHAT_EXAMPLES)} conversations, "
                            "default system message included")
