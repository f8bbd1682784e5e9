"""Tokenizers: what they all share (`Tokenizer`), and the character-level one.

`Tokenizer` is the small base class of `CharTokenizer` (here) and
`BPETokenizer` (bpe.py): text to ids and back, a vocabulary size, and a
plain dict (``to_dict`` / ``from_dict``) that records its `kind`, so it can
live inside a checkpoint that ``torch.load(..., weights_only=True)`` reads.

`CharTokenizer`: every distinct character is one token. The vocabulary is
the sorted set of characters in the training text (65 characters for Tiny
Shakespeare).
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

__all__ = ["CharTokenizer", "Tokenizer"]


class Tokenizer:
    """Text to token ids and back. Subclasses set `kind` and write encode, `decode_list`,
    vocab_size, to_dict and from_dict; decoding a tensor is written once, here."""

    kind: ClassVar[str] = ""  # to_dict()["type"]: checkpoints rebuild the right class from it
    unit: ClassVar[str] = "token"  # what one id stands for, in words: losses are "nats per <unit>"

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode_list(self, ids: list[int]) -> str:
        """The text of a plain list of ids."""
        raise NotImplementedError

    def decode(self, ids: Any) -> str:
        """Turn token ids (a list of ints, or a 1-D tensor or array) back into a string."""
        return self.decode_list(self.id_list(ids))

    @staticmethod
    def id_list(ids: Any) -> list[int]:
        """A plain list of ints from a list, a 1-D (or 0-D) tensor or a numpy array."""
        if hasattr(ids, "tolist"):  # torch.Tensor / numpy array
            if getattr(ids, "ndim", 1) > 1:
                raise ValueError(f"decode expects a 1-D sequence of ids, got shape {tuple(ids.shape)}")
            ids = ids.tolist()
            return [ids] if isinstance(ids, int) else ids  # a 0-d tensor is one id
        return [int(i) for i in ids]

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.vocab_size

    def to_dict(self) -> dict:
        """Plain data with "type": kind, safe for ``torch.load(weights_only=True)``."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: Any) -> "Tokenizer":
        raise NotImplementedError


class CharTokenizer(Tokenizer):
    """Maps characters to integer ids and back.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.chars
    ['e', 'h', 'l', 'o']
    >>> tok.encode("hole")
    [1, 3, 2, 0]
    >>> tok.decode([1, 3, 2, 0])
    'hole'
    """

    kind = "char"
    unit = "character"

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(
                    f"a CharTokenizer vocabulary holds single characters, got {c!r}"
                )
        self.chars: list[str] = sorted(set(chars))
        if not self.chars:
            raise ValueError("a CharTokenizer needs at least one character")
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}
        self.itos: dict[int, str] = {i: c for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """Build the vocabulary from every distinct character in ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"from_text expects a str, got {type(text).__name__}")
        if not text:
            raise ValueError("cannot build a tokenizer from empty text")
        return cls(set(text))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> list[int]:
        """Turn a string into a list of token ids."""
        stoi = self.stoi
        try:
            return [stoi[c] for c in s]
        except KeyError:
            unknown = list(dict.fromkeys(c for c in s if c not in stoi))
            shown = ", ".join(repr(c) for c in unknown)
            raise ValueError(
                f"characters not in the vocabulary: {shown} "
                f"(the model knows {self.vocab_size} characters)"
            ) from None

    def decode_list(self, ids: list[int]) -> str:
        itos = self.itos
        try:
            return "".join(itos[i] for i in ids)
        except KeyError as e:
            raise ValueError(
                f"token id {e.args[0]} is out of range for a vocabulary of "
                f"{self.vocab_size} characters"
            ) from None

    def to_dict(self) -> dict:
        """Plain-data form, safe for ``torch.load(weights_only=True)``."""
        return {"type": self.kind, "chars": list(self.chars)}

    @classmethod
    def from_dict(cls, d: Any) -> "CharTokenizer":
        """Rebuild a tokenizer from ``to_dict()`` output."""
        if not isinstance(d, dict):
            raise ValueError(
                f"tokenizer data must be a dict, got {type(d).__name__}"
            )
        if d.get("type", "char") != "char":
            raise ValueError(f"unknown tokenizer type {d.get('type')!r}, expected 'char'")
        chars = d.get("chars")
        if not isinstance(chars, (list, tuple)) or not chars:
            raise ValueError("tokenizer data needs a non-empty 'chars' list")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("tokenizer 'chars' must be single-character strings")
        if len(set(chars)) != len(chars):
            raise ValueError("tokenizer 'chars' contains duplicates")
        return cls(chars)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CharTokenizer):
            return NotImplemented
        return self.chars == other.chars

    def __hash__(self) -> int:
        return hash(tuple(self.chars))

    def __repr__(self) -> str:
        preview = "".join(self.chars[:20])
        more = "..." if self.vocab_size > 20 else ""
        return f"CharTokenizer(vocab_size={self.vocab_size}, chars={preview!r}{more})"

