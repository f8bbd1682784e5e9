"""Shared test setup.

* (The data path and quick mode are set in the repository's top-level conftest.py.)
* Blocks every network connection except loopback and Unix sockets, so no test
  can quietly depend on the internet.
* ``text``: Tiny Shakespeare, loaded once per session.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- #
# Network guard
# --------------------------------------------------------------------------- #
class NetworkBlocked(AssertionError):
    """Raised when a test tries to reach a non-loopback address.

    An AssertionError rather than an OSError, so that code which handles
    network failures (urllib, our own offline handling) cannot swallow it.
    """


_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_local_host(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) means the local machine
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0]
    if host == "" or host.lower() in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a real host name: resolving it would touch the network
    if ip.is_loopback:
        return True
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(mapped is not None and mapped.is_loopback)


def _is_local_address(family: int, address: object) -> bool:
    if family == getattr(socket, "AF_UNIX", object()):
        return True
    if isinstance(address, (tuple, list)) and address:
        return _is_local_host(address[0])
    return isinstance(address, (str, bytes))  # AF_UNIX-style path


class _Guard:
    def __init__(self) -> None:
        self.attempts: list[str] = []

    def check(self, what: str, family: int, address: object) -> None:
        if not _is_local_address(family, address):
            msg = f"test tried to reach the network: {what} {address!r}"
            self.attempts.append(msg)
            raise NetworkBlocked(msg)


@pytest.fixture(autouse=True)
def block_network(monkeypatch):
    """Fail any test that connects to a non-loopback address (or resolves a real host name)."""
    guard = _Guard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        guard.check("connect", self.family, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        guard.check("connect_ex", self.family, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local_host(host):
            guard.check("getaddrinfo", socket.AF_INET, (host, None))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
    if guard.attempts:
        pytest.fail("; ".join(guard.attempts), pytrace=False)


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="session")
def text() -> str:
    """Tiny Shakespeare (from $GPT_FROM_SCRATCH_DATA, the cache, or one download)."""
    from gpt_from_scratch.data import load_text

    return load_text()


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests' models are tiny: one thread is fastest, and does not fight other processes for cores."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
