"""Muon (muon.py): Newton-Schulz orthogonalisation, the parameter groups, a falling loss, exact resume."""

import pytest
import torch

from gpt_from_scratch.model import GPT, GPTConfig
from gpt_from_scratch.muon import NS_BAND, MuonWithAdamW, make_muon, muon_param_groups, muon_scale, newton_schulz
from gpt_from_scratch.train import ConfigError, TrainConfig, configure_optimizer, train


@pytest.mark.parametrize("shape", [(64, 256), (256, 64), (96, 96)])
def test_newton_schulz_gives_a_near_orthogonal_matrix(shape):
    gen = torch.Generator().manual_seed(0)
    # singular values spread over two orders of magnitude (0.01 to 1), and a large overall scale
    u, _ = torch.linalg.qr(torch.randn(shape[0], min(shape), generator=gen))
    v, _ = torch.linalg.qr(torch.randn(shape[1], min(shape), generator=gen))
    s = torch.logspace(-2, 0, min(shape))
    g = 37.0 * u @ torch.diag(s) @ v.T
    x = newton_schulz(g)
    assert x.shape == g.shape
    sv = torch.linalg.svdvals(x)
    lo, hi = NS_BAND
    assert sv.min() > lo and sv.max() < hi, (sv.min(), sv.max())
    # the same directions as g: x is close to u v^T, the exact orthogonal polar factor
    polar = u @ v.T
    assert (x - polar).norm() / polar.norm() < 0.35
    # and it is far from g's own (unequal) spectrum: 5 steps lift the smallest singular value 50x
    assert sv.min() / sv.max() > 0.5


def test_newton_schulz_keeps_the_dtype():
    g = torch.randn(8, 16, dtype=torch.float64)
    assert newton_schulz(g).dtype == torch.float64


def test_muon_scale_makes_every_update_rms_one_over_sqrt_fan_in():
    for fan_out, fan_in in [(384, 128), (128, 512), (128, 128)]:
        q, _ = torch.linalg.qr(torch.randn(max(fan_out, fan_in), min(fan_out, fan_in)))
        ortho = q if fan_out >= fan_in else q.T  # (fan_out, fan_in), all singular values 1
        rms = (ortho * muon_scale(ortho.shape)).pow(2).mean().sqrt()
        assert rms == pytest.approx(fan_in**-0.5, rel=1e-4)


def small_model(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0, **kw))


@pytest.mark.parametrize("tie", [True, False])
def test_param_groups_muon_for_block_matrices_adamw_for_the_rest(tie):
    model = small_model(tie_weights=tie)
    muon, decay, no_decay = muon_param_groups(model, lr=1e-3, muon_lr=0.02, weight_decay=0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    muon_names = sorted(names[id(p)] for p in muon["params"])
    assert muon_names == sorted(n for n, p in model.named_parameters() if p.dim() == 2 and ".h." in n)
    assert len(muon_names) == 2 * 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    adam_names = sorted(names[id(p)] for p in decay["params"])
    expected = ["transformer.wpe.weight", "transformer.wte.weight"] + ([] if tie else ["lm_head.weight"])
    assert adam_names == sorted(expected)
    assert all(p.dim() == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert decay["weight_decay"] == 0.1 and muon["use_muon"] and not decay["use_muon"]
    assert muon["lr_scale"] == pytest.approx(20.0) and decay["lr_scale"] == 1.0
    # every parameter in exactly one group
    ids = [id(p) for g in (muon, decay, no_decay) for p in g["params"]]
    assert len(ids) == len(set(ids)) == len({id(p) for p in model.parameters()})


def test_configure_optimizer_picks_muon():
    model = small_model()
    assert isinstance(configure_optimizer(model, TrainConfig(optimizer="muon"), torch.device("cpu")), MuonWithAdamW)
    assert isinstance(configure_optimizer(model, TrainConfig(), torch.device("cpu")), torch.optim.AdamW)


def test_adamw_part_matches_torch_adamw():
    """The groups that Muon leaves alone follow torch's own AdamW step for step."""
    a, b = small_model(), small_model()
    ours = make_muon(a, lr=1e-2, muon_lr=0.0, weight_decay=0.1, betas=(0.9, 0.95))
    rest = [p for n, p in b.named_parameters() if not (".h." in n and p.dim() == 2)]  # the block matrices stay
    theirs = torch.optim.AdamW([{"params": [p for p in rest if p.dim() >= 2], "weight_decay": 0.1},
                                {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0}],
                               lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    idx = torch.randint(0, 65, (4, 16), generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        for model, opt in ((a, ours), (b, theirs)):
            model(idx, idx)[1].backward()
            opt.step()
            opt.zero_grad()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-6, rtol=1e-5, msg=name)


def tiny_cfg(**kw) -> TrainConfig:
    return TrainConfig(
        model=GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, dropout=0.0), batch_size=8, max_iters=60,
        eval_interval=20, eval_iters=2, warmup_iters=5, learning_rate=3e-3, min_lr=3e-4, device="cpu",
        progress=False, seed=3, optimizer="muon",
    ).replace(**kw)


def test_a_short_muon_run_lowers_the_loss(text):
    result = train(tiny_cfg(), text=text[:30_000])
    losses = torch.tensor(result.step_losses)
    assert losses[:5].mean() - losses[-5:].mean() > 0.7
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"] - 0.5


def test_muon_resume_equals_training_straight_through(tmp_path, text):
    small = text[:20_000]
    straight = train(tiny_cfg(max_iters=30, lr_decay_iters=30), text=small)
    train(tiny_cfg(max_iters=15, lr_decay_iters=30, out_dir=str(tmp_path)), text=small)
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert any("momentum_buffer" in s for s in ckpt["optimizer"]["state"].values())  # Muon's state is saved
    second = train(tiny_cfg(max_iters=30, lr_decay_iters=30, out_dir=str(tmp_path), resume=True), text=small)
    torch.testing.assert_close(torch.tensor(second.step_losses), torch.tensor(straight.step_losses[15:]),
                               atol=1e-6, rtol=0)
    for (k, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values()):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0, msg=k)


def test_unknown_optimizer_is_a_config_error(text):
    with pytest.raises(ConfigError, match="adamw or muon"):
        train(tiny_cfg(optimizer="sgd"), text=text[:5000])
