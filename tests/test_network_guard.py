"""The autouse network guard in conftest.py blocks the internet but not loopback."""

import socket
import urllib.request

import pytest


def blocked():
    """pytest.raises for the guard's own error (its class lives in conftest.py, not importable by name)."""
    return pytest.raises(AssertionError, match="test tried to reach the network")


def test_non_loopback_connect_is_blocked(block_network):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with blocked():
            s.connect(("192.0.2.1", 80))  # TEST-NET-1, never routed
        with blocked():
            s.connect_ex(("8.8.8.8", 53))
    finally:
        s.close()
    assert len(block_network.attempts) == 2
    block_network.attempts.clear()  # expected here; do not fail this test


def test_urlopen_to_the_internet_is_blocked_even_if_caught(block_network):
    # urllib turns OSErrors into URLError; the guard's error is not an OSError,
    # so it escapes, and it is also recorded so the test fails at teardown.
    with blocked():
        urllib.request.urlopen("http://example.com/", timeout=1)
    assert block_network.attempts
    block_network.attempts.clear()


def test_loopback_and_unix_sockets_still_work(tmp_path):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, port), timeout=2):
                conn, _ = server.accept()
                conn.close()
    finally:
        server.close()

    if hasattr(socket, "AF_UNIX"):
        path = str(tmp_path / "s.sock")
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.bind(path)
        u.listen(1)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect(path)
        finally:
            c.close()
            u.close()
