"""A character-level tokenizer: every distinct character is one token.

The vocabulary is the sorted set of characters in the training text
(65 characters for Tiny Shakespeare). It round-trips through a plain dict
(``to_dict`` / ``from_dict``) so it can live inside a checkpoint that
``torch.load(..., weights_only=True)`` can read.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

__all__ = ["CharTokenizer", "tokenizer_from_dict"]


class CharTokenizer:
    """Maps characters to integer ids and back.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.chars
    ['e', 'h', 'l', 'o']
    >>> tok.encode("hole")
    [1, 3, 2, 0]
    >>> tok.decode([1, 3, 2, 0])
    'hole'
    """

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

    def __len__(self) -> int:
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

    def decode(self, ids: Any) -> str:
        """Turn token ids (a list of ints or a 1-D tensor) back into a string."""
        if hasattr(ids, "tolist"):  # torch.Tensor / numpy array
            if getattr(ids, "ndim", 1) > 1:
                raise ValueError(
                    f"decode expects a 1-D sequence of ids, got shape {tuple(ids.shape)}"
                )
            ids = ids.tolist()
            if isinstance(ids, int):  # 0-d tensor
                ids = [ids]
        itos = self.itos
        try:
            return "".join(itos[int(i)] for i in ids)
        except KeyError as e:
            raise ValueError(
                f"token id {e.args[0]} is out of range for a vocabulary of "
                f"{self.vocab_size} characters"
            ) from None

    def to_dict(self) -> dict:
        """Plain-data form, safe for ``torch.load(weights_only=True)``."""
        return {"type": "char", "chars": list(self.chars)}

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


def tokenizer_from_dict(d: Any):
    """The tokenizer a checkpoint holds: a CharTokenizer or a BPETokenizer, by its "type"."""
    if isinstance(d, dict) and d.get("type") == "bpe":
        from .bpe import BPETokenizer

        return BPETokenizer.from_dict(d)
    return CharTokenizer.from_dict(d)
