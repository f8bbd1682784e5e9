"""gpt.py, the whole GPT in one file, must stay equal to the package.

It imports nothing from gpt_from_scratch, so these tests hold the two copies together: under the
same seed the same weights and logits, the same losses for 20 training steps of the same batches
(optimizer groups, learning-rate schedule, clipping, evaluation), the same sampled tokens for the
same generator and settings, and a checkpoint that gfs.load_checkpoint and the `sample` command read.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch

import gpt_from_scratch as gfs

engine = importlib.import_module("gpt_from_scratch.train")  # the module: its get_lr (gfs.train is the function)

ROOT = Path(__file__).resolve().parent.parent
SHAPE = dict(vocab_size=65, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.1)


@pytest.fixture(scope="module")
def one():
    """gpt.py as a module (it is a script at the repository's root, not part of the package)."""
    spec = importlib.util.spec_from_file_location("gpt_one_file", ROOT / "gpt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def both_models(one, seed: int = 0):
    """gpt.py's GPT and the package's, each built right after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    mine = one.GPT(**SHAPE)
    torch.manual_seed(seed)
    theirs = gfs.GPT(gfs.GPTConfig(**mine.config))  # the config gpt.py writes into its checkpoints
    return mine, theirs


def test_same_seed_same_weights_and_logits(one):
    mine, theirs = both_models(one)
    a, b = mine.state_dict(), theirs.state_dict()
    assert list(a) == list(b)  # the same names in the same order: the package loads gpt.py's checkpoints
    for name in a:
        assert torch.equal(a[name], b[name]), name
    idx = torch.randint(0, 65, (3, 16), generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, 65, (3, 16), generator=torch.Generator().manual_seed(2))
    for train_mode in (False, True):  # in training mode the dropout masks must match too
        mine.train(train_mode), theirs.train(train_mode)
        torch.manual_seed(3)
        logits_a, loss_a = mine(idx, targets)
        torch.manual_seed(3)
        logits_b, loss_b = theirs(idx, targets)
        torch.testing.assert_close(logits_a, logits_b, rtol=0, atol=1e-6)
        torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=1e-6)
    assert mine(idx[:, :5])[1] is None


def test_same_vocabulary_and_split(one, text):
    chars, train, val = one.prepare(text)
    tok = gfs.CharTokenizer.from_text(text)
    assert chars == tok.chars and len(chars) == 65
    data = torch.tensor(tok.encode(text))
    pkg_train, pkg_val = gfs.train_val_split(data)
    assert torch.equal(train, pkg_train) and torch.equal(val, pkg_val)
    assert (len(train), len(val)) == (1_003_854, 111_540)
    gen_a, gen_b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x, y = one.get_batch(train, 4, 16, gen_a)
    px, py = gfs.get_batch(pkg_train, 4, 16, generator=gen_b)
    assert torch.equal(x, px) and torch.equal(y, py)


def test_first_20_training_steps_give_the_package_losses(one, text, capsys):
    chars, train, val = one.prepare(text)
    train, val = train[:50_000], val[:10_000]  # enough for 20 small batches, and fast
    cfg = one.parse_settings(["--quick", "--max_iters=20", "--batch_size=8", "--block_size=16", "--warmup_iters=5",
                              "--eval_interval=10", "--eval_iters=3", "--grad_clip=0.5", "--out_dir=", "--seed=7"])
    pkg_cfg = gfs.TrainConfig(
        batch_size=8, max_iters=20, learning_rate=cfg.learning_rate, min_lr=cfg.min_lr, warmup_iters=5,
        weight_decay=cfg.weight_decay, beta1=cfg.beta1, beta2=cfg.beta2, grad_clip=0.5, eval_interval=10,
        eval_iters=3, seed=7, device="cpu", progress=False,
    )
    for step in range(25):  # the schedules agree: warmup, cosine decay, and min_lr after the end
        assert one.get_lr(step, cfg) == pytest.approx(engine.get_lr(step, pkg_cfg), rel=1e-12)
    mine, theirs = both_models(one, seed=7)
    losses = one.train(mine, train, val, cfg)
    result = gfs.train(pkg_cfg, model=theirs, tokenizer=gfs.CharTokenizer(chars), train_data=train, val_data=val)
    assert len(losses) == len(result.step_losses) == 20
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(result.step_losses), rtol=0, atol=1e-5)
    assert sum(losses[-5:]) < sum(losses[:5])  # and they fall
    for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)
    splits = {"train": train, "val": val}
    ours = one.estimate_loss(mine, splits, cfg)
    pkg = gfs.estimate_loss(theirs, splits, 8, 16, 3, seed=7 + 10_000)
    assert ours == pytest.approx(pkg, abs=1e-5)
    printed = capsys.readouterr().out
    assert f"step 20: train {ours['train']:.4f}, val {ours['val']:.4f}" in printed


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.8, 5), (1.5, 1)])
def test_sampler_gives_the_package_tokens(one, temperature, top_k):
    mine, theirs = both_models(one)
    with torch.no_grad():  # sharper distributions than at initialisation, so top-k and temperature matter
        for p in mine.parameters():
            p.normal_(0.0, 0.3)
    theirs.load_state_dict(mine.state_dict())
    prompt = torch.randint(0, 65, (2, 5), generator=torch.Generator().manual_seed(4))
    # 40 new tokens from a 5-token prompt run past block_size (16): the window slides as the package's does
    out = one.generate(mine, prompt, 40, temperature, top_k, torch.Generator().manual_seed(9))
    assert out.shape == (2, 45) and torch.equal(out[:, :5], prompt)
    for use_kv_cache in (False, True):
        pkg = theirs.generate(prompt, 40, temperature=temperature, top_k=top_k, use_kv_cache=use_kv_cache,
                              generator=torch.Generator().manual_seed(9))
        assert torch.equal(out, pkg), f"use_kv_cache={use_kv_cache}"


def test_quick_run_writes_a_checkpoint_the_package_reads(one, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.setdefault("GPT_FROM_SCRATCH_DATA", str(ROOT / "data" / "tinyshakespeare.txt"))
    run = subprocess.run(
        [sys.executable, str(ROOT / "gpt.py"), "--quick", "--max_iters=20", "--eval_interval=10", "--eval_iters=2",
         f"--out_dir={tmp_path}", "--max_new_tokens=30"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "step 0: train" in run.stdout and "step 20: train" in run.stdout
    model, tok = gfs.load_checkpoint(tmp_path / "best.pt")
    assert isinstance(model, gfs.GPT) and tok.vocab_size == 65
    assert (model.config.n_layer, model.config.n_embd, model.config.block_size) == (2, 64, 32)
    sample = subprocess.run(
        [sys.executable, "-m", "gpt_from_scratch", "sample", "--checkpoint", str(tmp_path / "best.pt"),
         "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "1"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert sample.returncode == 0, sample.stderr
    # the command samples what gpt.py's own sampler makes from the same weights, seed and settings
    c = model.config
    mine = one.GPT(c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd, c.dropout)
    mine.load_state_dict(model.state_dict())
    prompt = torch.tensor([tok.encode("ROMEO:")])
    expected = tok.decode(one.generate(mine, prompt, 30, 0.8, None, torch.Generator().manual_seed(1))[0])
    assert sample.stdout.rstrip("\n") == expected.rstrip("\n")


@pytest.mark.parametrize("arg, says", [
    ("--n_layers=4", "unknown option"), ("quick", "unknown option"), ("--n_layer", "unknown option"),
    ("--n_layer=four", "takes a whole number"), ("--top_k=2.5", "takes a whole number"),
    ("--dropout=x", "takes a number"),
])
def test_bad_settings_give_one_error_line(one, capsys, arg, says):
    with pytest.raises(SystemExit) as exit_info:
        one.parse_settings([arg])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1


def test_settings_override_in_order(one):
    cfg = one.parse_settings(["--max_iters=7", "--quick", "--learning_rate=1", "--top_k=3", "--device=cpu"])
    assert (cfg.max_iters, cfg.n_embd, cfg.learning_rate, cfg.top_k, cfg.device) == (7, 64, 1.0, 3, "cpu")
    assert one.parse_settings([]).n_embd == 384 and one.parse_settings([]).block_size == 256


def test_download_is_checked_and_offline_says_what_to_do(one, monkeypatch, tmp_path, capsys, text):
    monkeypatch.delenv("GPT_FROM_SCRATCH_DATA", raising=False)
    monkeypatch.setattr(one, "__file__", str(tmp_path / "gpt.py"))  # the cache: tmp_path/data/tinyshakespeare.txt

    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(one.urllib.request, "urlopen", offline)
    with pytest.raises(SystemExit) as exit_info:
        one.load_text()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and err[-1].startswith("error: ") and "GPT_FROM_SCRATCH_DATA" in err[-1]
    monkeypatch.setattr(one.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not Shakespeare"))
    with pytest.raises(SystemExit):
        one.load_text()
    assert not (tmp_path / "data" / "tinyshakespeare.txt").exists()
    monkeypatch.setattr(one.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(text.encode("utf-8")))
    assert one.load_text() == text and (tmp_path / "data" / "tinyshakespeare.txt").is_file()
    monkeypatch.setattr(one.urllib.request, "urlopen", offline)
    assert one.load_text() == text  # downloaded once: the cached copy is read from now on
    monkeypatch.setenv("GPT_FROM_SCRATCH_DATA", str(tmp_path / "missing.txt"))
    with pytest.raises(SystemExit):
        one.load_text()
