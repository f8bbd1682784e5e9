import io

import pytest
import torch

from gpt_from_scratch import device as dev
from gpt_from_scratch.device import get_device


def _set_mps(monkeypatch, available):
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: available)
    elif available:
        pytest.skip("this torch build has no torch.backends.mps")


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _set_mps(monkeypatch, False)


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU 80GB")


def test_auto_falls_back_to_cpu_and_says_so(no_gpu, capsys):
    for pref in ("auto", None, "AUTO"):
        d = get_device(pref)
        assert isinstance(d, torch.device) and d.type == "cpu"
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("device: cpu (")
    assert "thread" in out


def test_default_argument_is_auto(no_gpu):
    assert get_device(verbose=False) == torch.device("cpu")


def test_prints_to_file_and_verbose_false(no_gpu, capsys):
    buf = io.StringIO()
    get_device("cpu", file=buf)
    assert buf.getvalue().startswith("device: cpu") and buf.getvalue().count("\n") == 1
    get_device("cpu", verbose=False)
    assert capsys.readouterr().out == ""


def test_auto_prefers_cuda(fake_cuda, capsys):
    d = get_device("auto")
    assert d == torch.device("cuda")
    assert capsys.readouterr().out.strip() == "device: cuda (Fake GPU 80GB)"


def test_explicit_cuda_index(fake_cuda, monkeypatch):
    assert get_device("cuda:0", verbose=False) == torch.device("cuda:0")
    with pytest.raises(ValueError, match="cuda:1"):
        get_device("cuda:1", verbose=False)


def test_auto_picks_mps_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _set_mps(monkeypatch, True)
    assert get_device() == torch.device("mps")
    assert "device: mps (Apple GPU)" in capsys.readouterr().out


def test_cuda_requested_but_missing(no_gpu):
    with pytest.raises(ValueError) as excinfo:
        get_device("cuda", verbose=False)
    msg = str(excinfo.value)
    assert "CUDA is not available" in msg and "cpu" in msg and "\n" not in msg


def test_mps_requested_but_missing(no_gpu):
    with pytest.raises(ValueError, match="not available"):
        get_device("mps", verbose=False)


def test_torch_device_objects_are_accepted(no_gpu):
    assert get_device(torch.device("cpu"), verbose=False) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["banana", "gpu", "tpu", "", 3])
def test_unknown_device_strings(no_gpu, bad):
    with pytest.raises(ValueError):
        get_device(bad, verbose=False)


def test_mps_check_is_safe_without_backend(monkeypatch):
    monkeypatch.delattr(torch.backends, "mps", raising=False)
    assert dev.mps_available() is False
