"""A byte-level BPE (byte-pair encoding) tokenizer, built from scratch.

Text is first turned into UTF-8 bytes, so the 256 byte values are the base
tokens and any unicode string can be encoded. Training then repeats one step:
find the most frequent adjacent pair of tokens and give it a new id. Merge k
creates id ``256 + k``. A split pattern (GPT-2's or GPT-4's regex) first cuts
the text into pieces (words, numbers, punctuation, whitespace) and pairs are
only counted inside a piece, so no token ever spans "dog." or " the cat".

Rules worth knowing:

* **Ties.** When several pairs share the highest count, the pair whose first
  occurrence comes earliest in the (current, partly merged) text wins. That is
  what ``max(counts, key=counts.get)`` gives over counts gathered in text
  order, the textbook loop (and minbpe's), so both learn the same merges.
* **Encoding** applies merges by rank, exactly as GPT-2's tokenizer does:
  inside each piece, merge every occurrence of the pair that was learned
  earliest, and repeat until no learned pair is left.
* **Decoding** joins the bytes of the ids and decodes them as UTF-8 with
  ``errors="replace"``: a list of ids that stops in the middle of a character
  (which a model can sample) gives U+FFFD instead of an exception.
* **Ids.** ``vocab`` maps every id (special tokens included) to its bytes;
  ``merges`` maps each learned pair to the id it creates, in learned order.
  The base byte -> id mapping is stored explicitly (``byte_ids``): for a
  trained tokenizer it is the identity, for GPT-2's it is GPT-2's own.

This file is the algorithm, written plainly (`merge`, `learn_merges`,
`encode_piece`), then the tokenizer class. The speed machinery (incremental
pair counts in a heap, a cache of encoded pieces) lives apart in bpe_fast.py,
which gives the same merges and ids; the tokenizer uses it.

Plain-data form (``to_dict``) and file format (``save``, a JSON object)::

    {"type": "bpe", "version": 1,
     "pattern": "<split regex>" or null,
     "byte_ids": [256 ints: the id of byte 0, byte 1, ... (-1: none)],
     "merges": [[id_a, id_b, new_id], ...],          # in learned (rank) order
     "special_tokens": {"<|endoftext|>": 50256, ...}}

Only ints, strings, lists and dicts, so it survives
``torch.load(..., weights_only=True)`` inside a checkpoint. The vocabulary is
rebuilt from it: byte b is ``byte_ids[b]``, and each merge's bytes are its
pair's bytes joined.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Union

from . import bpe_fast
from .files import atomic_write
from .tokenizer import Tokenizer

__all__ = [
    "BPETokenizer",
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "TokenizerError",
    "gpt2_bytes_to_unicode",
]

# GPT-2 (2019): English contractions, then letters, numbers and other symbols,
# each optionally led by one space; whitespace runs keep their last space for
# the next word.
GPT2_SPLIT_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)
# GPT-4 (cl100k_base): contractions in any case, numbers of at most 3 digits,
# a letter run may be led by one non-letter symbol, and newlines are split off.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)

PathLike = Union[str, "os.PathLike[str]"]
_ALLOWED_SPECIAL = ("none_raise", "all", "none")
NO_TOKEN = bpe_fast.NO_TOKEN  # in byte_ids: this byte has no token of its own


class TokenizerError(RuntimeError):
    """A tokenizer could not be loaded (missing files, no network, missing package)."""


def _compile(pattern: str):
    """Compile a split pattern with the `regex` package (it knows \\p{L} and possessive quantifiers)."""
    try:
        import regex
    except ImportError:
        raise TokenizerError(
            "split patterns need the regex package: pip install regex (or use pattern=None)"
        ) from None
    return regex.compile(pattern)


# --------------------------------------------------------------------------- #
# The algorithm, plainly (bpe_fast.py computes the same, faster)
# --------------------------------------------------------------------------- #
def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, left to right, by `new_id`."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def pair_counts(words: list[list[int]], freqs: list[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs; a piece that occurs f times counts f times.
    The dict's order is the order in which the pairs first occur."""
    counts: dict[tuple[int, int], int] = {}
    for word, f in zip(words, freqs):
        for pair in zip(word, word[1:]):
            counts[pair] = counts.get(pair, 0) + f
    return counts


def learn_merges(pieces: Counter, num_merges: int) -> list[tuple[int, int]]:
    """Training: repeatedly merge the most frequent pair; merge k makes id 256 + k.

    `pieces` holds the distinct split pieces, in order of first appearance,
    with their counts. Ties go to the pair that occurs first (max keeps the
    first of equal counts). Stops early when no pair is left.
    """
    words = [list(piece.encode("utf-8")) for piece in pieces]
    freqs = list(pieces.values())
    pairs: list[tuple[int, int]] = []
    while len(pairs) < num_merges:
        counts = pair_counts(words, freqs)
        if not counts:
            break
        pair = max(counts, key=counts.get)
        words = [merge(w, pair, 256 + len(pairs)) for w in words]
        pairs.append(pair)
    return pairs


def encode_piece(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Encoding one piece (GPT-2's rule): merge the earliest-learned pair present, until none is left."""
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, float("inf")))
        if pair not in ranks:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


# --------------------------------------------------------------------------- #
# GPT-2's byte <-> unicode mapping
# --------------------------------------------------------------------------- #
def gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to one printable unicode character.

    GPT-2 stores its tokens in ``vocab.json`` and ``merges.txt`` as text, and
    ``merges.txt`` separates the two halves of a merge with a space, so every
    byte needs a visible, non-space character. Bytes that are already printable
    (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``: 188 of them) stand for
    themselves; the other 68 (control codes, the space, DEL, NBSP, soft hyphen)
    become ``chr(256 + n)``, n = 0, 1, ... in byte order. So the space (byte 32)
    is ``Ġ`` (U+0120) and the newline (byte 10) is ``Ċ`` (U+010A).
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + n)
            n += 1
    return mapping


# --------------------------------------------------------------------------- #
# The tokenizer
# --------------------------------------------------------------------------- #
class BPETokenizer(Tokenizer):
    """Byte-level BPE: ``train`` it on text, or load GPT-2's with ``from_pretrained``.

    >>> tok = BPETokenizer.train("aaabdaaabac", 259, pattern=None)
    >>> tok.merges
    {(97, 97): 256, (256, 97): 257, (257, 98): 258}
    >>> tok.encode("aaabdaaabac")
    [258, 100, 258, 97, 99]
    >>> tok.decode([258, 100])
    'aaabd'
    """

    kind = "bpe"

    def __init__(
        self,
        merges: dict[tuple[int, int], int] | None = None,
        pattern: str | None = GPT2_SPLIT_PATTERN,
        special_tokens: dict[str, int] | None = None,
        byte_ids: Iterable[int] | None = None,
    ):
        self.pattern = pattern
        self._split = _compile(pattern) if pattern is not None else None
        self.byte_ids: list[int] = list(range(256)) if byte_ids is None else [int(i) for i in byte_ids]
        # -1: a byte with no token (SmolLM2 has none for 21 bytes); encoding drops it, as Hugging Face does
        known = [i for i in self.byte_ids if i != NO_TOKEN]
        if len(self.byte_ids) != 256 or len(set(known)) != len(known) or min(self.byte_ids) < NO_TOKEN:
            raise ValueError("byte_ids must hold 256 distinct ids (or -1), one per byte value")
        self.vocab: dict[int, bytes] = {i: bytes([b]) for b, i in enumerate(self.byte_ids) if i != NO_TOKEN}
        self.merges: dict[tuple[int, int], int] = {}
        for (a, b), new_id in (merges or {}).items():
            if a not in self.vocab or b not in self.vocab:
                raise ValueError(f"merge ({a}, {b}) uses an id that no byte or earlier merge defines")
            token = self.vocab[a] + self.vocab[b]
            if self.vocab.setdefault(new_id, token) != token:
                raise ValueError(f"merge ({a}, {b}) -> {new_id} reuses an id that holds other bytes")
            self.merges[(a, b)] = new_id
        self.special_tokens: dict[str, int] = {}
        self.chat_template: str | None = None  # a pretrained chat model's template (tokenizer_files.py, chat.py)
        self._encoder = bpe_fast.PieceEncoder(self.merges, self.byte_ids)  # encode_piece, fast and cached
        self.register_special_tokens(special_tokens or {})

    # -- training ---------------------------------------------------------- #
    @classmethod
    def train(
        cls, text: str, vocab_size: int, pattern: str | None = GPT2_SPLIT_PATTERN, fast: bool = True
    ) -> "BPETokenizer":
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if the text runs out of pairs).

        fast=False runs the plain `learn_merges` above instead of bpe_fast's:
        the same merges, about 100 times slower.

        ``pattern=None`` merges across the whole text with no split: every pair
        of neighbouring bytes counts, spaces and newlines included. That one long
        piece is re-scanned after each merge: about 5 s for vocab 512 on Tiny
        Shakespeare, and 10 ms more per merge beyond that.
        """
        if not isinstance(text, str):
            raise TypeError(f"train expects a str, got {type(text).__name__}")
        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(
                "vocab_size must be an int of at least 256 (the byte tokens), "
                f"got {vocab_size!r}"
            )
        if pattern is None:
            pieces = Counter([text] if text else [])
        else:
            pieces = Counter(_compile(pattern).findall(text))  # distinct pieces, in order of first appearance
        pairs = (bpe_fast.learn_merges if fast else learn_merges)(pieces, vocab_size - 256)
        return cls({pair: 256 + k for k, pair in enumerate(pairs)}, pattern=pattern)

    # -- special tokens ---------------------------------------------------- #
    def register_special_tokens(self, special_tokens: dict[str, int]) -> None:
        """Add special tokens such as ``{"<|endoftext|>": 512}``: strings that encode to one fixed id."""
        for name, i in special_tokens.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"a special token is a non-empty string, got {name!r}")
            if not isinstance(i, int) or i < 0:
                raise ValueError(f"special token {name!r} needs a non-negative int id, got {i!r}")
            if i in self.vocab and self.special_tokens.get(name) != i:
                raise ValueError(
                    f"id {i} is already taken; give special token {name!r} a free id, "
                    f"e.g. {self.vocab_size}"
                )
            old = self.special_tokens.get(name)
            if old is not None and old != i:
                raise ValueError(f"special token {name!r} already has id {old}")
            self.special_tokens[name] = i
            self.vocab[i] = name.encode("utf-8")

    # -- encoding ---------------------------------------------------------- #
    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` with no special tokens: a special token's string is plain text here.

        Each split piece is encoded on its own, as `encode_piece` above does
        (bpe_fast.PieceEncoder: the same ids, cached)."""
        if self._split is None:
            return self._encoder.encode_bytes(text.encode("utf-8"))
        ids: list[int] = []
        for piece in self._split.findall(text):
            ids.extend(self._encoder.encode(piece))
        return ids

    def encode(self, text: str, allowed_special: Union[str, set] = "none_raise") -> list[int]:
        """Turn a string into token ids.

        ``allowed_special`` says what a registered special token's string in the
        text becomes: ``"all"``: its id; ``"none"``: ordinary text;
        ``"none_raise"`` (default): a ValueError, so text from users can never
        smuggle in an ``<|endoftext|>``; a set of names: those names become
        their ids, and any other special token in the text raises ValueError.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        if isinstance(allowed_special, str) and allowed_special in _ALLOWED_SPECIAL:
            if allowed_special == "none":
                return self.encode_ordinary(text)
            allowed = set(self.special_tokens) if allowed_special == "all" else set()
        elif isinstance(allowed_special, (set, frozenset)):
            unknown = sorted(set(allowed_special) - set(self.special_tokens))
            if unknown:
                raise ValueError(
                    f"allowed_special names unregistered tokens {unknown}: "
                    "call register_special_tokens first"
                )
            allowed = set(allowed_special)
        else:
            raise ValueError(
                "allowed_special must be 'none_raise', 'all', "
                f"'none' or a set of names, got {allowed_special!r}"
            )
        found = [name for name in self.special_tokens if name not in allowed and name in text]
        if found:
            raise ValueError(
                f"text contains special token(s) {found}: pass allowed_special='all' (or a set of names) "
                "to encode them as special ids, or allowed_special='none' to encode them as plain text"
            )
        if not allowed:
            return self.encode_ordinary(text)
        names = sorted(allowed, key=len, reverse=True)  # longest first, should one contain another
        ids: list[int] = []
        for k, part in enumerate(re.split("(" + "|".join(map(re.escape, names)) + ")", text)):
            if k % 2:  # re.split puts the captured separators at odd positions
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    # -- decoding ---------------------------------------------------------- #
    def decode_bytes(self, ids: Any) -> bytes:
        """The raw bytes of token ids (a list of ints or a 1-D tensor)."""
        vocab = self.vocab
        try:
            return b"".join(vocab[i] for i in self.id_list(ids))
        except KeyError as e:
            raise ValueError(
                f"token id {e.args[0]} is not in this tokenizer's vocabulary "
                f"(vocab_size {self.vocab_size})"
            ) from None

    def decode_list(self, ids: list[int]) -> str:
        """Bytes that are not valid UTF-8 (an id list that stops inside a character) become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    @property
    def vocab_size(self) -> int:
        """One more than the largest id: 256 + merges + special tokens when ids follow one another."""
        return max(self.vocab) + 1

    # -- plain data, files ------------------------------------------------- #
    def to_dict(self) -> dict:
        """Plain-data form (see the module docstring), safe for ``torch.load(weights_only=True)``."""
        return {
            "type": self.kind,
            "version": 1,
            "pattern": self.pattern,
            "byte_ids": list(self.byte_ids),
            "merges": [[a, b, new_id] for (a, b), new_id in self.merges.items()],
            "special_tokens": dict(self.special_tokens),
            **({"chat_template": self.chat_template} if self.chat_template is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: Any) -> "BPETokenizer":
        """Rebuild a tokenizer from ``to_dict()`` output."""
        if not isinstance(d, dict):
            raise ValueError(f"tokenizer data must be a dict, got {type(d).__name__}")
        if d.get("type") != "bpe":
            raise ValueError(f"unknown tokenizer type {d.get('type')!r}, expected 'bpe'")
        merges = d.get("merges")
        pattern = d.get("pattern")
        if not isinstance(merges, (list, tuple)) or any(
            not isinstance(m, (list, tuple)) or len(m) != 3 for m in merges
        ):
            raise ValueError("BPE tokenizer data needs 'merges': a list of [id_a, id_b, new_id]")
        if pattern is not None and not isinstance(pattern, str):
            raise ValueError("BPE tokenizer 'pattern' must be a string or None")
        tokenizer = cls(
            {(int(a), int(b)): int(new_id) for a, b, new_id in merges},
            pattern=pattern,
            special_tokens=dict(d.get("special_tokens") or {}),
            byte_ids=d.get("byte_ids"),
        )
        tokenizer.chat_template = d.get("chat_template")
        return tokenizer

    def save(self, path: PathLike) -> None:
        """Write the tokenizer as JSON (the ``to_dict`` form, one merge per line)."""
        d = self.to_dict()
        head = {k: v for k, v in d.items() if k != "merges"}
        lines = [json.dumps(m) for m in d["merges"]]
        body = json.dumps(head, ensure_ascii=False, indent=1)[:-2]  # drop the closing "\n}"
        text = body + ',\n "merges": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
        with atomic_write(path, "w") as f:
            f.write(text)

    @classmethod
    def load(cls, path: PathLike) -> "BPETokenizer":
        """Read a tokenizer written by ``save``."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TokenizerError(f"no tokenizer file at {path}: write one with BPETokenizer.save") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TokenizerError(
                f"{path} is not a BPETokenizer JSON file ({e}); "
                "write it with BPETokenizer.save"
            ) from None
        return cls.from_dict(d)

    # -- pretrained ------------------------------------------------------- #
    # from_pretrained's loader: loading.py registers it (loaders import the tokenizer, never the other way round).
    pretrained_loader: ClassVar[Callable[..., "BPETokenizer"] | None] = None

    @classmethod
    def from_pretrained(cls, name_or_dir: PathLike = "gpt2") -> "BPETokenizer":
        """A pretrained model's tokenizer, with its own ids: the same names and paths as GPT.from_pretrained.

        "gpt2" .. "gpt2-xl": GPT-2's ranks ship with the package, so this works offline
        (tokenizer_files.py derives the merges). A folder holds tokenizer.json, or GPT-2's
        ``vocab.json`` and ``merges.txt`` (bytes written through :func:`gpt2_bytes_to_unicode`);
        a .gguf file holds it in its metadata; a Hub name ("HuggingFaceTB/SmolLM2-135M") is
        downloaded once with huggingface_hub. See loading.py.
        """
        if cls.pretrained_loader is None:
            raise RuntimeError("no pretrained loader is registered; import gpt_from_scratch.loading")
        return cls.pretrained_loader(name_or_dir)

    @classmethod
    def _from_gpt2_files(cls, vocab_path: Path, merges_path: Path) -> "BPETokenizer":
        """Convert GPT-2's string tokens to our ids: base bytes, merges in rank order, special tokens."""
        encoder: dict[str, int] = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
        byte_to_char = gpt2_bytes_to_unicode()
        missing = [b for b in range(256) if byte_to_char[b] not in encoder]
        if missing:
            raise TokenizerError(
                f"{vocab_path} lacks the single-byte tokens for bytes {missing[:5]}: "
                "is it GPT-2's vocab.json?"
            )
        byte_ids = [encoder[byte_to_char[b]] for b in range(256)]
        merges: dict[tuple[int, int], int] = {}
        lines = Path(merges_path).read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip() or (n == 1 and line.startswith("#version")):
                continue
            halves = line.split(" ")
            if len(halves) != 2 or any(h not in encoder for h in halves) or "".join(halves) not in encoder:
                raise TokenizerError(
                    f"{merges_path} line {n} is not a merge of two tokens in vocab.json: "
                    f"{line!r}"
                )
            a, b = halves
            merges[(encoder[a], encoder[b])] = encoder[a + b]
        made = set(byte_ids) | set(merges.values())
        special = {name: i for name, i in encoder.items() if i not in made}  # GPT-2: {"<|endoftext|>": 50256}
        return cls(merges, pattern=GPT2_SPLIT_PATTERN, special_tokens=special, byte_ids=byte_ids)

    # -- misc -------------------------------------------------------------- #
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BPETokenizer):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # mutable (register_special_tokens)

    def __repr__(self) -> str:
        names = {GPT2_SPLIT_PATTERN: "GPT2", GPT4_SPLIT_PATTERN: "GPT4", None: None}
        pattern = names.get(self.pattern, "custom")
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={len(self.special_tokens)}, pattern={pattern})"
        )
