"""The training engine (train.py): exact resume, the LR schedule, weight decay groups, evaluation."""

import dataclasses
import math
import sys

import pytest
import torch
import torch.nn as nn

import gpt_from_scratch as gfs
from gpt_from_scratch.model import GPT, GPTConfig
from gpt_from_scratch.train import (
    ConfigError,
    TrainConfig,
    configure_optimizer,
    estimate_loss,
    evaluate_split,
    get_lr,
    get_preset,
    train,
)




def tiny_cfg(**kw) -> TrainConfig:
    base = TrainConfig(
        model=GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, dropout=0.1), batch_size=4, max_iters=40,
        eval_interval=10, eval_iters=2, warmup_iters=5, lr_decay_iters=40, learning_rate=3e-3,
        min_lr=3e-4, device="cpu", progress=False, seed=7,
    )
    return base.replace(**kw)


# --- resume is exact ------------------------------------------------------------------------


def test_resume_equals_training_straight_through(tmp_path, text):
    small = text[:20_000]
    # lr_decay_iters=40 in both: the first half stops at max_iters=20 but keeps the 40-step schedule
    straight = train(tiny_cfg(max_iters=40), text=small)
    first = train(tiny_cfg(max_iters=20, out_dir=str(tmp_path)), text=small)
    assert first.iter_num == 20 and (tmp_path / "ckpt.pt").is_file()
    second = train(tiny_cfg(max_iters=40, out_dir=str(tmp_path), resume=True), text=small)
    assert second.iter_num == 40

    assert len(straight.step_losses) == 40
    assert len(first.step_losses) == 20 and len(second.step_losses) == 20
    a = torch.tensor(straight.step_losses)
    b = torch.tensor(first.step_losses + second.step_losses)
    torch.testing.assert_close(b, a, atol=1e-6, rtol=0)
    assert a[:5].mean() > a[-5:].mean()  # it did learn something

    sa, sb = straight.model.state_dict(), second.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sb[k], sa[k], atol=1e-6, rtol=0, msg=k)
    # the evaluations agree too, and the resumed history continues the first one
    assert [h["iter"] for h in straight.history] == [0, 10, 20, 30, 40]
    assert [h["iter"] for h in second.history] == [0, 10, 20, 30, 40]
    for h1, h2 in zip(straight.history, second.history):
        assert abs(h1["val_loss"] - h2["val_loss"]) < 1e-6 and abs(h1["lr"] - h2["lr"]) < 1e-12
    assert second.best_val_loss == pytest.approx(min(h["val_loss"] for h in straight.history), abs=1e-6)


def test_without_the_rng_state_resume_would_differ(tmp_path, text):
    """The check above can fail: a resume that loses the RNG state (dropout masks, batch order) differs."""
    small = text[:20_000]
    straight = train(tiny_cfg(max_iters=24), text=small)
    train(tiny_cfg(max_iters=12, out_dir=str(tmp_path)), text=small)
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    ckpt["rng"] = {}  # as if it had not been saved
    torch.save(ckpt, tmp_path / "ckpt.pt")
    second = train(tiny_cfg(max_iters=24, out_dir=str(tmp_path), resume=True), text=small)
    assert not torch.allclose(torch.tensor(second.step_losses), torch.tensor(straight.step_losses[12:]), atol=1e-6)


# --- the learning rate schedule ------------------------------------------------------------


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=1000)
    assert get_lr(0, cfg) == pytest.approx(1e-3 / 101)
    assert 0 < get_lr(0, cfg) < get_lr(50, cfg) < get_lr(99, cfg) < 1e-3
    assert get_lr(100, cfg) == pytest.approx(1e-3)  # the peak, at the end of warmup
    assert get_lr(550, cfg) == pytest.approx((1e-3 + 1e-4) / 2)  # half way down the cosine
    assert get_lr(1000, cfg) == pytest.approx(1e-4)  # the end: min_lr
    assert get_lr(5000, cfg) == pytest.approx(1e-4)
    lrs = [get_lr(i, cfg) for i in range(100, 1001)]
    assert all(x >= y for x, y in zip(lrs, lrs[1:]))  # never goes up after warmup
    # a cosine, not a line: a quarter of the way down it has lost less than a quarter of the range
    assert get_lr(325, cfg) > 1e-4 + 0.75 * (1e-3 - 1e-4)
    # lr_decay_iters overrides max_iters; decay_lr=False is constant
    assert get_lr(600, cfg.replace(lr_decay_iters=600)) == pytest.approx(1e-4)
    assert all(get_lr(i, cfg.replace(decay_lr=False)) == 1e-3 for i in (0, 50, 100, 999, 5000))


def test_weight_decay_only_on_matrices():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32, bias=True))
    cfg = TrainConfig(weight_decay=0.1, learning_rate=1e-3, beta1=0.9, beta2=0.99)
    opt = configure_optimizer(model, cfg, torch.device("cpu"))
    assert isinstance(opt, torch.optim.AdamW)
    decay = [g for g in opt.param_groups if g["weight_decay"] > 0]
    no_decay = [g for g in opt.param_groups if g["weight_decay"] == 0]
    assert len(decay) == 1 and decay[0]["weight_decay"] == 0.1 and len(no_decay) == 1
    assert all(p.dim() == 2 for p in decay[0]["params"])
    assert all(p.dim() == 1 for p in no_decay[0]["params"])
    assert no_decay[0]["params"]  # biases and LayerNorm gains exist here
    # every parameter exactly once (the tied embedding too)
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay[0]["params"]}
    assert "transformer.wte.weight" in decayed and "transformer.wpe.weight" in decayed  # wte is lm_head
    assert not any(n.endswith(".bias") or ".ln_" in n for n in decayed)
    assert opt.defaults["betas"] == (0.9, 0.99)


def test_presets_have_the_advertised_sizes():
    """tiny, small, medium and large are about 10M, 25M, 80M and 350M parameters (README.md's table)."""
    for name, millions in (("tiny", 10), ("small", 25), ("medium", 80), ("large", 350)):
        with torch.device("meta"):  # shapes only: no memory for the 350M model
            n = GPT(get_preset(name).model).num_params()
        assert abs(n / 1e6 - millions) / millions < 0.15, (name, n)
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("huge")


def test_replace_routes_model_fields_into_the_model_config():
    cfg = get_preset("cpu-tiny").replace(n_layer=1, dropout=0.3, batch_size=2)
    assert (cfg.model.n_layer, cfg.model.dropout, cfg.batch_size) == (1, 0.3, 2)
    assert get_preset("cpu-tiny").model.n_layer == 4  # the preset itself is unchanged
    assert TrainConfig().replace(block_size=8).model.block_size == 8  # block_size is always the model's
    assert TrainConfig(train_window=8).window(GPT(get_preset("cpu-tiny").model)) == 8
    assert TrainConfig().window(GPT(get_preset("cpu-tiny").model)) == 64  # None: the model's context
    bpe = get_preset("cpu-tiny").replace(tokenizer="bpe", bpe_vocab_size=1024)
    assert bpe.bpe_vocab_size == 1024 and bpe.model.vocab_size == 65  # the tokenizer's size, not the model's
    with pytest.raises(ConfigError, match="bpe_vocab_size"):
        get_preset("cpu-tiny").replace(vocab_size=1024)
    with pytest.raises(ConfigError, match="divisible"):
        get_preset("cpu-tiny").replace(n_head=3)


# --- evaluation -----------------------------------------------------------------------------


class RecordingBigram(nn.Module):
    """A fake model: fixed next-token logits per current token; it records every input it sees."""

    def __init__(self, table: torch.Tensor, block_size: int):
        super().__init__()
        self.table = nn.Parameter(table.clone(), requires_grad=False)
        self.block_size = block_size
        self.seen = []

    def forward(self, idx, targets=None):
        self.seen.append(idx.clone())
        return self.table[idx], None


def test_evaluate_split_covers_every_character_once():
    V, block = 7, 8
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, V, (103,), generator=g)  # 102 predictions: 12 full windows and one of 6
    table = torch.randn(V, V, generator=g)
    model = RecordingBigram(table, block)
    loss = evaluate_split(model, data, batch_size=5)
    # the inputs, in order, are every character but the last, each exactly once
    inputs = torch.cat([x.flatten() for x in model.seen])
    assert torch.equal(inputs, data[:-1])
    assert max(x.size(1) for x in model.seen) == block
    # the mean over characters (not over windows) of -log p(next | current)
    logp = torch.log_softmax(table, dim=-1)
    expected = -logp[data[:-1], data[1:]].double().mean().item()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_evaluate_split_of_a_uniform_model_is_ln_v():
    V = 11
    model = RecordingBigram(torch.zeros(V, V), block_size=16)
    data = torch.randint(0, V, (1000,))
    assert evaluate_split(model, data, batch_size=3) == pytest.approx(math.log(V), rel=1e-6)
    assert evaluate_split(model, data, block_size=5, batch_size=64) == pytest.approx(math.log(V), rel=1e-6)


def test_evaluate_split_matches_the_model_loss_on_one_window():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.3))
    model.train()
    data = torch.randint(0, 65, (17,))
    _, loss = model.eval()(data[None, :16], data[None, 1:])
    model.train()
    assert evaluate_split(model, data) == pytest.approx(loss.item(), rel=1e-5)
    assert model.training  # restored
    with pytest.raises(ValueError):
        evaluate_split(model, data[:1])


def test_estimate_loss_is_seeded_and_leaves_the_rng_alone():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16))
    data = torch.randint(0, 65, (500,))
    state = torch.get_rng_state()
    a = estimate_loss(model, {"val": data}, 4, 16, 3, seed=1)
    b = estimate_loss(model, {"val": data}, 4, 16, 3, seed=1)
    c = estimate_loss(model, {"val": data}, 4, 16, 3, seed=2)
    assert a == b and a != c
    assert torch.equal(torch.get_rng_state(), state)


# --- the loop with other models and bad settings --------------------------------------------------


def test_train_any_model_without_writing(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    tok, tr, va = gfs.prepare_data(text[:5000])
    torch.manual_seed(0)
    model = gfs.BigramLanguageModel(tok.vocab_size)
    cfg = TrainConfig(train_window=8, batch_size=16, max_iters=30, eval_interval=15, eval_iters=2,
                      learning_rate=1e-1, warmup_iters=0, device="cpu", progress=False)
    result = train(cfg, model=model, tokenizer=tok, train_data=tr, val_data=va)
    assert result.model is model and result.iter_num == 30 and not result.interrupted
    assert [h["iter"] for h in result.history] == [0, 15, 30]
    assert set(result.history[0]) == {"iter", "train_loss", "val_loss", "lr", "tokens_per_s", "train_s"}
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    assert result.out_dir is None and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change,match", [
    (dict(block_size=5000), "longer than the data"),
    (dict(batch_size=0), "batch-size"),
    (dict(resume=True), "out-dir"),
])
def test_bad_settings_raise_config_error(change, match, text):
    with pytest.raises(ConfigError, match=match):
        train(tiny_cfg(max_iters=1, **change), text=text[:3000])


# --- paths that only a GPU run would otherwise reach -------------------------------------------


def test_gradient_accumulation_equals_one_big_batch(text):
    """k micro-steps of b examples give the same update as one step of k*b (dropout 0, same examples)."""
    tok, tr, va = gfs.prepare_data(text[:20_000])
    results, norms = [], {}
    for batch_size, grad_accum in ((8, 1), (2, 4)):
        cfg = tiny_cfg(dropout=0.0, batch_size=batch_size, grad_accum=grad_accum, max_iters=3, eval_interval=100)
        torch.manual_seed(0)
        model = GPT(dataclasses.replace(cfg.model, vocab_size=tok.vocab_size))
        # the same 8 windows every step, whichever way they are cut into micro-batches
        windows = [gfs.get_batch(tr, 8, 16, generator=torch.Generator().manual_seed(s)) for s in range(3)]
        feed = iter([(x[i:i + batch_size], y[i:i + batch_size]) for x, y in windows
                     for i in range(0, 8, batch_size)])
        with pytest.MonkeyPatch.context() as mp:
            engine = sys.modules["gpt_from_scratch.train"]
            mp.setattr(engine, "get_batch", lambda *a, **k: next(feed))  # the training batches
            mp.setattr(engine, "estimate_loss", lambda *a, **k: {"train": 0.0, "val": 0.0})  # no eval batches
            real_clip, seen = torch.nn.utils.clip_grad_norm_, norms.setdefault(grad_accum, [])
            # the gradient norm before clipping: Adam would hide a gradient k times too large
            mp.setattr(torch.nn.utils, "clip_grad_norm_", lambda p, c: seen.append(real_clip(p, c).item()))
            results.append(train(cfg, model=model, tokenizer=tok, train_data=tr, val_data=va))
    assert norms[4] == pytest.approx(norms[1], rel=1e-5) and len(norms[1]) == 3
    # the loss reported for a step is the mean over all its micro-batches, as for one big batch
    torch.testing.assert_close(torch.tensor(results[1].step_losses), torch.tensor(results[0].step_losses))
    one, accumulated = (dict(r.model.named_parameters()) for r in results)
    for name in one:
        torch.testing.assert_close(accumulated[name], one[name], atol=2e-6, rtol=1e-5, msg=name)
    assert not torch.equal(one["transformer.h.0.attn.c_attn.weight"],  # the check can fail: it trained
                           GPT(dataclasses.replace(tiny_cfg().model, vocab_size=tok.vocab_size)
                               ).transformer.h[0].attn.c_attn.weight)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_mixed_precision_step_on_cpu(text, dtype):
    """bf16 autocast (and fp16 with its grad scaler, where this torch supports it) train on a CPU."""
    if dtype == "float16":
        try:
            with torch.autocast("cpu", dtype=torch.float16):
                torch.ones(2, 2) @ torch.ones(2, 2)
        except RuntimeError:
            pytest.skip("this torch has no float16 autocast on CPU")
    result = train(tiny_cfg(dtype=dtype, max_iters=4, eval_interval=4), text=text[:5000])
    losses = torch.tensor(result.step_losses)
    assert len(losses) == 4 and torch.isfinite(losses).all()
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # master weights stay fp32
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]


def test_grad_scaler_is_used_for_float16_only():
    from gpt_from_scratch.train import make_grad_scaler

    assert not make_grad_scaler(torch.device("cpu"), enabled=False).is_enabled()
    scaler = make_grad_scaler(torch.device("cpu"), enabled=True)
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler.scale((w * 2).sum()).backward()
    assert w.grad[0].item() > 2  # scaled up, so small fp16 gradients do not underflow
    scaler.step(opt)  # unscales first: the update is the true gradient's
    scaler.update()
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.8))


@pytest.mark.parametrize("capability,expected", [
    ((7, 5), torch.float16),   # T4: no real bf16, so fp16 with a grad scaler
    ((6, 0), torch.float16),   # P100
    ((8, 0), torch.bfloat16),  # A100
    ((9, 0), torch.bfloat16),  # H100, H200
])
def test_auto_dtype_follows_the_gpu(monkeypatch, capability, expected):
    from gpt_from_scratch.train import resolve_dtype

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_dtype("auto", torch.device("cuda")) == expected
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("float32", torch.device("cuda")) == torch.float32
    with pytest.raises(ConfigError, match="unknown dtype"):
        resolve_dtype("int8", torch.device("cpu"))


def test_a_model_that_disagrees_with_the_config_is_an_error(text):
    tok, tr, va = gfs.prepare_data(text[:5000])
    cfg = tiny_cfg()
    model = GPT(dataclasses.replace(cfg.model, vocab_size=tok.vocab_size, n_layer=3))
    with pytest.raises(ConfigError, match="n_layer=2 vs 3"):
        train(cfg, model=model, tokenizer=tok, train_data=tr, val_data=va)
    with pytest.raises(ConfigError, match="leave TrainConfig.model unset"):
        train(cfg, model=gfs.BigramLanguageModel(tok.vocab_size), tokenizer=tok, train_data=tr, val_data=va)
    # without a model config, or with the matching one, the model trains
    same = GPT(dataclasses.replace(cfg.model, vocab_size=tok.vocab_size))
    assert train(cfg.replace(max_iters=1), model=same, tokenizer=tok, train_data=tr, val_data=va).iter_num == 1


def test_ctrl_c_is_announced_by_the_master_process_only(capsys, monkeypatch):
    from gpt_from_scratch.train import _StopFlag

    monkeypatch.setenv("RANK", "0")  # the environment is not asked: Distributed says who speaks
    quiet, loud = _StopFlag(master=False), _StopFlag(master=True)
    quiet._handle(None, None)
    assert quiet.set and capsys.readouterr().err == ""
    loud._handle(None, None)
    assert loud.set and "Ctrl-C" in capsys.readouterr().err


def test_logs_and_plots_name_the_unit_of_the_loss(text, capsys, tmp_path):
    import matplotlib.pyplot as plt

    from gpt_from_scratch.plotting import plot_losses

    train(tiny_cfg(tokenizer="bpe", bpe_vocab_size=270, max_iters=2, eval_interval=2, eval_iters=1), text=text[:4000])
    assert "losses in nats per token" in capsys.readouterr().out
    train(tiny_cfg(max_iters=2, eval_interval=2, eval_iters=1), text=text[:4000])
    assert "losses in nats per character" in capsys.readouterr().out
    history = [dict(iter=0, train_loss=3.0, val_loss=3.1)]
    assert plot_losses(history, unit=gfs.BPETokenizer.unit).get_ylabel() == "cross-entropy loss (nats per token)"
    assert "per character" in plot_losses(history, unit=gfs.CharTokenizer.unit).get_ylabel()
    plt.close("all")


def test_gradient_checkpointing_through_the_trainer_gives_the_same_losses(text, monkeypatch):
    """Recomputing activations in the backward pass changes memory, not numbers (dropout masks included)."""
    import torch.utils.checkpoint

    calls, real = [], torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    tok, tr, va = gfs.prepare_data(text[:20_000])
    runs = {}
    for on in (False, True):
        calls.clear()
        cfg = tiny_cfg(gradient_checkpointing=on, max_iters=6, eval_interval=3)
        runs[on] = train(cfg, tokenizer=tok, train_data=tr, val_data=va)
        assert len(calls) == (6 * 2 if on else 0)  # each training step checkpoints both blocks; evaluation never
    assert len(runs[True].step_losses) == 6
    torch.testing.assert_close(runs[True].step_losses, runs[False].step_losses, rtol=1e-5, atol=1e-6)
    for a, b in zip(runs[True].model.parameters(), runs[False].model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
