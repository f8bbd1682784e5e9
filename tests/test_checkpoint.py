"""Checkpoints (checkpoint.py) and the files a training run writes."""

import csv

import pytest
import torch
import torch.nn as nn

import gpt_from_scratch as gfs
from gpt_from_scratch.checkpoint import (
    CheckpointError,
    clean_state_dict,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from gpt_from_scratch.distributed import unwrap_model
from gpt_from_scratch.model import GPT, GPTConfig
from gpt_from_scratch.train import TrainConfig, train




@pytest.fixture(scope="module")
def tok(text):
    return gfs.CharTokenizer.from_text(text)


def tiny_gpt(vocab_size=65, seed=0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, text):
    """A real (tiny) training run written to disk: 4 steps, evaluated every 2."""
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(model=GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, dropout=0.1), batch_size=4,
                      max_iters=4, eval_interval=2, eval_iters=2, warmup_iters=1, device="cpu", progress=False,
                      out_dir=str(out))
    result = train(cfg, text=text[:10_000])
    assert result.iter_num == 4
    return out


# --- what a training run writes ------------------------------------------------------------------


def test_run_writes_all_files_and_no_temporaries(run_dir):
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["best.pt", "ckpt.pt", "log.csv", "loss.png"]


@pytest.mark.parametrize("name", ["ckpt.pt", "best.pt"])
def test_checkpoints_are_plain_data(run_dir, name):
    ckpt = torch.load(run_dir / name, weights_only=True)  # no pickled classes
    for key in ("model", "optimizer", "iter_num", "rng", "config", "tokenizer", "train_config"):
        assert key in ckpt, key
    assert ckpt["format"] == "gpt-from-scratch/1" and ckpt["model_type"] == "gpt"
    assert ckpt["config"]["n_embd"] == 16 and ckpt["train_config"]["max_iters"] == 4
    assert isinstance(ckpt["tokenizer"], dict) and isinstance(ckpt["train_config"], dict)
    assert {"torch", "batch"} <= set(ckpt["rng"])
    assert "state" in ckpt["optimizer"] and "param_groups" in ckpt["optimizer"]
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in ckpt["model"])
    model, tokenizer = load_checkpoint(run_dir / name)
    assert not model.training and tokenizer.vocab_size == ckpt["config"]["vocab_size"]


def test_ckpt_is_the_latest_and_best_is_the_best(run_dir):
    ckpt = torch.load(run_dir / "ckpt.pt", weights_only=True)
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert ckpt["iter_num"] == 4
    vals = {h["iter"]: h["val_loss"] for h in ckpt["history"]}
    assert sorted(vals) == [0, 2, 4]
    assert best["iter_num"] == min(vals, key=vals.get)
    assert best["best_val_loss"] == pytest.approx(min(vals.values()))


def test_log_csv_and_loss_png(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["iter", "train_loss", "val_loss", "lr", "tokens_per_s"]
    assert [int(r[0]) for r in rows[1:]] == [0, 2, 4]
    for r in rows[1:]:
        assert all(float(v) >= 0 for v in r[1:])
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- atomic saves --------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path, tok):
    model = tiny_gpt(tok.vocab_size)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, tok, note="hello", step=3)
    assert path == tmp_path / "sub" / "m.pt"
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temporary file left
    raw = torch.load(path, weights_only=True)
    assert raw["note"] == "hello" and raw["step"] == 3
    loaded, tok2 = load_checkpoint(path)
    assert tok2.to_dict() == tok.to_dict()
    assert not loaded.training
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert loaded.transformer.wte.weight is loaded.lm_head.weight  # still tied after loading


def test_failed_save_leaves_the_old_file_intact(tmp_path, tok, monkeypatch):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_gpt(tok.vocab_size, seed=0), tok)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")  # some bytes reach the temporary file, then it fails
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, tiny_gpt(tok.vocab_size, seed=1), tok)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    load_checkpoint(path)

    def interrupted_save(obj, f, *args, **kwargs):
        f.write(b"half")
        raise KeyboardInterrupt  # Ctrl-C in the middle of a save

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, tiny_gpt(tok.vocab_size, seed=1), tok)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


# --- wrappers: torch.compile and DistributedDataParallel -------------------------------------------


class FakeCompiled(nn.Module):
    """What torch.compile returns: the model as `_orig_mod`, whose state_dict keys gain `_orig_mod.`."""

    def __init__(self, model):
        super().__init__()
        self._orig_mod = model


class FakeDDP(nn.Module):
    """What DistributedDataParallel looks like: the model as `.module`, keys prefixed `module.`."""

    def __init__(self, model):
        super().__init__()
        self.module = model


def test_wrapped_models_save_clean_names(tmp_path, tok):
    model = tiny_gpt(tok.vocab_size)
    wrapped = FakeDDP(FakeCompiled(model))
    assert all(k.startswith("module._orig_mod.") for k in wrapped.state_dict())  # the problem
    assert unwrap_model(wrapped) is model
    cleaned = clean_state_dict(wrapped.state_dict())
    assert list(cleaned) == list(model.state_dict())
    save_checkpoint(tmp_path / "w.pt", wrapped, tok)
    raw = torch.load(tmp_path / "w.pt", weights_only=True)
    assert list(raw["model"]) == list(model.state_dict())
    loaded, _ = load_checkpoint(tmp_path / "w.pt")
    idx = torch.randint(0, tok.vocab_size, (2, 16))
    torch.testing.assert_close(loaded(idx)[0], model.eval()(idx)[0], atol=0, rtol=0)


def test_clean_state_dict_strips_only_prefixes():
    sd = {"_orig_mod.module.a.weight": 1, "module._orig_mod.b": 2, "c.module.d": 3}
    assert clean_state_dict(sd) == {"a.weight": 1, "b": 2, "c.module.d": 3}


def test_other_models_round_trip(tmp_path, tok):
    torch.manual_seed(0)
    for model in (gfs.BigramLanguageModel(tok.vocab_size),
                  gfs.AttentionLanguageModel(tok.vocab_size, block_size=8, n_embd=16, n_head=2, n_layer=1)):
        save_checkpoint(tmp_path / "m.pt", model, tok)
        loaded, _ = load_checkpoint(tmp_path / "m.pt")
        assert type(loaded) is type(model)
        idx = torch.randint(0, tok.vocab_size, (1, 8))
        torch.testing.assert_close(loaded(idx)[0], model.eval()(idx)[0], atol=0, rtol=0)


# --- bad files ----------------------------------------------------------------------------------------


def test_bad_checkpoints_raise_one_line_errors(tmp_path, tok):
    cases = {}
    cases["missing"] = tmp_path / "nope.pt"
    (tmp_path / "garbage.pt").write_bytes(b"\x00\x01 not a checkpoint" * 50)
    cases["garbage"] = tmp_path / "garbage.pt"
    good = save_checkpoint(tmp_path / "good.pt", tiny_gpt(tok.vocab_size), tok)
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["truncated"] = tmp_path / "truncated.pt"
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    cases["foreign"] = tmp_path / "foreign.pt"
    raw = torch.load(good, weights_only=True)
    raw["config"]["n_embd"] = 32  # the weights no longer fit the config
    torch.save(raw, tmp_path / "mismatch.pt")
    cases["mismatch"] = tmp_path / "mismatch.pt"
    for name, path in cases.items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        msg = str(info.value)
        assert "\n" not in msg and str(path.name) in msg, (name, msg)
        assert len(msg) < 400, (name, msg)


def test_pickled_objects_are_refused(tmp_path, tok):
    raw = torch.load(save_checkpoint(tmp_path / "m.pt", tiny_gpt(tok.vocab_size), tok), weights_only=True)
    raw["extra"] = TrainConfig()  # a pickled class: loading it could run code
    torch.save(raw, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="pickled"):
        read_checkpoint(tmp_path / "evil.pt")


def test_shipped_checkpoint_loads():
    model, tok = load_checkpoint(None)  # the checkpoint ships with the repo: its absence fails
    assert not model.training and tok.vocab_size == 65
    out = model.generate(torch.tensor([tok.encode("ROMEO:")]), 20, temperature=0)
    assert tok.decode(out[0].tolist()).startswith("ROMEO:")


# --- export: a small file to ship ------------------------------------------------------------------


@pytest.mark.parametrize("half", [False, True])
def test_export_round_trip(run_dir, tmp_path, half):
    from gpt_from_scratch.cli import main

    out = tmp_path / "shipped.pt"
    assert main(["export", "--checkpoint", str(run_dir / "best.pt"), "--out", str(out)] + (["--half"] if half else [])) == 0
    raw = torch.load(out, weights_only=True)
    assert "optimizer" not in raw and "rng" not in raw  # only what sampling needs, and the training record
    assert raw["iter_num"] == torch.load(run_dir / "best.pt", weights_only=True)["iter_num"]
    assert {v.dtype for v in raw["model"].values() if v.is_floating_point()} == {torch.float16 if half else torch.float32}
    assert out.stat().st_size < (run_dir / "best.pt").stat().st_size
    original, tok = load_checkpoint(run_dir / "best.pt")
    exported, tok2 = load_checkpoint(out)
    assert tok2 == tok and all(p.dtype == torch.float32 for p in exported.parameters())  # float32 again
    idx = torch.tensor([tok.encode("First Citizen:\nB")])  # 16 characters: the whole context
    a, b = original(idx)[0], exported(idx)[0]
    if half:
        torch.testing.assert_close(b, a, atol=2e-3, rtol=1e-3)  # float16 keeps about 3 digits
        assert not torch.equal(a, b)
    else:
        assert torch.equal(a, b)
