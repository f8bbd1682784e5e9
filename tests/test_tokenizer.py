import random

import pytest
import torch

from gpt_from_scratch.tokenizer import CharTokenizer


@pytest.fixture(scope="module")
def tok(text):
    return CharTokenizer.from_text(text)


def test_tiny_shakespeare_vocab(tok, text):
    assert tok.vocab_size == 65
    assert len(tok) == 65
    assert tok.chars == sorted(set(text))
    assert tok.chars[0] == "\n" and tok.chars[1] == " "
    assert all(tok.stoi[c] == i and tok.itos[i] == c for i, c in enumerate(tok.chars))


def test_round_trip_whole_vocab(tok):
    everything = "".join(tok.chars)
    ids = tok.encode(everything)
    assert ids == list(range(65))
    assert tok.decode(ids) == everything


def test_round_trip_random_strings(tok):
    rng = random.Random(0)
    for _ in range(50):
        s = "".join(rng.choices(tok.chars, k=rng.randint(0, 300)))
        ids = tok.encode(s)
        assert all(isinstance(i, int) and 0 <= i < 65 for i in ids)
        assert tok.decode(ids) == s
        assert tok.decode(torch.tensor(ids, dtype=torch.long)) == s


def test_round_trip_shakespeare_excerpt(tok, text):
    excerpt = text[:5000]
    assert tok.decode(tok.encode(excerpt)) == excerpt


def test_small_example():
    t = CharTokenizer.from_text("hello")
    assert t.chars == ["e", "h", "l", "o"]
    assert t.encode("hole") == [1, 3, 2, 0]
    assert t.decode([1, 3, 2, 0]) == "hole"


def test_unknown_characters_are_named(tok):
    with pytest.raises(ValueError) as excinfo:
        tok.encode("Caf\u00e9 costs 5\u20ac, caf\u00e9!")
    msg = str(excinfo.value)
    assert "'\u00e9'" in msg and "'\u20ac'" in msg
    assert msg.count("'\u00e9'") == 1  # deduplicated
    assert "65" in msg
    assert "\n" not in msg


def test_decode_rejects_out_of_range_ids(tok):
    with pytest.raises(ValueError):
        tok.decode([0, 65])


def test_dict_round_trip(tok):
    d = tok.to_dict()
    assert d == {"type": "char", "chars": tok.chars}
    assert all(isinstance(c, str) for c in d["chars"])
    back = CharTokenizer.from_dict(d)
    assert back == tok
    assert back.encode("ROMEO:") == tok.encode("ROMEO:")
    assert CharTokenizer.from_text("abc") != tok
    assert "vocab_size=65" in repr(tok)


def test_dict_survives_weights_only_load(tok, tmp_path):
    path = tmp_path / "tok.pt"
    torch.save({"tokenizer": tok.to_dict(), "w": torch.zeros(2)}, path)
    loaded = torch.load(path, weights_only=True)
    assert CharTokenizer.from_dict(loaded["tokenizer"]) == tok


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {"type": "bpe", "chars": ["a"]},
        {"type": "char"},
        {"type": "char", "chars": []},
        {"type": "char", "chars": ["ab"]},
        {"type": "char", "chars": [1, 2]},
        {"type": "char", "chars": ["a", "a"]},
    ],
)
def test_from_dict_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        CharTokenizer.from_dict(bad)


def test_empty_text_is_rejected():
    with pytest.raises(ValueError):
        CharTokenizer.from_text("")


# --- the shared base class ---------------------------------------------------------------


def test_both_tokenizers_share_the_base_class_and_decode_tensors_alike():
    from gpt_from_scratch import BPETokenizer, Tokenizer

    text = "hello world, hello tokens"
    for tok in (CharTokenizer.from_text(text), BPETokenizer.train(text, 260, pattern=None)):
        assert isinstance(tok, Tokenizer) and len(tok) == tok.vocab_size
        ids = tok.encode("hello")
        assert tok.decode(torch.tensor(ids)) == tok.decode(ids) == "hello"
        assert tok.decode(torch.tensor(ids[0])) == tok.decode(ids[:1])  # a 0-d tensor is one id
        assert tok.to_dict()["type"] == tok.kind
        with pytest.raises(ValueError, match="1-D"):
            tok.decode(torch.tensor([ids]))


def test_checkpoints_rebuild_the_kind_they_recorded():
    from gpt_from_scratch import BPETokenizer
    from gpt_from_scratch.checkpoint import tokenizer_from_dict

    bpe = BPETokenizer.train("abababcab", 258, pattern=None)
    assert tokenizer_from_dict(bpe.to_dict()) == bpe
    char = CharTokenizer.from_text("abc")
    assert tokenizer_from_dict(char.to_dict()) == char
    assert tokenizer_from_dict({"chars": ["a", "b"]}) == CharTokenizer("ab")  # older files record no kind
    with pytest.raises(ValueError, match="unknown tokenizer type 'word'"):
        tokenizer_from_dict({"type": "word"})


def test_encode_text_does_not_rely_on_sorted_characters():
    from gpt_from_scratch.data import encode_text

    tok = CharTokenizer.from_text("hello world")
    tok.chars = tok.chars[::-1]  # ids in another order than the code points
    tok.stoi = {c: i for i, c in enumerate(tok.chars)}
    tok.itos = dict(enumerate(tok.chars))
    assert encode_text("low herd", tok).tolist() == tok.encode("low herd")
