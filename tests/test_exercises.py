"""The exercise checkers of chapters 01-05: "not tried yet", each named mistake, and a correct answer.

Every wrong answer below is one a learner could write. Each test checks the bool the
checker returns and the one line it prints, so a message that stops naming its
mistake fails here.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from gpt_from_scratch import exercises as ex


def said(capsys) -> str:
    """The one line the checker printed."""
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    return out.strip()


def verdict_of(capsys, check, *args, **kwargs) -> tuple[bool, str]:
    ok = check(*args, **kwargs)
    return ok, said(capsys)


def assert_not_tried(capsys, check, *args):
    ok, line = verdict_of(capsys, check, *args)
    assert not ok and line.startswith("not tried yet: "), line


def assert_wrong(capsys, check, answer, *words, args=()):
    ok, line = verdict_of(capsys, check, answer, *args)
    assert not ok and line.startswith("not yet: "), line
    for w in words:
        assert w in line, line


def assert_correct(capsys, check, answer, args=()):
    ok, line = verdict_of(capsys, check, answer, *args)
    assert ok and line.startswith("correct: "), line


# --- shared ---------------------------------------------------------------------------------


def test_a_learner_error_is_reported_not_raised(capsys):
    def boom(q, k, v):
        raise IndexError("oops")

    assert_wrong(capsys, ex.check_attention, boom, "IndexError", "oops")


def test_prediction(capsys):
    assert_not_tried(capsys, ex.check_prediction, None, ("lower", "higher"))
    assert_wrong(capsys, ex.check_prediction, "maybe", "'lower' or 'higher'", args=(("lower", "higher"),))
    assert_correct(capsys, ex.check_prediction, " Lower", args=(("lower", "higher"),))


# --- chapter 01 ---------------------------------------------------------------------------


def ce(logits, targets):
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def test_cross_entropy(capsys):
    assert_not_tried(capsys, ex.check_cross_entropy, lambda logits, targets: None)
    manual = lambda lg, t: -lg.log_softmax(-1).gather(-1, t.unsqueeze(-1)).mean()  # noqa: E731
    assert_correct(capsys, ex.check_cross_entropy, manual)
    assert_correct(capsys, ex.check_cross_entropy, ce)
    wrong = {
        "no minus sign": lambda lg, t: lg.log_softmax(-1).gather(-1, t.unsqueeze(-1)).mean(),
        "a sum over positions": lambda lg, t: -lg.log_softmax(-1).gather(-1, t.unsqueeze(-1)).sum(),
        "take the log": lambda lg, t: -lg.softmax(-1).gather(-1, t.unsqueeze(-1)).mean(),
        "log base 2": lambda lg, t: -lg.softmax(-1).log2().gather(-1, t.unsqueeze(-1)).mean(),
        "wrong dimension": lambda lg, t: -lg.softmax(1).log().gather(-1, t.unsqueeze(-1)).mean(),
        "one loss per position": lambda lg, t: -lg.log_softmax(-1).gather(-1, t.unsqueeze(-1)).squeeze(-1),
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_cross_entropy, fn, words)


def test_bigram_counts(capsys):
    data = torch.randint(5, (400,), generator=torch.Generator().manual_seed(0))
    data[:3] = torch.tensor([0, 0, 0])
    args = (data, 6)   # character 5 never occurs: its pairs need the +1

    def counts(d, V):
        return torch.bincount(d[:-1] * V + d[1:], minlength=V * V).view(V, V).float()

    assert_not_tried(capsys, ex.check_bigram_counts, lambda d, V: None, *args)
    assert_correct(capsys, ex.check_bigram_counts, lambda d, V: (counts(d, V) + 1) / (counts(d, V) + 1).sum(1, True),
                   args=args)
    wrong = {
        "no +1": lambda d, V: counts(d, V) / counts(d, V).sum(1, True).clamp(min=1),
        "raw counts": lambda d, V: counts(d, V) + 1,
        "columns sum to 1": lambda d, V: (counts(d, V) + 1) / (counts(d, V) + 1).sum(0, True),
        "transposed": lambda d, V: ((counts(d, V) + 1) / (counts(d, V) + 1).sum(1, True)).T,
        "expected (6, 6)": lambda d, V: torch.ones(V, V + 1),
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_bigram_counts, fn, words, args=args)


# --- chapter 02 ---------------------------------------------------------------------------


def test_running_mean(capsys):
    assert_not_tried(capsys, ex.check_running_mean, lambda x: None)
    assert_correct(capsys, ex.check_running_mean,
                   lambda x: x.cumsum(1) / torch.arange(1, x.size(1) + 1).view(1, -1, 1))
    wrong = {
        "INCLUDING itself": lambda x: torch.cat([torch.zeros_like(x[:, :1]), x.cumsum(1)[:, :-1]], 1)
        / torch.arange(x.size(1)).clamp(min=1).view(1, -1, 1),
        "running sum": lambda x: x.cumsum(1),
        "divided by T": lambda x: x.cumsum(1) / x.size(1),
        "the future leaks: changing position 5": lambda x: x.mean(1, keepdim=True).expand_as(x).clone(),
        "expected (2, 6, 3)": lambda x: x.mean(1),
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_running_mean, fn, words)


def attention(q, k, v, scale=True, causal=True, dim=-1, diagonal=0):
    T, hs = q.shape[-2], q.shape[-1]
    wei = q @ k.transpose(-2, -1) * (hs**-0.5 if scale else 1.0)
    if causal:
        wei = wei.masked_fill(torch.tril(torch.ones(T, T), diagonal=diagonal) == 0, float("-inf"))
    return wei.softmax(dim).nan_to_num(0.0) @ v


def test_check_attention_names_each_mistake(capsys):
    assert_not_tried(capsys, ex.check_attention, lambda q, k, v: None)
    assert_correct(capsys, ex.check_attention, attention)
    assert_correct(capsys, ex.check_attention, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    wrong = {
        "no causal mask:": lambda q, k, v: attention(q, k, v, causal=False),
        "no 1/sqrt(hs) scale:": lambda q, k, v: attention(q, k, v, scale=False),
        "softmax over the wrong dimension": lambda q, k, v: attention(q, k, v, dim=-2),
        "hides the current position": lambda q, k, v: attention(q, k, v, diagonal=-1),
        "also sees position t + 1": lambda q, k, v: attention(q, k, v, diagonal=1),
        "scaled by 1/hs": lambda q, k, v: attention(q / q.shape[-1] ** 0.5, k, v),
        "expected (B, T, hs) = (2, 6, 8)": lambda q, k, v: attention(q, k, v).transpose(1, 2),
        "the future leaks: changing position 5 changes the output at position 3":
            lambda q, k, v: attention(q, k, v, diagonal=2),
        "should return a torch.Tensor": lambda q, k, v: attention(q, k, v).tolist(),
        "read T and hs from the inputs": lambda q, k, v: attention(q, k, v, scale=False) if q.shape[-1] == 16
        else attention(q, k, v),
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_attention, fn, words)


def test_check_attention_three_mistakes_have_distinct_messages(capsys):
    lines = set()
    for kw in (dict(causal=False), dict(scale=False), dict(dim=-2)):
        assert not ex.check_attention(lambda q, k, v: attention(q, k, v, **kw))
        lines.add(said(capsys))
    assert len(lines) == 3


# --- chapter 03 ---------------------------------------------------------------------------


def test_split_heads(capsys):
    assert_not_tried(capsys, ex.check_split_heads, lambda x, n: None)
    assert_correct(capsys, ex.check_split_heads, lambda x, n: x.view(x.size(0), x.size(1), n, -1).transpose(1, 2))
    wrong = {
        "now transpose(1, 2)": lambda x, n: x.view(x.size(0), x.size(1), n, -1),
        "wrong layout": lambda x, n: x.view(x.size(0), n, x.size(1), -1),
        "expected (B, n_head, T, hs) = (2, 3, 5, 4)": lambda x, n: x,
        "not x's channels": lambda x, n: x.view(x.size(0), x.size(1), -1, n).permute(0, 3, 1, 2),
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_split_heads, fn, words)


def test_merge_heads(capsys):
    assert_not_tried(capsys, ex.check_merge_heads, lambda y: None)
    assert_correct(capsys, ex.check_merge_heads, lambda y: y.transpose(1, 2).reshape(y.size(0), y.size(2), -1))
    wrong = {
        "reshape it to (B, T, n_head * hs)": lambda y: y.transpose(1, 2),
        "wrong layout": lambda y: y.reshape(y.size(0), y.size(2), -1),
        "expected (B, T, n_head * hs) = (2, 5, 12)": lambda y: y,
        "not the heads side by side": lambda y: y.permute(0, 2, 3, 1).reshape(y.size(0), y.size(2), -1),
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_merge_heads, fn, words)


def test_block_params(capsys):
    C = 32
    right = 3 * C * C + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C) + 2 * 2 * C
    assert right == 12_608
    assert_not_tried(capsys, ex.check_block_params, None)
    assert_correct(capsys, ex.check_block_params, right)
    assert_correct(capsys, ex.check_block_params, float(right))
    wrong = {
        12 * C * C: "weight matrices only",
        right - 4 * C: "add the two LayerNorms",
        right + 3 * C: "no bias",
        right + 1000: "too high",
        "12608": "whole number",
    }
    for answer, words in wrong.items():
        assert_wrong(capsys, ex.check_block_params, answer, words)


# --- chapter 04 ---------------------------------------------------------------------------


def test_layer_norm(capsys):
    def norm(x, eps, unbiased=False, dim=-1):
        return (x - x.mean(dim, keepdim=True)) / torch.sqrt(x.var(dim, keepdim=True, unbiased=unbiased) + eps)

    assert_not_tried(capsys, ex.check_layer_norm, lambda x, w, b, eps: None)
    assert_correct(capsys, ex.check_layer_norm, lambda x, w, b, eps: norm(x, eps) * w + b)
    assert_correct(capsys, ex.check_layer_norm, lambda x, w, b, eps: F.layer_norm(x, x.shape[-1:], w, b, eps))
    wrong = {
        "add eps inside the square root": lambda x, w, b, eps: norm(x, 0.0) * w + b,
        "forgot the learned gain and bias": lambda x, w, b, eps: norm(x, eps),
        "unbiased variance": lambda x, w, b, eps: norm(x, eps, unbiased=True) * w + b,
        "sqrt(var + eps), not std + eps":
            lambda x, w, b, eps: (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True, unbiased=False) + eps) * w + b,
        "wrong dimension": lambda x, w, b, eps: norm(x, eps, dim=1) * w + b,
        "expected the shape of x": lambda x, w, b, eps: norm(x, eps)[0],
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_layer_norm, fn, words)


def test_gpt_params(capsys):
    def count(V, Bs, L, C):
        return V * C + Bs * C + L * (12 * C * C + 2 * C) + C

    assert_not_tried(capsys, ex.check_gpt_params, lambda V, Bs, L, C: None)
    assert_correct(capsys, ex.check_gpt_params, count)
    wrong = {
        "position embeddings": lambda V, Bs, L, C: count(V, Bs, L, C) - Bs * C,
        "tied weights": lambda V, Bs, L, C: count(V, Bs, L, C) + V * C,
        "final LayerNorm": lambda V, Bs, L, C: count(V, Bs, L, C) - C,
        "no biases": lambda V, Bs, L, C: count(V, Bs, L, C) + L * 11 * C + C,
        "too low": lambda V, Bs, L, C: count(V, Bs, L, C) - 7,
        "whole number": lambda V, Bs, L, C: "lots",
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_gpt_params, fn, words)


def test_c_proj_std(capsys):
    assert_not_tried(capsys, ex.check_c_proj_std, lambda n_layer: None)
    assert_correct(capsys, ex.check_c_proj_std, lambda n_layer: 0.02 / math.sqrt(2 * n_layer))
    wrong = {
        "TWICE": lambda n_layer: 0.02 / math.sqrt(n_layer),
        "square root": lambda n_layer: 0.02 / (2 * n_layer),
        "unscaled init": lambda n_layer: 0.02,
        "return a number": lambda n_layer: "0.02",
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_c_proj_std, fn, words)


# --- chapter 05 ---------------------------------------------------------------------------


def test_top_k(capsys):
    def top_k(logits, k, keep=None):
        kth = logits.topk(keep or k, dim=-1).values[:, -1:]
        return logits.masked_fill(logits < kth, float("-inf"))

    assert_not_tried(capsys, ex.check_top_k, lambda logits, k: None)
    assert_correct(capsys, ex.check_top_k, top_k)
    wrong = {
        "set them to -inf": lambda lg, k: lg.masked_fill(lg < lg.topk(k, -1).values[:, -1:], 0.0),
        "keeps 4 logits, expected k = 3": lambda lg, k: top_k(lg, k, keep=k + 1),
        "keeps 2 logits, expected k = 3": lambda lg, k: top_k(lg, k, keep=k - 1),
        "not the k largest": lambda lg, k: lg.masked_fill(lg > lg.topk(k, largest=False).values[:, -1:], float("-inf")),
        "values changed": lambda lg, k: top_k(lg, k) * 2,
        "expected the logits' shape": lambda lg, k: lg.topk(k, dim=-1).values,
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_top_k, fn, words)


def test_top_p(capsys):
    def top_p(probs, p, crossing=True, renorm=True, descending=True):
        sorted_p, order = probs.sort(dim=-1, descending=descending)
        before = sorted_p.cumsum(-1) - (sorted_p if crossing else 0)
        sorted_p = sorted_p.masked_fill(before >= p if crossing else before > p, 0.0)
        out = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return out / out.sum(-1, keepdim=True) if renorm else out

    assert_not_tried(capsys, ex.check_top_p, lambda probs, p: None)
    assert_correct(capsys, ex.check_top_p, top_p)
    wrong = {
        "one too few": lambda probs, p: top_p(probs, p, crossing=False),
        "divide by the kept mass": lambda probs, p: top_p(probs, p, renorm=False),
        "sort descending": lambda probs, p: top_p(probs, p, descending=False),
        "expected the probabilities' shape": lambda probs, p: probs[0],
    }
    for words, fn in wrong.items():
        assert_wrong(capsys, ex.check_top_p, fn, words)


class GoodCache:
    def __init__(self, block_size):
        self.block_size, self.k, self.v = block_size, None, None

    def append(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)[:, :, -self.block_size:]
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)[:, :, -self.block_size:]
        return self.k, self.v


class ForgetfulCache(GoodCache):
    def append(self, k, v):
        return k, v


class NeverRolls(GoodCache):
    def append(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


class DropsNewest(GoodCache):
    def append(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)[:, :, : self.block_size]
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)[:, :, : self.block_size]
        return self.k, self.v


class WrongDim(GoodCache):
    def append(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=1)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=1)
        return self.k, self.v


class SharedState:
    ks, vs = [], []

    def __init__(self, block_size):
        self.block_size = block_size

    def append(self, k, v):
        self.ks.append(k)
        self.vs.append(v)
        return (torch.cat(self.ks[-self.block_size:], dim=2), torch.cat(self.vs[-self.block_size:], dim=2))


def test_kv_cache(capsys):
    class Skeleton:   # the notebook's "your turn" cell as it stands
        def __init__(self, block_size):
            self.block_size = block_size

        def append(self, k, v):
            return None

    assert_not_tried(capsys, ex.check_kv_cache, Skeleton)
    assert_correct(capsys, ex.check_kv_cache, GoodCache)
    wrong = {
        ForgetfulCache: "forgets what it held",
        NeverRolls: "more than block_size",
        DropsNewest: "drops the NEWEST",
        WrongDim: "concatenate along dim 2",
        SharedState: "not in the class",
    }
    for cls, words in wrong.items():
        assert_wrong(capsys, ex.check_kv_cache, cls, words)


@pytest.mark.parametrize("name", ["check_attention", "check_top_k", "check_layer_norm"])
def test_checkers_keep_their_names_and_docs(name):
    check = getattr(ex, name)
    assert check.__name__ == name and check.__doc__


# --- the notebooks: at least three checked exercises, "not tried yet" in the chapters, "correct" in solutions ---

import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ["01_bigram", "02_single_head_attention", "03_multi_head_attention", "04_gpt", "05_generation"]
CHECK_CALL = re.compile(r"gfs\.exercises\.(check_\w+)\(")


def check_cells(path: Path) -> list[tuple[str, str, str]]:
    """(checker name, cell source, committed output) for every code cell that calls a checker."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and CHECK_CALL.search(src):
            out = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
            found.append((CHECK_CALL.search(src).group(1), src, out))
    return found


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_has_three_checked_exercises_not_yet_tried(name):
    cells = check_cells(ROOT / "notebooks" / f"{name}.ipynb")
    assert len(cells) >= 3, "at least three checked exercises per chapter"
    for check, _, out in cells:
        assert hasattr(ex, check), f"{check} is not in gfs.exercises"
        assert out.startswith("not tried yet: "), f"the committed {name} shows a tried answer for {check}: {out!r}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_solutions_answer_every_exercise_correctly(name):
    chapter = [check for check, _, _ in check_cells(ROOT / "notebooks" / f"{name}.ipynb")]
    solved = check_cells(ROOT / "solutions" / f"{name}.ipynb")
    assert sorted(check for check, _, _ in solved) == sorted(chapter), "one solved check per exercise"
    for check, src, out in solved:
        assert src.startswith("# NBVAL_CHECK_OUTPUT"), f"nbval must compare the output of {check}"
        assert out.startswith("correct: "), f"{check} in solutions/{name}.ipynb says {out!r}"
