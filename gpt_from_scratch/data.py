"""Tiny Shakespeare: find or download it, split it, and sample training batches.

``load_text()`` looks for the text in this order:

1. the ``path`` argument,
2. the ``GPT_FROM_SCRATCH_DATA`` environment variable,
3. a cached copy (``<repo>/data/tinyshakespeare.txt`` in a checkout,
   otherwise ``~/.cache/gpt_from_scratch/tinyshakespeare.txt``),
4. a download from ``DATA_URL``, checked against ``DATA_SHA256`` and written
   atomically into the cache.

An explicit path may be any UTF-8 text file, so you can train on your own text.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import torch

from .bpe import BPETokenizer
from .files import atomic_write
from .tokenizer import CharTokenizer

__all__ = [
    "DATA_URL",
    "DATA_SHA256",
    "DATA_NUM_CHARS",
    "DATA_ENV",
    "DATA_FILENAME",
    "DEFAULT_TIMEOUT",
    "DataError",
    "cache_dir",
    "cache_path",
    "download_text",
    "load_text",
    "encode_text",
    "train_val_split",
    "get_batch",
    "prepare_data",
    "make_tokenizer",
]

DATA_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
DATA_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DATA_NUM_CHARS = 1_115_394
DATA_ENV = "GPT_FROM_SCRATCH_DATA"
DATA_FILENAME = "tinyshakespeare.txt"
DEFAULT_TIMEOUT = 5.0  # seconds, per connect / read

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


class DataError(RuntimeError):
    """The training text could not be found, read or downloaded."""


# --------------------------------------------------------------------------- #
# Where the text lives
# --------------------------------------------------------------------------- #
def _checkout_data_dir() -> Optional[Path]:
    """``<repo>/data`` when the package runs from a source checkout, else None."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "data").is_dir():
        return root / "data"
    return None


def cache_dir() -> Path:
    """Directory of the cached download (not created here)."""
    checkout = _checkout_data_dir()
    if checkout is not None:
        return checkout
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gpt_from_scratch"


def cache_path(directory: Optional[PathLike] = None) -> Path:
    """Path of the cached Tiny Shakespeare file (in ``directory`` if given)."""
    return Path(directory) / DATA_FILENAME if directory is not None else cache_dir() / DATA_FILENAME


# --------------------------------------------------------------------------- #
# Download
# --------------------------------------------------------------------------- #
def _offline_error(url: str, reason: object) -> DataError:
    return DataError(
        f"could not download the training text from {url} ({reason}); "
        f"connect to the internet, or set {DATA_ENV}=/path/to/tinyshakespeare.txt"
    )


def _fetch(url: str, f, timeout: float) -> str:
    """Stream `url` into the open file `f`; its sha256. Network failures become one-line DataErrors."""
    h = hashlib.sha256()
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "gpt-from-scratch"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                h.update(chunk)
                f.write(chunk)
    except urllib.error.HTTPError as e:
        raise DataError(
            f"downloading {url} failed with HTTP {e.code} {e.reason}; "
            f"download the file yourself and set {DATA_ENV}=/path/to/it"
        ) from None
    except urllib.error.URLError as e:
        raise _offline_error(url, e.reason) from None
    except (OSError, ValueError) as e:  # timeouts, resets, bad URLs
        raise _offline_error(url, e) from None
    return h.hexdigest()


def download_text(
    url: str = DATA_URL,
    dest: Optional[PathLike] = None,
    sha256: Optional[str] = DATA_SHA256,
    timeout: float = DEFAULT_TIMEOUT,
    quiet: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest``.

    The bytes are checked against ``sha256`` (skipped when ``None``) before
    they replace ``dest`` (files.atomic_write). On any failure nothing is
    left behind and ``DataError`` is raised.
    """
    dest = Path(dest) if dest is not None else cache_path()
    if not quiet:
        print(f"Downloading Tiny Shakespeare from {url} to {dest}", file=sys.stderr, flush=True)
    try:
        with atomic_write(dest) as f:
            digest = _fetch(url, f, timeout)
            if sha256 is not None and digest != sha256.lower():
                raise DataError(
                    f"the file downloaded from {url} has sha256 {digest}, expected {sha256}; "
                    f"try again later, or set {DATA_ENV} to a good copy"
                )
    except OSError as e:  # the folder cannot be created or written
        raise DataError(
            f"cannot write to {dest.parent} ({e.strerror or e}); set {DATA_ENV}=/path/to/tinyshakespeare.txt"
        ) from None
    return dest


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #
def _read_explicit(path: Path, origin: str) -> str:
    if not path.exists():
        raise DataError(f"{origin} {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise DataError(f"{origin} {str(path)!r} is a directory; point it at a text file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise DataError(f"{origin} {str(path)!r} is not UTF-8 text; convert it to UTF-8") from None
    except OSError as e:
        raise DataError(f"cannot read {origin} {str(path)!r} ({e.strerror or e})") from None
    if not text:
        raise DataError(f"{origin} {str(path)!r} is empty; give a file with some text in it")
    if "\x00" in text:  # valid UTF-8, but NUL bytes do not occur in text: an image, an archive, a program
        raise DataError(f"{origin} {str(path)!r} looks like a binary file, not text; give a plain text file")
    return text


def _read_verified(path: Path, sha256: Optional[str]) -> Optional[str]:
    """The file's text if it exists and matches ``sha256``, else None."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError:
        return None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def load_text(
    path: Optional[PathLike] = None,
    *,
    url: str = DATA_URL,
    cache: Optional[PathLike] = None,
    sha256: Optional[str] = DATA_SHA256,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Return the training text (Tiny Shakespeare unless told otherwise).

    Order: ``path``, ``$GPT_FROM_SCRATCH_DATA``, the cached copy (in the
    directory ``cache`` if given), then a download from ``url``. Explicit
    paths are read as-is (any UTF-8 text); the cache and downloads are
    checked against ``sha256``. Raises ``DataError`` with a one-line hint.
    """
    if path is not None and str(path) != "":
        return _read_explicit(Path(path).expanduser(), "data file")
    env = os.environ.get(DATA_ENV)
    if env:
        return _read_explicit(Path(env).expanduser(), f"{DATA_ENV} file")

    cached = cache_path(cache)
    if cached.exists():
        text = _read_verified(cached, sha256)
        if text is not None:
            return text
        print(
            f"The cached copy {cached} is corrupt (sha256 mismatch); downloading it again",
            file=sys.stderr,
        )
    download_text(url, cached, sha256=sha256, timeout=timeout)
    text = _read_verified(cached, sha256)
    if text is None:  # pragma: no cover - only if the file changes under us
        raise DataError(f"could not read the downloaded file {cached}; delete it and try again")
    return text


# --------------------------------------------------------------------------- #
# Tensors
# --------------------------------------------------------------------------- #
def encode_text(text: str, tokenizer) -> torch.Tensor:
    """Encode a whole text into a 1-D ``torch.long`` tensor.

    For a CharTokenizer this is vectorized: the same result as
    ``torch.tensor(tokenizer.encode(text))``, much faster.
    """
    if not text:
        return torch.empty(0, dtype=torch.long)
    if not isinstance(tokenizer, CharTokenizer):
        return torch.tensor(tokenizer.encode(text), dtype=torch.long)
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocab = np.array([ord(tokenizer.itos[i]) for i in range(tokenizer.vocab_size)], dtype=np.uint32)  # by id
    order = np.argsort(vocab)  # ids by code point, to look each character up with a binary search
    pos = np.searchsorted(vocab[order], codepoints)
    ok = pos < len(vocab)
    ok[ok] = vocab[order[pos[ok]]] == codepoints[ok]
    if not ok.all():
        tokenizer.encode(text)  # raises ValueError naming the unknown characters
        raise ValueError("text contains characters not in the vocabulary")  # pragma: no cover
    return torch.from_numpy(order[pos].astype(np.int64))


def train_val_split(data: Sequence[T], train_frac: float = 0.9) -> Tuple[Sequence[T], Sequence[T]]:
    """Contiguous split: the first ``train_frac`` trains, the rest validates.

    Works on ``str``, ``list`` and 1-D tensors. For Tiny Shakespeare with the
    default 0.9 this gives 1,003,854 / 111,540 characters.
    """
    if isinstance(train_frac, bool) or not isinstance(train_frac, (int, float)):
        raise ValueError(f"train_frac must be a number between 0 and 1, got {train_frac!r}")
    if not 0 < train_frac < 1:
        raise ValueError(f"train_frac must be between 0 and 1 (exclusive), got {train_frac!r}")
    n = int(train_frac * len(data))
    return data[:n], data[n:]


def get_batch(
    data: torch.Tensor,
    batch_size: int,
    block_size: int,
    device: Union[str, torch.device] = "cpu",
    generator: Optional[torch.Generator] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sample ``batch_size`` random windows of ``block_size`` tokens.

    Returns ``(x, y)``, both ``(batch_size, block_size)`` long tensors on
    ``device``, where ``y`` is ``x`` shifted one token to the left (the next
    token at every position). ``generator`` is a CPU ``torch.Generator``.
    """
    if not isinstance(data, torch.Tensor):
        data = torch.as_tensor(data)
    if data.dim() != 1:
        raise ValueError(f"get_batch expects 1-D token data, got shape {tuple(data.shape)}")
    if batch_size < 1 or block_size < 1:
        raise ValueError(
            f"batch_size and block_size must be positive, got {batch_size} and {block_size}"
        )
    n = data.numel()
    if n <= block_size:
        raise ValueError(
            f"data has {n} tokens but block_size is {block_size}; "
            "need more data than block_size (use more text or a smaller block_size)"
        )
    ix = torch.randint(n - block_size, (batch_size,), generator=generator)
    idx = ix[:, None] + torch.arange(block_size)
    if data.device.type != "cpu":
        idx = idx.to(data.device)
    x = data[idx]
    y = data[idx + 1]
    if x.dtype != torch.long:
        x, y = x.long(), y.long()
    device = torch.device(device)
    if device.type == "cuda" and x.device.type == "cpu":
        x = x.pin_memory().to(device, non_blocking=True)
        y = y.pin_memory().to(device, non_blocking=True)
    else:
        x, y = x.to(device), y.to(device)
    return x, y


def make_tokenizer(kind: str, text: str, train_frac: float = 0.9, vocab_size: int = 512, log=print):
    """A new tokenizer for `text`: "char" (its characters) or "bpe" (merges learned on the training split,
    so nothing about the validation text leaks into the vocabulary)."""
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "bpe":
        train_text, _ = train_val_split(text, train_frac)
        log(f"training a BPE tokenizer with {vocab_size:,} tokens on {len(train_text):,} characters")
        return BPETokenizer.train(train_text, vocab_size)
    raise ValueError(f"unknown tokenizer {kind!r}; choose char or bpe")


def prepare_data(
    text: Optional[str] = None,
    train_frac: float = 0.9,
    tokenizer=None,
) -> Tuple[object, torch.Tensor, torch.Tensor]:
    """Load (if ``text`` is None), tokenize and split.

    Returns ``(tokenizer, train, val)`` where ``train`` and ``val`` are 1-D
    long tensors. The text is split first (the first ``train_frac`` of its
    characters train), then each part is encoded, so that a character model
    and a BPE model are scored on exactly the same validation text. Pass
    ``tokenizer`` to reuse an existing vocabulary (for example a
    checkpoint's); otherwise a character vocabulary is built from ``text``.
    """
    if text is None:
        text = load_text()
    if tokenizer is None:
        tokenizer = CharTokenizer.from_text(text)
    train_text, val_text = train_val_split(text, train_frac)
    return tokenizer, encode_text(train_text, tokenizer), encode_text(val_text, tokenizer)
