"""The checkers of chapters 06-09: each says "not tried yet", names the mistake it was built for, or "correct"."""

import codecs
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gpt_from_scratch import exercises as ex
from gpt_from_scratch.bpe import merge
from gpt_from_scratch.model import GPT


def said(check, fn, capsys):
    """(the checker's result, the one line it printed)."""
    ok = check(fn)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    return ok, lines[0]


def not_tried(*args, **kwargs):
    return None


def raises(*args, **kwargs):
    raise ZeroDivisionError("oops")


ALL = [ex.check_pair_counts, ex.check_bpe_encode, ex.check_stream_decode, ex.check_rmsnorm, ex.check_rope,
       ex.check_gqa_repeat, ex.check_gpt2_to_ours, ex.check_gpt2_params, ex.check_gelu_tanh,
       ex.check_unknown_chars, ex.check_grow_vocab, ex.check_best_step]


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_not_tried_and_raising_answers_print_one_line_and_return_false(check, capsys):
    ok, line = said(check, not_tried, capsys)
    assert not ok and line.startswith("not tried yet: ")
    ok, line = said(check, raises, capsys)
    assert not ok and line.startswith("not yet: your code raised ZeroDivisionError: oops")


# --- chapter 06 -------------------------------------------------------------------------------


def pair_counts(piece_counts, weighted=True, across=False):
    counts = Counter()
    pieces = list(piece_counts.items())
    for piece, n in pieces:
        for pair in zip(piece, piece[1:]):
            counts[pair] += n if weighted else 1
    if across:
        counts[(pieces[0][0][-1], pieces[1][0][0])] += 1
    return dict(counts)


def test_check_pair_counts(capsys):
    assert said(ex.check_pair_counts, pair_counts, capsys)[0]
    ok, line = said(ex.check_pair_counts, lambda p: pair_counts(p, weighted=False), capsys)
    assert not ok and "every piece counted once" in line
    ok, line = said(ex.check_pair_counts, lambda p: pair_counts(p, across=True), capsys)
    assert not ok and "across two" in line
    no_overlap = lambda p: {k: v for k, v in pair_counts(p).items() if k != (97, 97)} | {(97, 97): 2}  # noqa: E731
    ok, line = said(ex.check_pair_counts, no_overlap, capsys)
    assert not ok and "(97, 97)" in line and "expected 4, got 2" in line


def encode_by_rank(text, merges):
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, math.inf))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


def encode_left_to_right(text, merges):
    ids = list(text.encode("utf-8"))
    changed = True
    while changed:
        changed = False
        for i, pair in enumerate(zip(ids, ids[1:])):
            if pair in merges:
                ids = ids[:i] + [merges[pair]] + ids[i + 2:]
                changed = True
                break
    return ids


def test_check_bpe_encode(capsys):
    assert said(ex.check_bpe_encode, encode_by_rank, capsys)[0]
    ok, line = said(ex.check_bpe_encode, encode_left_to_right, capsys)
    assert not ok and "out of rank order" in line and "[97, 256]" in line
    ok, line = said(ex.check_bpe_encode, lambda t, m: list(t.encode("utf-8")) if t != "abc" else [97, 256], capsys)
    assert not ok and "stopped too early" in line
    ok, line = said(ex.check_bpe_encode, lambda t, m: encode_by_rank(t.lower(), m), capsys)
    assert not ok and "decode to" in line


def stream(ids, vocab):
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(b"".join(vocab[i] for i in ids))


def test_check_stream_decode(capsys):
    assert said(ex.check_stream_decode, stream, capsys)[0]
    replace_all = lambda ids, v: b"".join(v[i] for i in ids).decode("utf-8", errors="replace")  # noqa: E731
    ok, line = said(ex.check_stream_decode, replace_all, capsys)
    assert not ok and "hold its bytes back" in line
    token_by_token = lambda ids, v: "".join(v[i].decode("utf-8", errors="replace") for i in ids)  # noqa: E731
    ok, line = said(ex.check_stream_decode, token_by_token, capsys)
    assert not ok and "token by token" in line
    ignore = lambda ids, v: b"".join(v[i] for i in ids).decode("utf-8", errors="ignore")  # noqa: E731
    ok, line = said(ex.check_stream_decode, ignore, capsys)
    assert not ok and "lost" in line
    strict = lambda ids, v: b"".join(v[i] for i in ids).decode("utf-8")  # noqa: E731
    ok, line = said(ex.check_stream_decode, strict, capsys)
    assert not ok and "UnicodeDecodeError" in line


# --- chapter 07 -------------------------------------------------------------------------------


def rmsnorm(x, weight, eps=1e-5, dim=-1):
    return x / torch.sqrt(x.pow(2).mean(dim=dim, keepdim=True) + eps) * weight


def test_check_rmsnorm(capsys):
    assert said(ex.check_rmsnorm, rmsnorm, capsys)[0]
    ok, line = said(ex.check_rmsnorm, lambda x, w: F.layer_norm(x, (x.size(-1),), w), capsys)
    assert not ok and "subtracted the mean" in line
    ok, line = said(ex.check_rmsnorm, lambda x, w: rmsnorm(x, w, dim=1), capsys)
    assert not ok and "wrong dimension" in line
    ok, line = said(ex.check_rmsnorm, lambda x, w: rmsnorm(x, 1.0), capsys)
    assert not ok and "gain is missing" in line
    ok, line = said(ex.check_rmsnorm, lambda x, w: rmsnorm(x, w)[0], capsys)
    assert not ok and "wrong shape (5, 16), expected (2, 5, 16)" in line


def rope(x, positions, adjacent=False, sign=1.0):
    hs = x.size(-1)
    theta = 10000.0 ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)
    angles = positions.double()[:, None] * theta
    cos, sin = angles.cos().float(), sign * angles.sin().float()
    if adjacent:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def test_check_rope(capsys):
    assert said(ex.check_rope, rope, capsys)[0]
    ok, line = said(ex.check_rope, lambda x, p: rope(x, p, adjacent=True), capsys)
    assert not ok and "adjacent pairs" in line
    ok, line = said(ex.check_rope, lambda x, p: rope(x, p, sign=-1.0), capsys)
    assert not ok and "wrong way" in line
    ok, line = said(ex.check_rope, lambda x, p: x.clone(), capsys)
    assert not ok and "use the positions" in line


def test_check_gqa_repeat(capsys):
    assert said(ex.check_gqa_repeat, lambda kv, nh: kv.repeat_interleave(nh // kv.size(1), dim=1), capsys)[0]
    ok, line = said(ex.check_gqa_repeat, lambda kv, nh: kv.repeat(1, nh // kv.size(1), 1, 1), capsys)
    assert not ok and "repeat_interleave" in line
    ok, line = said(ex.check_gqa_repeat, lambda kv, nh: kv, capsys)
    assert not ok and "wrong shape (2, 2, 3, 4), expected (2, 4, 3, 4)" in line


# --- chapter 08 -------------------------------------------------------------------------------

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def gpt2_to_ours(hf_state, transpose=CONV1D, mask_suffix=(".attn.bias", ".attn.masked_bias")):
    state = {}
    for name, t in hf_state.items():
        name = name.removeprefix("transformer.")
        if name.endswith(mask_suffix) or name == "lm_head.weight":
            continue
        state["transformer." + name] = t.t() if name.endswith(transpose) else t
    return state


def test_check_gpt2_to_ours(capsys):
    assert said(ex.check_gpt2_to_ours, gpt2_to_ours, capsys)[0]
    ok, line = said(ex.check_gpt2_to_ours, lambda s: gpt2_to_ours(s, transpose=CONV1D[2:]), capsys)
    assert not ok and "forgot to transpose transformer.h.0.attn.c_attn.weight" in line
    without_c_proj = ("attn.c_attn.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    ok, line = said(ex.check_gpt2_to_ours, lambda s: gpt2_to_ours(s, transpose=without_c_proj), capsys)
    assert not ok and "attn.c_proj.weight" in line and "square" in line
    ok, line = said(ex.check_gpt2_to_ours, lambda s: gpt2_to_ours(s, mask_suffix=("attn.bias", "masked_bias")), capsys)
    assert not ok and "c_attn.bias, a real bias" in line
    ok, line = said(ex.check_gpt2_to_ours, lambda s: gpt2_to_ours(s, mask_suffix=("masked_bias",)), capsys)
    assert not ok and "causal mask" in line


def gpt2_params(V, P, C, L):
    return V * C + P * C + L * (12 * C**2 + 13 * C) + 2 * C


def test_check_gpt2_params(capsys):
    assert said(ex.check_gpt2_params, gpt2_params, capsys)[0]
    ok, line = said(ex.check_gpt2_params, lambda V, P, C, L: gpt2_params(V, P, C, L) + V * C, capsys)
    assert not ok and "tied" in line
    ok, line = said(ex.check_gpt2_params, lambda V, P, C, L: gpt2_params(V, P, C, L) - 2 * C, capsys)
    assert not ok and "ln_f" in line
    ok, line = said(ex.check_gpt2_params, lambda V, P, C, L: gpt2_params(V, P, C, L) - L * 9 * C, capsys)
    assert not ok and "biases are missing" in line


def test_gpt2_params_formula_matches_our_gpt():
    from gpt_from_scratch.model import GPTConfig

    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=100, block_size=16, n_layer=2, n_head=2, n_embd=8, bias=True, dropout=0.0))
    assert model.num_params() == gpt2_params(100, 16, 8, 2)


def test_check_gelu_tanh(capsys):
    gelu = lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))  # noqa: E731
    assert said(ex.check_gelu_tanh, gelu, capsys)[0]
    ok, line = said(ex.check_gelu_tanh, F.gelu, capsys)
    assert not ok and "exact GELU" in line
    ok, line = said(ex.check_gelu_tanh, lambda x: 0.5 * x * (1 + torch.tanh(x + 0.044715 * x**3)), capsys)
    assert not ok and "sqrt(2 / pi)" in line


# --- chapter 09 -------------------------------------------------------------------------------


def test_check_unknown_chars(capsys):
    assert said(ex.check_unknown_chars, lambda t, v: Counter(c for c in t if c not in v), capsys)[0]
    ok, line = said(ex.check_unknown_chars, lambda t, v: {c for c in t if c not in v}, capsys)
    assert not ok and "how often" in line
    ok, line = said(ex.check_unknown_chars, lambda t, v: Counter(c for c in t if c not in v and not c.isspace()), capsys)
    assert not ok and "'\\t'" in line and "whitespace" in line
    ok, line = said(ex.check_unknown_chars, lambda t, v: Counter(c for c in t if c not in v or c == "R"), capsys)
    assert not ok and "'R' is in the vocabulary" in line


def grow(model, old_tok, new_tok, move=True, mean=True):
    import dataclasses

    big = GPT(dataclasses.replace(model.config, vocab_size=new_tok.vocab_size))
    state = model.state_dict()
    old = state["transformer.wte.weight"]
    new = (old.mean(0, keepdim=True) if mean else torch.zeros(1, old.size(1))).repeat(new_tok.vocab_size, 1)
    at = torch.tensor([new_tok.stoi[c] for c in old_tok.chars]) if move else torch.arange(old_tok.vocab_size)
    new[at] = old
    state["transformer.wte.weight"] = state["lm_head.weight"] = new
    big.load_state_dict(state)
    return big


def test_check_grow_vocab(capsys):
    assert said(ex.check_grow_vocab, grow, capsys)[0]
    ok, line = said(ex.check_grow_vocab, lambda m, o, n: grow(m, o, n, move=False), capsys)
    assert not ok and "old order" in line
    ok, line = said(ex.check_grow_vocab, lambda m, o, n: grow(m, o, n, mean=False), capsys)
    assert not ok and "mean of the old rows" in line
    ok, line = said(ex.check_grow_vocab, lambda m, o, n: m, capsys)
    assert not ok and "vocab_size=" in line


def test_check_best_step(capsys):
    first_best = lambda h: min(h, key=lambda e: e["val_loss"])["iter"]  # noqa: E731 - min keeps the first
    assert said(ex.check_best_step, first_best, capsys)[0]
    ok, line = said(ex.check_best_step, lambda h: h[-1]["iter"], capsys)
    assert not ok and "ckpt.pt" in line
    ok, line = said(ex.check_best_step, lambda h: min(h, key=lambda e: e["train_loss"])["iter"], capsys)
    assert not ok and "train loss" in line
    last_best = lambda h: min(reversed(h), key=lambda e: e["val_loss"])["iter"]  # noqa: E731
    ok, line = said(ex.check_best_step, last_best, capsys)
    assert not ok and "on a tie" in line


# --- the notebooks: chapters show "not tried yet", solutions show "correct" ---------------------

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ["06_bpe_tokenizer", "07_modern_block", "08_gpt2", "09_your_own_text"]


def check_cells(path):
    """(source, printed text) of every code cell that calls a checker of gfs.exercises."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "gfs.exercises.check_" in source:
            text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
            found.append((source, text))
    return found


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_notebooks_have_three_checked_exercises_not_yet_tried(name):
    cells = check_cells(ROOT / "notebooks" / f"{name}.ipynb")
    assert len(cells) >= 3
    for source, text in cells:
        assert text.startswith("not tried yet: "), (source, text)


@pytest.mark.parametrize("name", CHAPTERS)
def test_solution_notebooks_answer_every_check_correctly(name):
    path = ROOT / "solutions" / f"{name}.ipynb"
    chapter = {s.strip().split("(")[0] for s, _ in check_cells(ROOT / "notebooks" / f"{name}.ipynb")}
    cells = check_cells(path)
    answered = {s.replace("# NBVAL_CHECK_OUTPUT", "").replace("assert ", "").strip().split("(")[0] for s, _ in cells}
    assert chapter <= answered, chapter - answered
    for source, text in cells:
        assert source.startswith("# NBVAL_CHECK_OUTPUT"), source
        assert text.startswith("correct: ") and text.count("\n") == 1, (source, text)
