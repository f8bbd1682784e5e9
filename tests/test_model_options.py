"""The model options of chapter 07 (GPTConfig.norm, activation, pos, n_kv_head) and gradient checkpointing.

Each option is checked for what it computes, and the KV cache is checked to
give the same tokens as recomputing, for every option, past block_size.
"""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from gpt_from_scratch.model import GPT, GPTConfig, RMSNorm, apply_rope, rope_cos_sin, swiglu_hidden
from helpers import sharpen

SMALL = dict(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=32, dropout=0.0)

OPTIONS = {
    "rmsnorm": dict(norm="rmsnorm"),
    "gelu_tanh": dict(activation="gelu_tanh"),
    "relu": dict(activation="relu"),
    "swiglu": dict(activation="swiglu"),
    "rope": dict(pos="rope"),
    "gqa": dict(n_kv_head=2),
    "mqa": dict(n_kv_head=1),
    "all": dict(norm="rmsnorm", activation="swiglu", pos="rope", n_kv_head=2, bias=True),
}


def small_gpt(seed=0, **options) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**SMALL, **options}))


# --- the config -------------------------------------------------------------------------


@pytest.mark.parametrize("bad,match", [
    (dict(norm="batchnorm"), "norm"), (dict(activation="gelu2"), "activation"), (dict(pos="alibi"), "pos"),
    (dict(n_kv_head=3), "n_kv_head"), (dict(n_kv_head=0), "n_kv_head"), (dict(n_kv_head=True), "n_kv_head"),
    (dict(n_kv_head=1.5), "n_kv_head"), (dict(pos="rope", n_embd=36, n_head=4), "even head size"),
])
def test_bad_options_raise_one_line(bad, match):
    with pytest.raises(ValueError, match=match) as err:
        GPTConfig(**{**SMALL, **bad})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", OPTIONS)
def test_every_option_round_trips_through_a_dict(name):
    cfg = GPTConfig(**{**SMALL, **OPTIONS[name]})
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    model = GPT(cfg)
    again = GPT.from_config_dict(model.config_dict())
    again.load_state_dict(model.state_dict())  # strict: the same names and shapes


# --- what each option computes -------------------------------------------------------------


def test_rmsnorm_divides_by_the_root_mean_square():
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 9.0))
    x = torch.randn(2, 3, 8)
    expected = x / x.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt() * torch.arange(1.0, 9.0)
    torch.testing.assert_close(norm(x), expected)
    model = small_gpt(norm="rmsnorm", bias=True)
    names = [n for n, _ in model.named_parameters() if ".ln_" in n or "ln_f" in n]
    assert names and all(n.endswith("weight") for n in names)  # no bias, even with bias=True
    assert all(isinstance(m, RMSNorm) for m in (model.transformer.ln_f, model.transformer.h[0].ln_1))


def test_gelu_tanh_is_gpt2s_approximation():
    mlp = small_gpt(activation="gelu_tanh").transformer.h[0].mlp
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(mlp.act(x), F.gelu(x, approximate="tanh"))
    assert not torch.allclose(mlp.act(x), F.gelu(x), atol=1e-5)


def test_swiglu_mlp_has_three_matrices_and_about_the_gelu_parameter_count():
    assert swiglu_hidden(384) == 1024 and swiglu_hidden(32) == 88  # 2/3 * 4C, rounded up to a multiple of 8
    for C in (32, 96, 384, 768):
        n_swiglu = sum(p.numel() for p in small_gpt(n_embd=C, activation="swiglu").transformer.h[0].mlp.parameters())
        n_gelu = sum(p.numel() for p in small_gpt(n_embd=C).transformer.h[0].mlp.parameters())
        assert n_gelu == 8 * C * C
        assert abs(n_swiglu - n_gelu) / n_gelu < 0.04, (C, n_swiglu, n_gelu)
    mlp = small_gpt(activation="swiglu").transformer.h[0].mlp
    x = torch.randn(2, 5, 32)
    expected = mlp.c_proj(F.silu(mlp.c_gate(x)) * mlp.c_fc(x))
    torch.testing.assert_close(mlp(x), expected)


def test_swiglu_down_projection_is_scaled_like_c_proj():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**SMALL, "n_embd": 256, "n_layer": 8, "activation": "swiglu"}))
    mlp = model.transformer.h[0].mlp
    assert abs(mlp.c_proj.weight.std().item() - 0.02 / math.sqrt(16)) < 0.0005
    assert abs(mlp.c_gate.weight.std().item() - 0.02) < 0.001


def test_rope_has_no_position_embedding():
    model = small_gpt(pos="rope")
    assert "transformer.wpe.weight" not in model.state_dict()
    assert "transformer.wpe.weight" in small_gpt().state_dict()
    assert model.num_params() == small_gpt().num_params() - SMALL["block_size"] * SMALL["n_embd"]
    assert model.num_params(non_embedding=True) == model.num_params()


def test_rope_scores_depend_only_on_the_distance():
    hs = 16
    q, k = torch.randn(1, 1, 1, hs), torch.randn(1, 1, 1, hs)

    def score(p, s):
        cq, sq = rope_cos_sin(torch.tensor([p]), hs)
        ck, sk = rope_cos_sin(torch.tensor([s]), hs)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum().item()

    for p, s in ((5, 2), (40, 1), (3, 3)):
        for shift in (1, 100, 10_000):
            assert abs(score(p, s) - score(p + shift, s + shift)) < 1e-4
    assert abs(score(5, 2) - score(5, 4)) > 1e-3  # and they do depend on the distance
    x = torch.randn(2, 3, 7, hs)
    cos, sin = rope_cos_sin(torch.arange(7), hs)
    torch.testing.assert_close(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1))  # a rotation
    torch.testing.assert_close(apply_rope(x[:, :, :1], cos[:1], sin[:1]), x[:, :, :1])  # position 0: none


def test_grouped_query_attention_equals_attention_with_repeated_kv_heads():
    gqa = small_gpt(n_kv_head=2, bias=True).eval()
    mha = small_gpt(bias=True).eval()
    C, hs = 32, 8
    a, b = gqa.transformer.h[0].attn, mha.transformer.h[0].attn
    assert a.c_attn.weight.shape == (C + 2 * 2 * hs, C)
    with torch.no_grad():
        wq, wk, wv = a.c_attn.weight.split([C, 2 * hs, 2 * hs])
        bq, bk, bv = a.c_attn.bias.split([C, 2 * hs, 2 * hs])
        rep = lambda t: t.view(2, hs, *t.shape[1:]).repeat_interleave(2, dim=0).reshape(C, *t.shape[1:])  # noqa: E731
        b.c_attn.weight.copy_(torch.cat([wq, rep(wk), rep(wv)]))  # kv head j serves query heads 2j, 2j+1
        b.c_attn.bias.copy_(torch.cat([bq, rep(bk), rep(bv)]))
        b.c_proj.load_state_dict(a.c_proj.state_dict())
    x = torch.randn(2, 10, C)
    torch.testing.assert_close(a(x), b(x), atol=1e-6, rtol=1e-5)


def test_gqa_cache_stores_only_the_kv_heads():
    full, gqa, mqa = small_gpt(), small_gpt(n_kv_head=2), small_gpt(n_kv_head=1)
    caches = [m.new_kv_cache(3) for m in (full, gqa, mqa)]
    assert [c.k.shape for c in caches] == [(2, 3, h, 32, 8) for h in (4, 2, 1)]
    assert all(c.v.shape == c.k.shape for c in caches)
    assert caches[0].nbytes == 2 * 2 * 3 * 4 * 32 * 8 * 4  # k and v, 2 layers, batch 3, float32
    assert caches[0].nbytes == 2 * caches[1].nbytes == 4 * caches[2].nbytes
    gqa.eval().forward_cached(torch.zeros((3, 5), dtype=torch.long), caches[1])
    assert caches[1].length == 5 and caches[1].k[:, :, :, :5].abs().sum() > 0


# --- the KV cache is exact for every option ----------------------------------------------

SAMPLING = [dict(temperature=0), dict(temperature=1.0), dict(temperature=0.9, top_k=10, top_p=0.9)]


@pytest.mark.parametrize("name", OPTIONS)
def test_cache_equals_no_cache_past_block_size(name):
    model = sharpen(small_gpt(**OPTIONS[name]))
    idx = torch.randint(0, 65, (2, 3), generator=torch.Generator().manual_seed(0))
    for kw in SAMPLING:
        a = model.generate(idx, 600, use_kv_cache=True, generator=torch.Generator().manual_seed(7), **kw)
        b = model.generate(idx, 600, use_kv_cache=False, generator=torch.Generator().manual_seed(7), **kw)
        assert a.shape == (2, 603)
        assert torch.equal(a, b), (name, kw)
        assert not torch.equal(a[0], a[1])


def test_rope_cache_rolls_instead_of_refilling(monkeypatch):
    model = sharpen(small_gpt(pos="rope", block_size=8))
    assert model.sliding_window and not small_gpt().sliding_window
    fed, real = [], model.forward_cached

    def forward_cached(idx, cache):
        fed.append(idx.size(1))
        out = real(idx, cache)
        assert cache.length == min(cache.position, 8)
        return out

    monkeypatch.setattr(model, "forward_cached", forward_cached)
    out = model.generate(torch.zeros((1, 3), dtype=torch.long), 50, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 53)
    assert fed == [3] + [1] * 49  # the prompt once, then one token per step: no re-fill
    # a prompt longer than the window: only its last block_size tokens fill the cache
    fed.clear()
    model.generate(torch.zeros((1, 20), dtype=torch.long), 5, temperature=0)
    assert fed == [8, 1, 1, 1, 1]


def test_rolling_cache_is_sliding_window_attention():
    model = sharpen(small_gpt(pos="rope", n_kv_head=2, block_size=8))
    idx = torch.randint(0, 65, (2, 40), generator=torch.Generator().manual_seed(1))
    cache = model.new_kv_cache(2)
    model.forward_cached(idx[:, :8], cache)
    with torch.no_grad():
        for t in range(8, 40):
            cached = model.forward_cached(idx[:, t : t + 1], cache)
            # the whole text at once, each position attending to the last 8 positions
            torch.testing.assert_close(cached, model(idx[:, : t + 1])[0][:, -1], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(cached, model.next_token_logits(idx[:, : t + 1]), atol=1e-4, rtol=1e-4)
        # the subtlety: with 2 layers the last 8 tokens alone are not enough (the second layer's cached keys
        # still carry what their tokens saw when they were new)
        window_only = model.next_token_logits(idx[:, -8:])
        assert not torch.allclose(cached, window_only, atol=1e-2)
    assert cache.position == 40 and cache.length == 8


def test_sliding_window_reaches_back_n_layer_windows():
    model = sharpen(small_gpt(pos="rope", block_size=8))  # 2 layers: the next token sees 2 * 7 + 1 = 15 tokens
    idx = torch.randint(0, 65, (1, 30), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        last = model(idx)[0][:, -1]
        torch.testing.assert_close(model(idx[:, -15:])[0][:, -1], last, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(idx[:, -14:])[0][:, -1], last, atol=1e-3)
        # within block_size, sliding-window attention is plain causal attention: training is unchanged
        torch.testing.assert_close(model(idx[:, :8])[0], model(idx[:, :9])[0][:, :8], atol=1e-5, rtol=1e-5)


def test_a_rolling_cache_takes_one_token_at_a_time():
    model = small_gpt(pos="rope", block_size=8).eval()
    cache = model.new_kv_cache(1)
    model.forward_cached(torch.zeros((1, 6), dtype=torch.long), cache)
    with pytest.raises(ValueError, match="KV cache"):
        model.forward_cached(torch.zeros((1, 3), dtype=torch.long), cache)


def test_a_reset_cache_starts_a_new_conversation():
    model = small_gpt(pos="rope", block_size=8).eval()
    idx = torch.randint(0, 65, (1, 5), generator=torch.Generator().manual_seed(3))
    cache = model.new_kv_cache(1)
    with torch.no_grad():
        first = model.forward_cached(idx, cache)
        model.forward_cached(idx[:, :1], cache)
        assert cache.position == 6 and cache.length == 6 and cache.nbytes > 0
        cache.reset()
        assert cache.position == 0 and cache.length == 0
        torch.testing.assert_close(model.forward_cached(idx, cache), first)


def test_learned_positions_still_refuse_to_run_past_block_size():
    model = small_gpt(block_size=8).eval()
    cache = model.new_kv_cache(1)
    model.forward_cached(torch.zeros((1, 8), dtype=torch.long), cache)
    with pytest.raises(ValueError, match="block_size"):
        model.forward_cached(torch.zeros((1, 1), dtype=torch.long), cache)


# --- gradient checkpointing --------------------------------------------------------------


@pytest.mark.parametrize("name", ["gelu_tanh", "all"])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(name, monkeypatch):
    idx = torch.randint(0, 65, (4, 33), generator=torch.Generator().manual_seed(0))
    x, y = idx[:, :-1].contiguous(), idx[:, 1:].contiguous()
    results = []
    calls = []
    real = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    for on in (False, True):
        model = small_gpt(**OPTIONS[name]).train()
        model.gradient_checkpointing = on
        _, loss = model(x, y)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
        assert len(calls) == (SMALL["n_layer"] if on else 0)  # one checkpoint per block, only when on
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys()
    for n in grads_a:
        torch.testing.assert_close(grads_a[n], grads_b[n], atol=1e-6, rtol=1e-5, msg=n)
    model.eval()  # not in eval mode: nothing to save memory for
    calls.clear()
    model(x)
    assert calls == []


def test_mlp_hidden_sets_the_mlp_width():
    """mlp_hidden lets an ablation give every variant the same parameter count (notebook 07)."""
    base = GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.0)
    wide = GPT(dataclasses.replace(base, mlp_hidden=200))
    assert wide.transformer.h[0].mlp.c_fc.weight.shape == (200, 32)
    widths = [dataclasses.replace(base, **kw).mlp_width for kw in ({}, {"activation": "swiglu"}, {"mlp_hidden": 200})]
    assert widths == [128, swiglu_hidden(32), 200]  # the one rule that the MLP, the loaders and export read
    assert GPT(dataclasses.replace(base, mlp_hidden=128)).num_params() == GPT(base).num_params()  # 4C is the default
    with pytest.raises(ValueError, match="mlp_hidden"):
        GPTConfig(mlp_hidden=0)
