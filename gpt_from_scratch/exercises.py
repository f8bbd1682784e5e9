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

import traceback
from typing import Any, Callable

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


# --- chapter 06 · BPE: counting pairs, encoding by rank, printing a stream of bytes ----------
# Chapters 06-09 compare with the package's own pieces; their imports sit here, beside their checkers.
import codecs  # noqa: E402
from collections import Counter  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

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
    from .bpe import BPETokenizer

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
    expected = x / rms(x, -1) * w
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
    from .model import apply_rope, rope_cos_sin

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
    from .model import GPTConfig
    from .pretrained import convert_gpt2_state

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
    from .model import GPT, GPTConfig
    from .tokenizer import CharTokenizer

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
