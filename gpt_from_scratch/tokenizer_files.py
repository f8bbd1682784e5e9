"""Other people's byte-level BPE tokenizers, read into our own BPETokenizer.

Three sources, one result (the same ids as the original tokenizer):

- GPT-2's ranks, shipped with the package (assets/gpt2.tiktoken, MIT, OpenAI):
  one token a line, its bytes in base64 and its rank, which is GPT-2's id. The
  file holds no merges: they follow from the ranks. Byte-pair encoding of a
  token's bytes, allowed only merges of lower rank, stops at exactly two
  parts; the token is the merge of those two.
- Hugging Face's `tokenizer.json`: the vocabulary (token string -> id), the
  merges in rank order, the added (special) tokens and the pre-tokenizer.
- A GGUF file's metadata (llama.cpp): `tokenizer.ggml.tokens`, `.merges`,
  `.token_type` (3 = control, i.e. special) and `.pre`, the pre-tokenizer's
  name.

Both Hugging Face and llama.cpp write each byte as one printable character
(gpt2_bytes_to_unicode: the space is "Ġ"), so tokens are first turned back
into bytes.

The pre-tokenizer decides where merges may not cross. GPT-2 uses its regex.
SmolLM2 first cuts every digit off on its own (Hugging Face's `Digits` with
individual_digits, llama.cpp's "smollm"), then applies GPT-2's regex to each
piece between the digits. That is one regex too, SMOLLM2_SPLIT_PATTERN: a
digit is a piece of its own, and a run of spaces before a digit stays whole,
because GPT-2's `\\s+(?!\\S)` saw the piece end there.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

from .bpe import GPT2_SPLIT_PATTERN, NO_TOKEN, BPETokenizer, TokenizerError, gpt2_bytes_to_unicode

ASSETS = Path(__file__).resolve().parent / "assets"
GPT2_RANKS_FILE = ASSETS / "gpt2.tiktoken"
GPT2_SPECIAL_TOKENS = {"<|endoftext|>": 50256}

# GPT-2's regex applied between single digits (\p{N}: every numeric character, as Rust's is_numeric).
SMOLLM2_SPLIT_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"""
)
# llama.cpp's tokenizer.ggml.pre -> our split pattern
GGUF_PRE_TOKENIZERS = {"gpt-2": GPT2_SPLIT_PATTERN, "gpt2": GPT2_SPLIT_PATTERN, "smollm": SMOLLM2_SPLIT_PATTERN}
CONTROL = 3  # llama.cpp's token type of special tokens


# --- GPT-2, offline -----------------------------------------------------------------


def read_tiktoken_ranks(path: str | Path = GPT2_RANKS_FILE) -> dict[bytes, int]:
    """{token bytes: rank} from a .tiktoken file ("<base64> <rank>" a line)."""
    ranks = {}
    for n, line in enumerate(Path(path).read_text(encoding="ascii").splitlines(), 1):
        if line:
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
            except ValueError:
                raise TokenizerError(f"{path} line {n} is not '<base64> <rank>'; reinstall gpt-from-scratch") from None
    return ranks


def merges_from_ranks(ranks: dict[bytes, int]) -> dict[tuple[int, int], int]:
    """The merge that makes each multi-byte token, in rank order: {(id_a, id_b): id}."""
    merges = {}
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = [token[k : k + 1] for k in range(len(token))]
        while len(parts) > 2:  # BPE with the merges learned before this one
            best = min(range(len(parts) - 1), key=lambda k: ranks.get(parts[k] + parts[k + 1], rank))
            if ranks.get(parts[best] + parts[best + 1], rank) >= rank:
                break
            parts[best : best + 2] = [parts[best] + parts[best + 1]]
        if len(parts) != 2:
            raise TokenizerError(f"the ranks cannot make token {token!r} from two lower ones; a broken file?")
        merges[(ranks[parts[0]], ranks[parts[1]])] = rank
    return merges


@functools.lru_cache(maxsize=1)
def _gpt2_data() -> dict:
    ranks = read_tiktoken_ranks(GPT2_RANKS_FILE)
    byte_ids = [ranks[bytes([b])] for b in range(256)]
    merges = merges_from_ranks(ranks)
    return {"type": "bpe", "version": 1, "pattern": GPT2_SPLIT_PATTERN, "byte_ids": byte_ids,
            "merges": [[a, b, i] for (a, b), i in merges.items()], "special_tokens": dict(GPT2_SPECIAL_TOKENS)}


def gpt2_tokenizer() -> BPETokenizer:
    """GPT-2's own tokenizer (all four sizes share it), from the ranks shipped with the package: no network."""
    return BPETokenizer.from_dict(_gpt2_data())


# --- byte-level token strings -> our ids ------------------------------------------------


def tokenizer_from_vocab(
    vocab: dict[str, int], merges: list[tuple[str, str]], pattern: str | None,
    special: dict[str, int], chat_template: str | None = None, source: str = "the tokenizer",
) -> BPETokenizer:
    """Our BPETokenizer from a byte-level vocabulary (token string -> id) and its merges, best first."""
    byte_to_char = gpt2_bytes_to_unicode()
    byte_ids = [vocab.get(byte_to_char[b], NO_TOKEN) for b in range(256)]  # some bytes never occur in text
    if byte_ids.count(NO_TOKEN) > 128:
        raise TokenizerError(f"{source} lacks most single-byte tokens: not a byte-level BPE")
    ids = {}
    for a, b in merges:
        if a not in vocab or b not in vocab or a + b not in vocab:
            raise TokenizerError(f"{source}: the merge {a!r} {b!r} is not made of tokens of its vocabulary")
        ids[(vocab[a], vocab[b])] = vocab[a + b]
    tokenizer = BPETokenizer(ids, pattern=pattern, special_tokens=special, byte_ids=byte_ids)
    unreachable = sorted(set(vocab.values()) - set(tokenizer.vocab))
    if unreachable:
        raise TokenizerError(f"{source}: {len(unreachable)} tokens (e.g. id {unreachable[0]}) are neither bytes, "
                             "merges nor special tokens; this tokenizer is not supported")
    tokenizer.chat_template = chat_template
    return tokenizer


def _merge_pairs(merges) -> list[tuple[str, str]]:
    """Merges as pairs: tokenizer.json writes "a b" (older) or ["a", "b"] (newer)."""
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]


# --- Hugging Face tokenizer.json ---------------------------------------------------------


def _pattern_of(pre: dict | None, source: str) -> str:
    """Our split regex for a tokenizer.json pre_tokenizer (the byte-level ones we know)."""
    def is_byte_level(p, regex: bool) -> bool:
        return isinstance(p, dict) and p.get("type") == "ByteLevel" and bool(p.get("use_regex", True)) == regex

    steps = pre.get("pretokenizers", []) if isinstance(pre, dict) and pre.get("type") == "Sequence" else [pre]
    if len(steps) == 1 and is_byte_level(steps[0], True):
        return GPT2_SPLIT_PATTERN
    if len(steps) == 2 and is_byte_level(steps[1], True):
        first = steps[0] or {}
        if first.get("type") == "Digits" and first.get("individual_digits"):
            return SMOLLM2_SPLIT_PATTERN
    if len(steps) == 2 and is_byte_level(steps[1], False):
        first = steps[0] or {}
        regex = (first.get("pattern") or {}).get("Regex")
        if first.get("type") == "Split" and regex and first.get("behavior") == "Isolated":
            return regex
    raise TokenizerError(f"{source}: its pre-tokenizer ({json.dumps(pre)[:120]}) is not one we can reproduce")


def read_chat_template(folder: Path) -> str | None:
    """The chat template of a Hugging Face folder: chat_template.jinja, or tokenizer_config.json's."""
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template if isinstance(template, str) else None


def _is_char_tokenizer(data: dict) -> bool:
    """A character tokenizer as export_hf.py writes it: single characters numbered 0.., no merges, no split."""
    model = data.get("model") or {}
    vocab = model.get("vocab") or {}
    return (model.get("type") == "BPE" and not model.get("merges") and data.get("pre_tokenizer") is None
            and (data.get("decoder") or {}).get("type") == "Fuse" and all(len(t) == 1 for t in vocab)
            and sorted(vocab.values()) == list(range(len(vocab))) and vocab == dict(sorted(vocab.items())))


def tokenizer_from_tokenizer_json(path: str | Path) -> BPETokenizer:
    """Our BPETokenizer from a Hugging Face tokenizer.json (its chat template from the folder, if any)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokenizerError(f"cannot read {path}: {e}; download it again") from None
    model = data.get("model") or {}
    if _is_char_tokenizer(data):
        from .tokenizer import CharTokenizer

        return CharTokenizer(sorted(model["vocab"], key=model["vocab"].get))
    if model.get("type") != "BPE" or data.get("normalizer") or model.get("ignore_merges") or model.get("byte_fallback"):
        raise TokenizerError(f"{path} is not a plain byte-level BPE (model, normalizer or options differ)")
    special = {t["content"]: int(t["id"]) for t in data.get("added_tokens", [])}
    vocab = {tok: i for tok, i in model.get("vocab", {}).items() if i not in special.values()}
    return tokenizer_from_vocab(vocab, _merge_pairs(model.get("merges", [])), _pattern_of(data.get("pre_tokenizer"),
                                str(path)), special, read_chat_template(path.parent), str(path))


# --- GGUF metadata ---------------------------------------------------------------------


def tokenizer_from_gguf_metadata(meta: dict, source: str = "the GGUF file") -> BPETokenizer:
    """Our BPETokenizer from a GGUF file's tokenizer.* metadata (see llama.read_gguf_metadata)."""
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise TokenizerError(f"{source}: tokenizer {meta.get('tokenizer.ggml.model')!r} is not a byte-level BPE "
                             "('gpt2'); only those load here")
    pre = meta.get("tokenizer.ggml.pre", "gpt-2")
    if pre not in GGUF_PRE_TOKENIZERS:
        raise TokenizerError(f"{source}: pre-tokenizer {pre!r} is not one of {sorted(GGUF_PRE_TOKENIZERS)}")
    tokens, types = meta["tokenizer.ggml.tokens"], meta.get("tokenizer.ggml.token_type") or [1] * 0
    special = {tok: i for i, (tok, kind) in enumerate(zip(tokens, types)) if kind == CONTROL}
    vocab = {tok: i for i, tok in enumerate(tokens) if tok not in special}
    return tokenizer_from_vocab(vocab, _merge_pairs(meta.get("tokenizer.ggml.merges", [])),
                                GGUF_PRE_TOKENIZERS[pre], special, meta.get("tokenizer.chat_template"), source)
