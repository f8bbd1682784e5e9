import functools
import hashlib
import http.server
import socket
import threading
import time
import urllib.error

import pytest
import torch

from gpt_from_scratch import data as D
from gpt_from_scratch.data import (
    DATA_ENV,
    DATA_NUM_CHARS,
    DATA_SHA256,
    DATA_URL,
    DataError,
    download_text,
    load_text,
    prepare_data,
    train_val_split,
)
from gpt_from_scratch.tokenizer import CharTokenizer

SMALL = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
SMALL_SHA = hashlib.sha256(SMALL.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- #
# The real text
# --------------------------------------------------------------------------- #
def test_load_text_is_tiny_shakespeare(text):
    assert isinstance(text, str)
    assert len(text) == DATA_NUM_CHARS
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == DATA_SHA256
    assert text.startswith("First Citizen:\nBefore we proceed")


def test_split_sizes_and_boundary(text):
    train, val = train_val_split(text)
    assert (len(train), len(val)) == (1_003_854, 111_540)
    assert train + val == text
    assert val[0] == text[len(train)]
    assert val == text[len(train):]


def test_split_works_on_lists_and_tensors():
    seq = list(range(10))
    assert train_val_split(seq) == (list(range(9)), [9])
    assert train_val_split(seq, 0.5) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    t = torch.arange(100)
    tr, va = train_val_split(t, 0.8)
    assert tr.shape == (80,) and va.shape == (20,)
    assert torch.equal(torch.cat([tr, va]), t)
    assert va[0].item() == tr[-1].item() + 1


@pytest.mark.parametrize("frac", [0, 1, 1.5, -0.1, "0.9", True])
def test_split_rejects_bad_fraction(frac):
    with pytest.raises(ValueError):
        train_val_split("abcdef", frac)


def test_prepare_data(text):
    tok, train, val = prepare_data(text)
    assert tok == CharTokenizer.from_text(text)
    assert train.dtype == torch.long and val.dtype == torch.long
    assert train.dim() == 1 and val.dim() == 1
    assert (train.numel(), val.numel()) == (1_003_854, 111_540)
    assert tok.decode(train[:200]) == text[:200]
    assert tok.decode(val[:200]) == text[1_003_854:1_003_854 + 200]
    assert tok.decode(val[-50:]) == text[-50:]
    # the vectorised encoder agrees with the tokenizer everywhere
    full = torch.cat([train, val])
    assert torch.equal(full, torch.tensor(tok.encode(text), dtype=torch.long))


def test_prepare_data_with_existing_tokenizer_rejects_unknown_chars():
    tok = CharTokenizer.from_text("abc ")
    t, train, val = prepare_data("abc cab " * 10, tokenizer=tok)
    assert t is tok and train.numel() + val.numel() == 80
    with pytest.raises(ValueError, match="'z'"):
        prepare_data("abcz", tokenizer=tok)


def test_encode_text_matches_encode_on_unicode():
    s = "h\u00e9llo w\u00f6rld \U0001F600 \u20ac"
    tok = CharTokenizer.from_text(s)
    assert D.encode_text(s, tok).tolist() == tok.encode(s)
    assert D.encode_text("", tok).numel() == 0


# --------------------------------------------------------------------------- #
# Explicit paths
# --------------------------------------------------------------------------- #
def test_explicit_path_can_be_any_text(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    p = tmp_path / "mine.txt"
    p.write_text("to be or not to be\n", encoding="utf-8")
    assert load_text(p) == "to be or not to be\n"
    assert load_text(str(p)) == "to be or not to be\n"


def test_path_argument_beats_env(tmp_path, monkeypatch):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("from argument", encoding="utf-8")
    b.write_text("from env", encoding="utf-8")
    monkeypatch.setenv(DATA_ENV, str(b))
    assert load_text(a) == "from argument"
    assert load_text() == "from env"


def test_missing_explicit_path(tmp_path, monkeypatch):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError) as excinfo:
        load_text(missing)
    assert str(missing) in str(excinfo.value)
    monkeypatch.setenv(DATA_ENV, str(missing))
    with pytest.raises(DataError) as excinfo:
        load_text()
    assert str(missing) in str(excinfo.value) and DATA_ENV in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_non_utf8_file(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        load_text(p)


# --------------------------------------------------------------------------- #
# Cache location
# --------------------------------------------------------------------------- #
def test_cache_path_in_a_checkout():
    root = D._checkout_data_dir()
    assert root is not None  # the tests run from a checkout
    assert D.cache_path() == root / "tinyshakespeare.txt"
    assert root.name == "data" and (root.parent / "pyproject.toml").is_file()


def test_cache_path_when_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "_checkout_data_dir", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert D.cache_path() == tmp_path / "gpt_from_scratch" / "tinyshakespeare.txt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert D.cache_path() == tmp_path / "home" / ".cache" / "gpt_from_scratch" / "tinyshakespeare.txt"
    assert D.cache_path(tmp_path / "c") == tmp_path / "c" / "tinyshakespeare.txt"


# --------------------------------------------------------------------------- #
# Downloads, against a local HTTP server
# --------------------------------------------------------------------------- #
class _Server:
    def __init__(self, root):
        self.requests = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "input.txt").write_bytes(SMALL.encode("utf-8"))
    s = _Server(root)
    yield s
    s.close()


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)


def _closed_port_url():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/input.txt"


def test_download_writes_atomically_and_caches(server, tmp_path, no_env, capsys):
    cache = tmp_path / "cache"
    url = server.base + "/input.txt"
    assert load_text(url=url, cache=cache, sha256=SMALL_SHA) == SMALL
    assert server.requests == 1
    assert sorted(p.name for p in cache.iterdir()) == ["tinyshakespeare.txt"]  # no temp files
    assert (cache / "tinyshakespeare.txt").read_text(encoding="utf-8") == SMALL
    assert "Downloading" in capsys.readouterr().err

    # second call: served from the cache, the server is not asked again
    assert load_text(url=url, cache=cache, sha256=SMALL_SHA) == SMALL
    assert server.requests == 1
    # ... even when the network is gone
    assert load_text(url=_closed_port_url(), cache=cache, sha256=SMALL_SHA) == SMALL


def test_corrupt_cache_is_downloaded_again(server, tmp_path, no_env):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "tinyshakespeare.txt").write_text("garbage", encoding="utf-8")
    assert load_text(url=server.base + "/input.txt", cache=cache, sha256=SMALL_SHA) == SMALL
    assert server.requests == 1
    assert (cache / "tinyshakespeare.txt").read_text(encoding="utf-8") == SMALL


def test_sha_mismatch_leaves_nothing_behind(server, tmp_path):
    dest_dir = tmp_path / "dest"
    with pytest.raises(DataError, match="sha256"):
        download_text(server.base + "/input.txt", dest_dir / "t.txt", sha256="0" * 64, quiet=True)
    assert list(dest_dir.iterdir()) == []


def test_sha_mismatch_does_not_replace_a_good_file(server, tmp_path):
    dest = tmp_path / "t.txt"
    dest.write_text("old", encoding="utf-8")
    with pytest.raises(DataError):
        download_text(server.base + "/input.txt", dest, sha256="0" * 64, quiet=True)
    assert dest.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name != "www"] == ["t.txt"]


def test_http_error_leaves_nothing_behind(server, tmp_path):
    dest_dir = tmp_path / "dest"
    with pytest.raises(DataError, match="404"):
        download_text(server.base + "/missing.txt", dest_dir / "t.txt", sha256=None, quiet=True)
    assert list(dest_dir.iterdir()) == []


def test_offline_closed_port_is_quick_and_helpful(tmp_path, no_env):
    url = _closed_port_url()
    cache = tmp_path / "cache"
    start = time.perf_counter()
    with pytest.raises(DataError) as excinfo:
        load_text(url=url, cache=cache)
    assert time.perf_counter() - start < 1.0
    msg = str(excinfo.value)
    assert url in msg and DATA_ENV in msg and "\n" not in msg
    assert list(cache.iterdir()) == []


def test_offline_message_names_the_canonical_url(tmp_path, no_env, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(D.urllib.request, "urlopen", offline)
    start = time.perf_counter()
    with pytest.raises(DataError) as excinfo:
        load_text(cache=tmp_path / "cache")
    assert time.perf_counter() - start < 1.0
    msg = str(excinfo.value)
    assert DATA_URL in msg and DATA_ENV in msg
    assert list((tmp_path / "cache").iterdir()) == []


def test_timeout_is_reported_as_offline(tmp_path, monkeypatch):
    def slow(*args, **kwargs):
        assert kwargs.get("timeout") is not None and kwargs["timeout"] <= 10
        raise TimeoutError("timed out")

    monkeypatch.setattr(D.urllib.request, "urlopen", slow)
    with pytest.raises(DataError, match=DATA_ENV):
        download_text(DATA_URL, tmp_path / "t.txt", quiet=True)
    assert list(tmp_path.iterdir()) == []
