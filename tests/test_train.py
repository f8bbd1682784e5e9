"""The training engine (train.py): exact resume, the LR schedule, weight decay groups, evaluation."""

import math

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
    base = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, dropout=0.1, batch_size=4, max_iters=40,
                eval_interval=10, eval_iters=2, warmup_iters=5, lr_decay_iters=40, learning_rate=3e-3,
                min_lr=3e-4, device="cpu", progress=False, seed=7)
    return TrainConfig(**{**base, **kw})


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


def test_presets():
    flagship = get_preset("shakespeare-char")
    assert (flagship.n_layer, flagship.n_head, flagship.n_embd, flagship.block_size) == (6, 6, 384, 256)
    assert (flagship.batch_size, flagship.dropout) == (64, 0.2)
    assert get_preset("cpu-tiny").n_embd == 128
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("huge")


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
    cfg = TrainConfig(block_size=8, batch_size=16, max_iters=30, eval_interval=15, eval_iters=2, dropout=0.0,
                      learning_rate=1e-1, warmup_iters=0, device="cpu", progress=False)
    result = train(cfg, model=model, tokenizer=tok, train_data=tr, val_data=va)
    assert result.model is model and result.iter_num == 30 and not result.interrupted
    assert [h["iter"] for h in result.history] == [0, 15, 30]
    assert set(result.history[0]) == {"iter", "train_loss", "val_loss", "lr", "tokens_per_s"}
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    assert result.out_dir is None and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change,match", [
    (dict(n_head=3), "divisible"),
    (dict(block_size=5000), "longer than the data"),
    (dict(batch_size=0), "batch-size"),
    (dict(resume=True), "out-dir"),
])
def test_bad_settings_raise_config_error(change, match, text):
    with pytest.raises(ConfigError, match=match):
        train(tiny_cfg(max_iters=1, **change), text=text[:3000])
