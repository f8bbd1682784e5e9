"""The full GPT (model.py): shapes, size, initialisation, and equality with the teaching blocks."""

import math

import pytest
import torch
import torch.nn as nn

import gpt_from_scratch as gfs
from gpt_from_scratch.model import GPT, GPTConfig, copy_block_weights



TINY = dict(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=32)


def tiny_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{**TINY, **overrides}))


# --- size and shapes --------------------------------------------------------------


def test_flagship_parameter_count():
    model = GPT(GPTConfig())
    n = model.num_params()
    assert n == 10_745_088
    assert 10.7e6 < n < 10.8e6
    # the tied embedding is counted once
    assert n == sum(p.numel() for p in set(model.parameters()))


def test_logits_shape_and_no_loss_without_targets():
    model = tiny_gpt().eval()
    idx = torch.randint(0, 65, (3, 17))
    logits, loss = model(idx)
    assert logits.shape == (3, 17, 65)
    assert loss is None
    logits2, loss2 = model(idx, idx)
    assert torch.equal(logits, logits2)
    assert loss2.ndim == 0 and torch.isfinite(loss2)


def test_loss_at_init_is_about_ln_vocab():
    model = tiny_gpt().eval()
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 65, (8, 32), generator=g)
    targets = torch.randint(0, 65, (8, 32), generator=g)
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(65)) < 0.1


def test_longer_than_block_size_raises():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))


@pytest.mark.parametrize("bad", [dict(n_embd=30, n_head=4), dict(n_layer=0), dict(dropout=1.0),
                                 dict(activation="tanh")])
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        GPTConfig(**{**TINY, **bad})


def test_config_round_trips_through_a_dict():
    cfg = GPTConfig(**TINY, dropout=0.1, bias=True)
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        GPTConfig.from_dict({**cfg.to_dict(), "n_kv_heads": 2})


def test_config_of_an_older_checkpoint_takes_the_new_defaults():
    old = dict(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=32, dropout=0.0, bias=False,
               activation="gelu", tie_weights=True)  # saved before norm, pos and n_kv_head existed
    cfg = GPTConfig.from_dict(old)
    assert (cfg.norm, cfg.pos, cfg.n_kv_head) == ("layernorm", "learned", None)
    assert GPT(cfg).state_dict().keys() == tiny_gpt().state_dict().keys()


# --- equality with the teaching blocks (teaching.py) --------------------------------


@pytest.mark.parametrize("tie_weights", [True, False])
def test_gpt_equals_the_teaching_blocks(tie_weights):
    n_embd, n_head, n_layer = 32, 4, 2
    cfg = GPTConfig(vocab_size=65, block_size=16, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                    dropout=0.0, bias=True, activation="relu", tie_weights=tie_weights)
    torch.manual_seed(0)
    gpt = GPT(cfg).eval()
    blocks = [gfs.Block(n_embd, n_head) for _ in range(n_layer)]
    with torch.no_grad():  # random LayerNorm gains and biases too, so a swapped copy is caught
        for block in blocks:
            for p in block.parameters():
                p.add_(0.1 * torch.randn_like(p))
    for block, gpt_block in zip(blocks, gpt.transformer.h):
        block.eval()
        copy_block_weights(block, gpt_block)

    x = torch.randn(3, 16, n_embd)
    for block, gpt_block in zip(blocks, gpt.transformer.h):  # block by block
        torch.testing.assert_close(gpt_block(x), block(x), atol=1e-5, rtol=1e-5)

    idx = torch.randint(0, 65, (3, 16))  # the whole model
    t = gpt.transformer
    with torch.no_grad():
        h = t.wte(idx) + t.wpe(torch.arange(16))
        for block in blocks:
            h = block(h)
        expected = gpt.lm_head(t.ln_f(h))
        logits, _ = gpt(idx)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits, gpt.lm_head(t.ln_f(t.wte(idx) + t.wpe(torch.arange(16)))), atol=1e-3)


def test_copy_block_weights_refuses_a_block_it_cannot_match():
    torch.manual_seed(0)
    block = gfs.Block(16, 2)
    for bad in (dict(bias=False), dict(activation="gelu"), dict(norm="rmsnorm"), dict(n_kv_head=1),
                dict(n_head=4)):
        cfg = GPTConfig(**{**dict(vocab_size=65, block_size=8, n_layer=1, n_head=2, n_embd=16,
                                  bias=True, activation="relu"), **bad})
        with pytest.raises(ValueError, match="copy_block_weights"):
            copy_block_weights(block, GPT(cfg).transformer.h[0])


def test_copy_helper_catches_a_wrong_order():
    """The equality above is not vacuous: swapping q and k breaks it."""
    cfg = GPTConfig(vocab_size=65, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0,
                    bias=True, activation="relu")
    torch.manual_seed(0)
    gpt = GPT(cfg).eval()
    block = gfs.Block(16, 2).eval()
    copy_block_weights(block, gpt.transformer.h[0])
    x = torch.randn(2, 8, 16)
    torch.testing.assert_close(gpt.transformer.h[0](x), block(x), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        w = gpt.transformer.h[0].attn.c_attn.weight
        w.copy_(torch.cat([w[16:32], w[:16], w[32:]]))
    assert not torch.allclose(gpt.transformer.h[0](x), block(x), atol=1e-4)


# --- initialisation ---------------------------------------------------------------


def test_gpt2_initialisation():
    n_layer = 4
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=n_layer, n_head=4, n_embd=256, bias=True))
    proj_std = 0.02 / math.sqrt(2 * n_layer)
    seen_proj = seen_other = 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        std = module.weight.std().item()
        expected = proj_std if name.endswith("c_proj") else 0.02
        assert abs(std - expected) < 0.05 * expected, (name, std, expected)
        assert abs(module.weight.mean().item()) < 0.1 * expected
        if module.bias is not None:
            assert torch.count_nonzero(module.bias) == 0
        if name.endswith("c_proj"):
            seen_proj += 1
        else:
            seen_other += 1
    assert seen_proj == 2 * n_layer  # attn.c_proj and mlp.c_proj in every block
    assert seen_other == 2 * n_layer + 1  # c_attn, c_fc and lm_head
    wpe = model.transformer.wpe.weight
    assert abs(wpe.std().item() - 0.02) < 0.05 * 0.02
    for name, p in model.named_parameters():  # LayerNorm: gain 1, bias 0
        if ".ln_" in name or "ln_f" in name:
            assert torch.all(p == (1.0 if name.endswith("weight") else 0.0)), name


def test_tied_embeddings():
    model = tiny_gpt()
    assert model.transformer.wte.weight is model.lm_head.weight
    untied = tiny_gpt(tie_weights=False)
    assert untied.transformer.wte.weight is not untied.lm_head.weight
    assert untied.num_params() == model.num_params() + 65 * 32
    # a gradient step through the output layer moves the input embedding too
    idx = torch.randint(0, 65, (2, 8))
    _, loss = model(idx, idx)
    loss.backward()
    assert model.transformer.wte.weight.grad is model.lm_head.weight.grad


def test_dropout_is_active_only_in_training():
    model = tiny_gpt(dropout=0.5)
    idx = torch.randint(0, 65, (2, 16))
    model.train()
    a, b = model(idx)[0], model(idx)[0]
    assert not torch.allclose(a, b)
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0], atol=0, rtol=0)


def test_kv_cache_forward_matches_full_forward():
    model = tiny_gpt().eval()
    idx = torch.randint(0, 65, (2, 20))
    full = model(idx)[0]
    cache = model.new_kv_cache(2)
    out = [model.forward_cached(idx[:, :7], cache)]  # a chunk, then one token at a time
    for t in range(7, 20):
        out.append(model.forward_cached(idx[:, t : t + 1], cache))
    assert cache.length == 20
    torch.testing.assert_close(out[0], full[:, 6], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(out[1:], 1), full[:, 7:], atol=1e-5, rtol=1e-5)
    # a multi-token chunk on top of a filled cache
    cache = model.new_kv_cache(2)
    model.forward_cached(idx[:, :5], cache)
    torch.testing.assert_close(model.forward_cached(idx[:, 5:12], cache), full[:, 11], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.next_token_logits(idx), full[:, -1], atol=1e-6, rtol=1e-6)
