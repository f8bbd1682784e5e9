"""BPE's speed machinery: the same merges and ids as the plain algorithm in bpe.py, much faster.

bpe.py holds the algorithm as a reader should meet it (recount every pair
after each merge; merge the lowest-ranked pair until none is left). This
module gives the same results, which tests/test_bpe.py checks:

* Training (`learn_merges`) counts each distinct piece once, with its
  frequency; after a merge it updates the pair counts only in the pieces that
  hold the merged pair (an index pair -> pieces finds them) and only next to
  each merged spot; the candidate pairs wait in a heap.
* Encoding (`PieceEncoder`) remembers the ids of every piece it has seen, and
  encodes a long piece (pattern=None) with one pass per merge.

It imports nothing of the package: bpe.py builds on it.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict

CACHE_LIMIT = 200_000  # pieces remembered by PieceEncoder before its cache starts over
LONG_PIECE = 256  # bytes; long pieces (pattern=None) encode merge by merge, if there are few merges
NO_TOKEN = -1  # in byte_ids: this byte has no token of its own (encoding drops it)


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


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
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
    """``merge``, plus how the count of each pair changes: ``{pair: delta}``.

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


def learn_merges(pieces: Counter, num_merges: int) -> list[tuple[int, int]]:
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


class PieceEncoder:
    """GPT-2's encoding rule for one piece, with a cache of the pieces seen and a shortcut for long ones."""

    def __init__(self, merges: dict[tuple[int, int], int], byte_ids: list[int]):
        self.merges, self.byte_ids = merges, byte_ids
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        # every merge makes a new id (always true of trained tokenizers): allows the long-piece shortcut
        self.fresh_ids = len(set(merges.values())) == len(merges)
        self.cache: dict[str, list[int]] = {}

    def encode(self, piece: str) -> list[int]:
        """The ids of one split piece, from the cache when it was seen before."""
        ids = self.cache.get(piece)
        if ids is None:
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            ids = self.cache[piece] = self.encode_bytes(piece.encode("utf-8"))
        return ids

    def encode_bytes(self, piece: bytes) -> list[int]:
        """Merge the earliest-learned pair present, everywhere in the piece, until none is left."""
        ids = [self.byte_ids[b] for b in piece if self.byte_ids[b] != NO_TOKEN]
        if len(ids) >= LONG_PIECE and 4 * len(ids) > len(self.merges) and self.fresh_ids:
            # A merge only makes pairs that hold its new id, whose own merges rank later, so
            # applying every merge once in rank order gives the same ids, in one fast pass per merge.
            for pair, new_id in self.merges.items():
                if _find(ids, pair) >= 0:
                    ids = merge(ids, pair, new_id)
            return ids
        ranks, inf = self.ranks, float("inf")
        while len(ids) >= 2:
            pair = min(set(zip(ids, ids[1:])), key=lambda p: ranks.get(p, inf))
            if pair not in ranks:
                break
            ids = merge(ids, pair, self.merges[pair])
        return ids
