"""The byte-level BPE tokenizer: checked against a slow textbook BPE written here, plus round trips,
special tokens, plain-data and file forms, and GPT-2's file format (all offline)."""

import io
import json
import random
import sys

import pytest
import regex
import torch

import gpt_from_scratch as gfs
from gpt_from_scratch.bpe import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    TokenizerError,
    gpt2_bytes_to_unicode,
)

PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN, "none": None}

TRICKY = [
    "",
    "a",
    "Hello, world! I'm here; you're THERE, they'LL see.",
    "emoji 🤗🚀👩‍👩‍👧 and flags 🇫🇷🇯🇵",
    "combining: e\u0301 a\u0300\u0316 Zalgo Z\u0351\u036b\u0343",
    "한국어 텍스트: 안녕하세요, 세계!",
    "  leading, trailing  \t\t and   runs of     whitespace   ",
    "windows\r\nline\r\nends\r\n\r\n and \n\n\n newlines",
    "numbers 1234567890 3.14159 1,000,000",
    "aaaaaaaaaaaaaaabababababababab  xyzxyzxyz",
    "\x00\x01\x7f\u00a0\u00ad nul, DEL, nbsp, soft hyphen",
]


# --------------------------------------------------------------------------- #
# The textbook BPE, written independently and slowly
# --------------------------------------------------------------------------- #
def slow_merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def chunks_of(text, pattern):
    return regex.findall(pattern, text) if pattern is not None else [text]


def textbook_train(text, vocab_size, pattern):
    """Recount every pair of every chunk after each merge; ties go to the pair seen first."""
    ids = [list(c.encode("utf-8")) for c in chunks_of(text, pattern)]
    merges = {}
    for k in range(vocab_size - 256):
        counts = {}
        for chunk in ids:
            for pair in zip(chunk, chunk[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = max(counts, key=counts.get)  # the first of the most frequent, in text order
        merges[pair] = 256 + k
        ids = [slow_merge(chunk, pair, 256 + k) for chunk in ids]
    return merges


def textbook_encode(text, merges, pattern):
    """Repeatedly merge the pair with the lowest rank, inside each chunk."""
    rank = {pair: r for r, pair in enumerate(merges)}
    out = []
    for chunk in chunks_of(text, pattern):
        ids = list(chunk.encode("utf-8"))
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: rank.get(p, float("inf")))
            if pair not in rank:
                break
            ids = slow_merge(ids, pair, merges[pair])
        out.extend(ids)
    return out


@pytest.fixture(scope="module")
def excerpt(text):
    return text[:20_000]


@pytest.fixture(scope="module")
def trained(excerpt):
    """One tokenizer per pattern, trained on ~20k characters of Tiny Shakespeare."""
    return {name: BPETokenizer.train(excerpt, 320, pattern=p) for name, p in PATTERNS.items()}


# --------------------------------------------------------------------------- #
# Same merges and ids as the textbook
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", PATTERNS)
def test_train_and_encode_match_textbook_on_shakespeare(name, excerpt, trained):
    pattern = PATTERNS[name]
    tok = trained[name]
    merges = textbook_train(excerpt, 320, pattern)
    assert tok.merges == merges
    assert list(tok.merges.values()) == list(range(256, 320))
    held_out = excerpt[-3000:] + " Unseen words: zebra quokka 2024."
    assert tok.encode(held_out) == textbook_encode(held_out, merges, pattern)
    assert tok.encode(excerpt[:5000]) == textbook_encode(excerpt[:5000], merges, pattern)


@pytest.mark.parametrize("name", PATTERNS)
def test_train_matches_textbook_on_small_and_repetitive_texts(name):
    """Runs of one token, overlapping pairs and many ties: the cases incremental counting gets wrong."""
    pattern = PATTERNS[name]
    rng = random.Random(0)
    texts = TRICKY[2:] + ["".join(rng.choice("ab a\n") for _ in range(300)) for _ in range(4)]
    texts += ["aaaaaaaaaaaaaaaa aaaaaaa aaa", "abababababa bababab abab", "x"]
    for s in texts:
        tok = BPETokenizer.train(s, 256 + 40, pattern=pattern)
        merges = textbook_train(s, 256 + 40, pattern)
        assert tok.merges == merges, s
        assert tok.encode(s) == textbook_encode(s, merges, pattern), s
        assert tok.decode(tok.encode(s)) == s


def test_ties_go_to_the_pair_seen_first():
    # "cd" and "ab" both occur twice; "cd" comes first in the text.
    tok = BPETokenizer.train("cdab cdab", 257, pattern=None)
    assert tok.merges == {(ord("c"), ord("d")): 256}


def test_doc_example_and_vocab():
    tok = BPETokenizer.train("aaabdaaabac", 259, pattern=None)
    assert tok.merges == {(97, 97): 256, (256, 97): 257, (257, 98): 258}
    assert tok.vocab[256] == b"aa" and tok.vocab[257] == b"aaa" and tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.vocab_size == 259 == len(tok.vocab)
    assert all(tok.vocab[i] == bytes([i]) for i in range(256))


def test_train_stops_when_no_pair_is_left_and_validates():
    tok = BPETokenizer.train("ab", 1000, pattern=None)
    assert tok.merges == {(97, 98): 256} and tok.vocab_size == 257
    assert BPETokenizer.train("hello", 256).merges == {}
    assert BPETokenizer.train("", 300).encode("hi") == [104, 105]
    with pytest.raises(ValueError, match="at least 256"):
        BPETokenizer.train("hello", 100)
    with pytest.raises(TypeError):
        BPETokenizer.train(b"hello", 300)


def test_split_patterns():
    assert regex.findall(GPT2_SPLIT_PATTERN, "Hello world's  123 !!\n\n") == [
        "Hello", " world", "'s", " ", " 123", " !!", "\n\n"]
    assert regex.findall(GPT2_SPLIT_PATTERN, "I'LL go!\r\n\r\nok") == [
        "I", "'", "LL", " go", "!", "\r\n\r", "\n", "ok"]
    assert regex.findall(GPT4_SPLIT_PATTERN, "I'LL  go!\r\n\r\nok 123456 you're") == [
        "I", "'LL", " ", " go", "!\r\n\r\n", "ok", " ", "123", "456", " you", "'re"]
    assert gfs.BPETokenizer is BPETokenizer
    assert gfs.GPT2_SPLIT_PATTERN == GPT2_SPLIT_PATTERN and gfs.GPT4_SPLIT_PATTERN == GPT4_SPLIT_PATTERN


def test_long_piece_encoding_matches_textbook(excerpt, trained):
    """pattern=None encodes one long piece merge by merge: the same ids as the textbook rule."""
    tok = trained["none"]
    assert tok.encode(excerpt) == textbook_encode(excerpt, tok.merges, None)


# --------------------------------------------------------------------------- #
# Round trips and decoding
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", PATTERNS)
def test_round_trips(name, trained):
    tok = trained[name]
    # a tokenizer with merges inside emoji and hangul, too
    own = BPETokenizer.train("".join(TRICKY) * 3, 256 + 100, pattern=PATTERNS[name])
    rng = random.Random(1)
    randoms = ["".join(chr(rng.choice([rng.randrange(0x20, 0x250), rng.randrange(0x250, 0xD800),
                                       rng.randrange(0xE000, 0x110000)])) for _ in range(50))
               for _ in range(20)]
    for t in (tok, own):
        for s in TRICKY + randoms:
            ids = t.encode(s)
            assert all(isinstance(i, int) and 0 <= i < t.vocab_size for i in ids)
            assert t.decode(ids) == s
            assert t.decode(torch.tensor(ids, dtype=torch.long)) == s
    assert own.encode("🤗") != list("🤗".encode("utf-8"))  # it did learn multi-byte tokens
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_decode_invalid_utf8_and_bad_ids(trained):
    tok = trained["gpt2"]
    rocket = tok.encode("🚀")
    assert len(rocket) >= 2
    assert tok.decode(rocket[:1]) == "\ufffd"  # cut inside a character: replaced, no exception
    assert tok.decode_bytes(rocket) == "🚀".encode("utf-8")
    assert tok.decode(torch.tensor(104)) == "h"
    with pytest.raises(ValueError, match="not in this tokenizer's vocabulary"):
        tok.decode([tok.vocab_size + 5])
    with pytest.raises(ValueError, match="1-D"):
        tok.decode(torch.zeros(2, 2, dtype=torch.long))


# --------------------------------------------------------------------------- #
# Special tokens
# --------------------------------------------------------------------------- #
def test_special_tokens(trained):
    tok = BPETokenizer.from_dict(trained["gpt2"].to_dict())
    eot, pad = tok.vocab_size, tok.vocab_size + 1
    tok.register_special_tokens({"<|endoftext|>": eot, "<|pad|>": pad})
    assert tok.vocab_size == 256 + 64 + 2
    s = "Hello there.<|endoftext|>General Kenobi!"
    plain = tok.encode("Hello there.") + [eot] + tok.encode("General Kenobi!")

    with pytest.raises(ValueError, match="allowed_special") as e:
        tok.encode(s)  # "none_raise", the default
    assert "\n" not in str(e.value) and "<|endoftext|>" in str(e.value)
    assert tok.encode(s, allowed_special="all") == plain
    assert tok.encode(s, allowed_special={"<|endoftext|>"}) == plain
    ordinary = tok.encode(s, allowed_special="none")
    assert eot not in ordinary and ordinary == tok.encode_ordinary(s)
    assert tok.decode(ordinary) == s and tok.decode(plain) == s

    both = "<|pad|><|endoftext|>x<|pad|>"
    assert tok.encode(both, allowed_special="all") == [pad, eot] + tok.encode("x") + [pad]
    with pytest.raises(ValueError, match="<|pad|>"):
        tok.encode(both, allowed_special={"<|endoftext|>"})  # a special token that is not allowed
    with pytest.raises(ValueError, match="register_special_tokens"):
        tok.encode("x", allowed_special={"<|unknown|>"})
    with pytest.raises(ValueError, match="allowed_special must be"):
        tok.encode("x", allowed_special="some")
    with pytest.raises(ValueError, match="already taken"):
        tok.register_special_tokens({"<|other|>": 300})
    tok.register_special_tokens({"<|endoftext|>": eot})  # registering again is fine


# --------------------------------------------------------------------------- #
# Plain data and files
# --------------------------------------------------------------------------- #
def _through_torch(d):
    buf = io.BytesIO()
    torch.save({"tokenizer": d}, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)["tokenizer"]


@pytest.mark.parametrize("name", PATTERNS)
def test_to_dict_from_dict_and_save_load(name, trained, excerpt, tmp_path):
    tok = BPETokenizer.from_dict(trained[name].to_dict())
    tok.register_special_tokens({"<|endoftext|>": tok.vocab_size})
    d = tok.to_dict()
    assert d["type"] == "bpe" and d["pattern"] == PATTERNS[name]
    s = excerpt[:2000] + "<|endoftext|>é🤗"
    for again in (BPETokenizer.from_dict(_through_torch(d)), _save_load(tok, tmp_path / f"{name}.json")):
        assert again == tok
        assert again.merges == tok.merges and list(again.merges) == list(tok.merges)
        assert again.vocab == tok.vocab and again.special_tokens == tok.special_tokens
        assert again.encode(s, allowed_special="all") == tok.encode(s, allowed_special="all")


def _save_load(tok, path):
    tok.save(path)
    json.loads(path.read_text(encoding="utf-8"))  # plain JSON
    return BPETokenizer.load(path)


def test_bad_data_and_files(tmp_path):
    with pytest.raises(ValueError, match="'bpe'"):
        BPETokenizer.from_dict({"type": "char", "chars": ["a"]})
    with pytest.raises(ValueError, match="merges"):
        BPETokenizer.from_dict({"type": "bpe", "merges": [[1, 2]]})
    with pytest.raises(ValueError, match="no byte or earlier merge"):
        BPETokenizer.from_dict({"type": "bpe", "merges": [[300, 1, 256]]})
    with pytest.raises(TokenizerError, match="BPETokenizer.save"):
        BPETokenizer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(TokenizerError, match="not a BPETokenizer JSON file"):
        BPETokenizer.load(tmp_path / "bad.json")


# --------------------------------------------------------------------------- #
# GPT-2's format
# --------------------------------------------------------------------------- #
def test_gpt2_bytes_to_unicode():
    m = gpt2_bytes_to_unicode()
    assert sorted(m) == list(range(256)) and len(set(m.values())) == 256
    assert m[ord("a")] == "a" and m[ord("!")] == "!" and m[0xFF] == "ÿ"
    assert m[32] == "Ġ" and m[10] == "Ċ" and m[0] == chr(256) and m[0xAD] == chr(256 + 67)
    assert all(c.isprintable() and not c.isspace() for c in m.values())


def _write_gpt2_folder(folder, tok, new_id):
    """Write `tok` the way GPT-2's files are written, with ids renumbered by `new_id`."""
    b2u = gpt2_bytes_to_unicode()
    specials = set(tok.special_tokens.values())
    as_text = {i: "".join(b2u[b] for b in tok.vocab[i]) for i in tok.vocab if i not in specials}
    encoder = {as_text[i]: new_id[i] for i in as_text}
    encoder.update({name: new_id[i] for name, i in tok.special_tokens.items()})
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{as_text[a]} {as_text[b]}" for a, b in tok.merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_from_pretrained_local_folder_gives_the_files_ids(trained, excerpt, tmp_path):
    tok = BPETokenizer.from_dict(trained["gpt2"].to_dict())
    tok.register_special_tokens({"<|endoftext|>": tok.vocab_size})
    ids = list(range(tok.vocab_size))
    random.Random(0).shuffle(ids)  # GPT-2's ids are not ours: renumber everything
    new_id = dict(enumerate(ids))
    _write_gpt2_folder(tmp_path / "gpt2-like", tok, new_id)

    loaded = BPETokenizer.from_pretrained(tmp_path / "gpt2-like")
    assert loaded.pattern == GPT2_SPLIT_PATTERN
    assert loaded.special_tokens == {"<|endoftext|>": new_id[tok.special_tokens["<|endoftext|>"]]}
    assert loaded.byte_ids == [new_id[b] for b in range(256)]
    for s in (excerpt[-4000:], *TRICKY, "a<|endoftext|>b"):
        expected = [new_id[i] for i in tok.encode(s, allowed_special="all")]
        assert loaded.encode(s, allowed_special="all") == expected
        assert loaded.decode(expected) == s
    again = BPETokenizer.from_dict(_through_torch(loaded.to_dict()))
    assert again == loaded and again.encode(excerpt[:1000]) == loaded.encode(excerpt[:1000])


def test_from_pretrained_hand_made_three_merges(tmp_path):
    """GPT-2's base ids: the 188 printable bytes first (so "!" is 0), then the others (the space is 220)."""
    b2u = gpt2_bytes_to_unicode()
    order = sorted(range(256), key=lambda b: ord(b2u[b]))
    encoder = {b2u[b]: i for i, b in enumerate(order)}
    encoder.update({"Ġt": 256, "Ġthe": 257, "he": 258, "<|endoftext|>": 259})
    folder = tmp_path / "three"
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(encoder), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nh e\nĠ t\nĠt he\n", encoding="utf-8")

    tok = BPETokenizer.from_pretrained(str(folder))
    assert tok.byte_ids[32] == 220 and tok.byte_ids[ord("!")] == 0 and tok.byte_ids[ord("e")] == 68
    assert tok.merges == {(71, 68): 258, (220, 83): 256, (256, 258): 257}  # (h, e), (Ġ, t), (Ġt, he)
    assert tok.vocab[257] == b" the"
    # " the": h+e first (rank 0), then Ġ+t, then Ġt+he. " hen": only h+e applies.
    assert tok.encode(" the hen") == [257, 220, 258, 77]
    assert tok.encode("the<|endoftext|>", allowed_special="all") == [83, 258, 259]
    assert tok.decode([257, 220, 258, 77, 259]) == " the hen<|endoftext|>"
    assert tok.vocab_size == 260


HUB_ONLY = "HuggingFaceTB/SmolLM2-135M"  # a tokenizer that does not ship with the package


def test_from_pretrained_errors_are_one_clear_line(monkeypatch, tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "vocab.json").write_text("{}")
    with pytest.raises(TokenizerError, match="no merges.txt") as e:
        BPETokenizer.from_pretrained(tmp_path / "half")
    assert "\n" not in str(e.value)
    with pytest.raises(TokenizerError, match="no folder"):
        BPETokenizer.from_pretrained(tmp_path / "absent")

    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection.")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(TokenizerError) as e:
        BPETokenizer.from_pretrained(HUB_ONLY)
    msg = str(e.value)
    assert "\n" not in msg and "local folder" in msg and "internet" in msg

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if it were not installed
    with pytest.raises(TokenizerError) as e:
        BPETokenizer.from_pretrained(HUB_ONLY)
    msg = str(e.value)
    assert "\n" not in msg and "pip install huggingface_hub" in msg and "local folder" in msg


def test_from_pretrained_offline_with_an_empty_cache(monkeypatch, tmp_path):
    """The real huggingface_hub in offline mode, with nothing cached: our one-line error, no network."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(TokenizerError, match="pass their folder") as e:
        BPETokenizer.from_pretrained(HUB_ONLY)
    assert "\n" not in str(e.value)


def test_from_pretrained_gpt2_needs_no_network(monkeypatch):
    """GPT-2's vocabulary ships with the package: every size gives the same tokenizer, with no download."""
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("GPT-2's tokenizer must not be downloaded")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    small, medium = BPETokenizer.from_pretrained("gpt2"), BPETokenizer.from_pretrained("gpt2-medium")
    assert small == medium and small.encode("Hello world") == [15496, 995]
    assert small.special_tokens == {"<|endoftext|>": 50256} and small.vocab_size == 50257


@pytest.mark.parametrize("name", PATTERNS)
def test_the_plain_and_the_fast_paths_agree(name, excerpt):
    """bpe.py's plain algorithm and bpe_fast.py's machinery: identical merges and identical ids."""
    from gpt_from_scratch import bpe, bpe_fast

    pattern = PATTERNS[name]
    text = excerpt[:6000] + TRICKY[3] + TRICKY[9]
    plain = BPETokenizer.train(text, 300, pattern=pattern, fast=False)
    fast = BPETokenizer.train(text, 300, pattern=pattern)
    assert plain.merges == fast.merges and len(fast.merges) == 44
    encoder = bpe_fast.PieceEncoder(fast.merges, fast.byte_ids)
    for piece in chunks_of(excerpt[-4000:] + TRICKY[4] + TRICKY[7], pattern):
        ids = list(piece.encode("utf-8"))
        assert encoder.encode(piece) == bpe.encode_piece(ids, fast.merges), piece
        assert bpe_fast.merge(ids, (ids[0], ids[-1]), 999) == bpe.merge(ids, (ids[0], ids[-1]), 999)
