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

Speed: training counts each distinct piece once (with its frequency), updates
the pair counts only in the pieces that hold the merged pair (an index pair ->
pieces finds them) and only next to each merged spot, and keeps the candidate
pairs in a heap. Encoding caches the ids of every piece it has seen.

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

import heapq
import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Union

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
_CACHE_LIMIT = 200_000  # pieces remembered by encode before the cache starts over
NO_TOKEN = -1  # in byte_ids: this byte has no token of its own
_LONG_PIECE = 256  # bytes; long pieces (pattern=None) encode merge by merge, if there are few merges


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


def _find(ids: list[int], pair: tuple[int, int], start: int = 0) -> int:
    """Index of the first occurrence of `pair` in `ids` at or after `start`, or -1."""
    a, b = pair
    last = len(ids) - 1
    while start < last:
        try:
            j = ids.index(a, start, last)  # list.index scans in C: fast on long pieces
        except ValueError:
            return -1
        if ids[j + 1] == b:
            return j
        start = j + 1
    return -1


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, left to right, by `new_id`."""
    out: list[int] = []
    i = 0
    while (j := _find(ids, pair, i)) >= 0:
        out.extend(ids[i:j])
        out.append(new_id)
        i = j + 2
    out.extend(ids[i:])
    return out


def _merge_counting(ids: list[int], pair: tuple[int, int], new_id: int) -> tuple[list[int], dict]:
    """``_merge``, plus how the count of each pair changes: ``{pair: delta}``.

    Occurrences come in runs ``a b a b ... a b`` (m of them) between a left
    neighbour L and a right neighbour R. The run's old pairs are (L, a),
    m x (a, b), (m - 1) x (b, a) and (b, R); its new ones (L, z), (m - 1) x (z, z)
    and (z, R). Only these change, so a long piece costs no full recount.
    """
    a, b = pair
    out: list[int] = []
    delta: dict[tuple[int, int], int] = defaultdict(int)
    i, n = 0, len(ids)
    while (s := _find(ids, pair, i)) >= 0:
        e = s + 2  # the run is ids[s:e]
        while e + 1 < n and ids[e] == a and ids[e + 1] == b:
            e += 2
        m = (e - s) // 2
        out.extend(ids[i:s])
        out.extend([new_id] * m)
        delta[pair] -= m
        if m > 1:
            delta[(b, a)] -= m - 1
            delta[(new_id, new_id)] += m - 1
        if s > 0:
            delta[(ids[s - 1], a)] -= 1
            delta[(ids[s - 1], new_id)] += 1
        if e < n:
            delta[(b, ids[e])] -= 1
            delta[(new_id, ids[e])] += 1
        i = e
    out.extend(ids[i:])
    return out, delta


# --------------------------------------------------------------------------- #
# Training: incremental pair counts over distinct pieces
# --------------------------------------------------------------------------- #
class _PairStats:
    """Pair counts over distinct pieces, updated after each merge.

    ``words[i]`` is the i-th distinct piece (in order of first appearance in the
    text) as token ids and ``freqs[i]`` how often it appears. ``where[pair]``
    holds every piece that has the pair (and maybe a few that lost it since:
    those are skipped when met). The heap holds one entry per pair,
    ``(-count, piece, byte_offset, pair)``. An entry may be stale, but only ever
    too good: the count of an existing pair only falls and its first occurrence
    only moves later (new occurrences always involve the newest token). So the
    best entry is checked when popped and pushed back, corrected, if stale.
    """

    def __init__(self, words: list[list[int]], freqs: list[int]):
        self.words, self.freqs = words, freqs
        self.length = [1] * 256  # bytes per token id, for byte offsets
        self.counts: dict[tuple[int, int], int] = {}
        self.where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for i, (w, f) in enumerate(zip(words, freqs)):
            for pair, c in Counter(zip(w, w[1:])).items():
                self.counts[pair] = self.counts.get(pair, 0) + c * f
                self.where[pair].add(i)
        # offset 0 is a lower bound on the first occurrence: pop_best finds the real one when it matters
        self.heap = [(-c, min(self.where[p]), 0, p) for p, c in self.counts.items()]
        heapq.heapify(self.heap)

    def first_position(self, pair: tuple[int, int]) -> tuple[int, int]:
        """(piece, byte offset) of the pair's first occurrence in the text."""
        where = self.where[pair]
        while where:
            i = min(where)
            w = self.words[i]
            j = _find(w, pair)
            if j >= 0:
                return i, sum(map(self.length.__getitem__, w[:j]))  # bytes before token j
            where.discard(i)  # the pair left this piece in an earlier merge
        raise AssertionError(f"pair {pair} has a count but no piece holds it")

    def pop_best(self) -> tuple[int, int] | None:
        """The most frequent pair (earliest first occurrence on ties), or None when none is left."""
        while self.heap:
            neg_count, i, offset, pair = heapq.heappop(self.heap)
            count = self.counts.get(pair, 0)
            if count == 0:
                continue  # merged away
            if count != -neg_count:
                heapq.heappush(self.heap, (-count, i, offset, pair))
                continue
            position = self.first_position(pair)
            if position != (i, offset):
                heapq.heappush(self.heap, (-count, *position, pair))
                continue
            return pair
        return None

    def merge(self, pair: tuple[int, int], new_id: int) -> None:
        """Merge `pair` into `new_id` in every piece that holds it, fixing the counts."""
        counts, where = self.counts, self.where
        self.length.append(self.length[pair[0]] + self.length[pair[1]])
        new_pairs: dict[tuple[int, int], int] = {}  # pairs with new_id -> first piece they appear in
        for i in sorted(where.pop(pair)):
            self.words[i], delta = _merge_counting(self.words[i], pair, new_id)
            f = self.freqs[i]
            for p, d in delta.items():
                c = counts.get(p, 0) + d * f
                if c:
                    counts[p] = c
                else:
                    del counts[p]
                    where.pop(p, None)
                if d > 0:
                    where[p].add(i)
                    new_pairs.setdefault(p, i)
        for p, i in new_pairs.items():
            heapq.heappush(self.heap, (-counts[p], i, 0, p))


def _learn_merges(pieces: Counter, num_merges: int) -> list[tuple[int, int]]:
    """The pairs to merge, in order; merge k makes id 256 + k. Stops early if no pair is left."""
    words = [list(piece.encode("utf-8")) for piece in pieces]
    stats = _PairStats(words, list(pieces.values()))
    pairs: list[tuple[int, int]] = []
    while len(pairs) < num_merges:
        pair = stats.pop_best()
        if pair is None:
            break
        stats.merge(pair, 256 + len(pairs))
        pairs.append(pair)
    return pairs


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
class BPETokenizer:
    """Byte-level BPE: ``train`` it on text, or load GPT-2's with ``from_pretrained``.

    >>> tok = BPETokenizer.train("aaabdaaabac", 259, pattern=None)
    >>> tok.merges
    {(97, 97): 256, (256, 97): 257, (257, 98): 258}
    >>> tok.encode("aaabdaaabac")
    [258, 100, 258, 97, 99]
    >>> tok.decode([258, 100])
    'aaabd'
    """

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
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        # every merge makes a new id (always true of trained tokenizers): allows the long-piece shortcut
        self._fresh_ids = len(set(self.merges.values())) == len(self.merges)
        self.special_tokens: dict[str, int] = {}
        self.chat_template: str | None = None  # a pretrained chat model's template (tokenizer_files.py, chat.py)
        self._cache: dict[str, list[int]] = {}
        self.register_special_tokens(special_tokens or {})

    # -- training ---------------------------------------------------------- #
    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str | None = GPT2_SPLIT_PATTERN) -> "BPETokenizer":
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if the text runs out of pairs).

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
        pairs = _learn_merges(pieces, vocab_size - 256)
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
    def _encode_piece(self, piece: bytes) -> list[int]:
        """GPT-2's rule: merge the earliest-learned pair present, everywhere in the piece, until none is left.

        Its result for a long piece is found faster by applying each merge once, in rank order."""
        ids = [self.byte_ids[b] for b in piece if self.byte_ids[b] != NO_TOKEN]
        if len(ids) >= _LONG_PIECE and 4 * len(ids) > len(self.merges) and self._fresh_ids:
            # A merge only makes pairs that hold its new id, whose own merges rank later, so
            # applying every merge once in rank order gives the same ids, in one fast pass per merge.
            for pair, new_id in self.merges.items():
                if _find(ids, pair) >= 0:
                    ids = _merge(ids, pair, new_id)
            return ids
        ranks, inf = self._ranks, float("inf")
        while len(ids) >= 2:
            pair = min(set(zip(ids, ids[1:])), key=lambda p: ranks.get(p, inf))
            if pair not in ranks:
                break
            ids = _merge(ids, pair, self.merges[pair])
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` with no special tokens: a special token's string is plain text here."""
        if self._split is None:
            return self._encode_piece(text.encode("utf-8"))
        cache, ids = self._cache, []
        for piece in self._split.findall(text):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                piece_ids = cache[piece] = self._encode_piece(piece.encode("utf-8"))
            ids.extend(piece_ids)
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
        if hasattr(ids, "tolist"):  # torch.Tensor / numpy array
            if getattr(ids, "ndim", 1) > 1:
                raise ValueError(f"decode expects a 1-D sequence of ids, got shape {tuple(ids.shape)}")
            ids = ids.tolist()
            if isinstance(ids, int):  # 0-d tensor
                ids = [ids]
        vocab = self.vocab
        try:
            return b"".join(vocab[int(i)] for i in ids)
        except KeyError as e:
            raise ValueError(
                f"token id {e.args[0]} is not in this tokenizer's vocabulary "
                f"(vocab_size {self.vocab_size})"
            ) from None

    def decode(self, ids: Any) -> str:
        """Turn token ids back into a string; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    @property
    def vocab_size(self) -> int:
        """One more than the largest id: 256 + merges + special tokens when ids follow one another."""
        return max(self.vocab) + 1

    def __len__(self) -> int:
        return self.vocab_size

    # -- plain data, files ------------------------------------------------- #
    def to_dict(self) -> dict:
        """Plain-data form (see the module docstring), safe for ``torch.load(weights_only=True)``."""
        return {
            "type": "bpe",
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
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

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

    # -- GPT-2 ------------------------------------------------------------- #
    @classmethod
    def from_pretrained(cls, name_or_dir: PathLike = "gpt2") -> "BPETokenizer":
        """A pretrained model's tokenizer, with its own ids: the same names and paths as GPT.from_pretrained.

        "gpt2" .. "gpt2-xl": GPT-2's ranks ship with the package, so this works offline
        (tokenizer_files.py derives the merges). A folder holds tokenizer.json, or GPT-2's
        ``vocab.json`` and ``merges.txt`` (bytes written through :func:`gpt2_bytes_to_unicode`);
        a .gguf file holds it in its metadata; a Hub name ("HuggingFaceTB/SmolLM2-135M") is
        downloaded once with huggingface_hub. See loading.py.
        """
        from .loading import load_tokenizer  # loading.py imports this module

        return load_tokenizer(name_or_dir)

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
