"""Other people's tokenizers in our BPETokenizer: GPT-2's shipped ranks (against tiktoken) and SmolLM2's
(from its GGUF metadata and from a tokenizer.json, against transformers' tokenizers). Exact ids, always.
"""

from __future__ import annotations

import hashlib

import pytest

import gpt_from_scratch as gfs
from gpt_from_scratch.tokenizer_files import (
    GPT2_RANKS_FILE, SMOLLM2_SPLIT_PATTERN, gpt2_tokenizer, merges_from_ranks, tokenizer_from_tokenizer_json,
)
from helpers import smollm2_gguf

VARIED = [
    "Hello world",
    "ROMEO:\nBut soft, what light through yonder window breaks?\n\n\nJULIET:\nAy me!",
    "In 1597, 3 printings; 12345 + 678 = 13023. Call 555-0199 at 10:30pm.",
    "a  1, b   22,\t3\n 4 \n\n5",
    "Tabs\tand   spaces   \n  trailing   ",
    "café naïve résumé, 東京タワー, Здравствуй, مرحبا, 🙂🎭 and ½ ² ٣ Ⅷ",
    "don't, I'll, we've, they're, she'd, I'm, it's, DON'T, O'er",
    "   leading spaces, and ... punctuation!!! (brackets) [x] {y} <z> --- ___",
    "\x00\x04 control \x7f bytes",
]


# --- GPT-2, offline --------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2():
    return gpt2_tokenizer()


@pytest.fixture(scope="module")
def tiktoken_gpt2():
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", "")  # read the file itself, cache nothing
        ranks = load_tiktoken_bpe(str(GPT2_RANKS_FILE))
    return tiktoken.Encoding("gpt2-shipped", pat_str=gfs.GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def test_the_shipped_ranks_are_gpt2s_with_their_licence():
    assert hashlib.sha256(GPT2_RANKS_FILE.read_bytes()).hexdigest() == (
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930")
    notice = (GPT2_RANKS_FILE.parent / "LICENSE-gpt2.txt").read_text()
    assert "MIT License" in notice and "Copyright (c) 2019 OpenAI" in notice


def test_gpt2_ids_equal_tiktoken(gpt2, tiktoken_gpt2, text):
    assert gpt2.encode("Hello world") == [15496, 995]
    assert len(gpt2.merges) == 50000 and gpt2.vocab_size == 50257
    for s in [*VARIED, text[:30000], text[-5000:]]:
        ids = tiktoken_gpt2.encode_ordinary(s)
        assert gpt2.encode(s) == ids, s[:60]
        assert gpt2.decode(ids) == s
    both = "the end<|endoftext|>A new text"
    assert gpt2.encode(both, allowed_special="all") == tiktoken_gpt2.encode(both, allowed_special="all")


def test_merges_follow_from_ranks():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4, b"bc": 5, b"abcbc": 6}
    # "abc": the pair (a, b) ranks first, then (ab, c). "abcbc" = abc + bc (bc only ranks after abc).
    assert merges_from_ranks(ranks) == {(0, 1): 3, (3, 2): 4, (1, 2): 5, (4, 5): 6}


# --- SmolLM2 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    return gfs.BPETokenizer.from_pretrained(smollm2_gguf())  # the metadata only, no weights


@pytest.fixture(scope="module")
def hf_smollm2():
    """transformers' tokenizer from the same GGUF file, as it builds it, and with SmolLM2's own pre-tokenizer.

    SmolLM2's tokenizer.json cuts off every digit before GPT-2's regex (Digits(individual_digits) then
    ByteLevel); the GGUF names that "smollm". transformers' GGUF loader does not know that name and falls
    back to GPT-2's regex alone, so we also give it the pre-tokenizer of SmolLM2's tokenizer.json.
    """
    from tokenizers import Tokenizer, pre_tokenizers
    from transformers import AutoTokenizer

    path = smollm2_gguf()
    as_built = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    own = Tokenizer.from_str(as_built.backend_tokenizer.to_str())  # a copy, then SmolLM2's pre-tokenizer
    own.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return as_built, own


def test_smollm2_from_gguf_gives_transformers_ids(smollm2, hf_smollm2, text):
    as_built, own = hf_smollm2
    assert smollm2.pattern == SMOLLM2_SPLIT_PATTERN and smollm2.vocab_size == 49152
    assert smollm2.special_tokens["<|im_start|>"] == 1 and smollm2.special_tokens["<|im_end|>"] == 2
    for s in [*VARIED, text[:20000], text[-3000:]]:
        ids = own.encode(s, add_special_tokens=False).ids
        assert smollm2.encode(s) == ids, s[:60]
        clean = "".join(ch for ch in s if ch not in "\x04")  # a byte SmolLM2 has no token for is dropped
        assert smollm2.decode(ids) == clean
    chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert smollm2.encode(chat, allowed_special="all") == own.encode(chat).ids == as_built.encode(chat)
    # Without digits the pre-tokenizers agree, and so does transformers' tokenizer as it builds it:
    assert smollm2.encode(text[:20000]) == as_built.encode(text[:20000], add_special_tokens=False)
    # With spaces before a digit they do not: the file's own rule ("smollm") keeps the spaces together.
    assert smollm2.encode("a  1") == own.encode("a  1").ids != as_built.encode("a  1")


def test_smollm2_from_tokenizer_json_is_the_same(smollm2, hf_smollm2, tmp_path, text):
    _, own = hf_smollm2
    own.save(str(tmp_path / "tokenizer.json"))  # as Hugging Face writes it
    from_json = tokenizer_from_tokenizer_json(tmp_path / "tokenizer.json")
    assert from_json.merges == smollm2.merges and from_json.special_tokens == smollm2.special_tokens
    assert from_json.pattern == SMOLLM2_SPLIT_PATTERN
    for s in [*VARIED, text[:5000]]:
        assert from_json.encode(s) == smollm2.encode(s)


def test_tokenizer_json_with_an_unknown_pre_tokenizer_is_refused(tmp_path):
    import json

    (tmp_path / "tokenizer.json").write_text(json.dumps(
        {"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}))
    with pytest.raises(gfs.bpe.TokenizerError, match="pre-tokenizer") as e:
        tokenizer_from_tokenizer_json(tmp_path / "tokenizer.json")
    assert "\n" not in str(e.value)
