"""The model options of the CPU speedrun (GPTConfig.activation="relu2", qk_norm, logit_softcap,
zero_init_proj, and an untied head): what each computes, that the defaults leave today's GPT unchanged,
and that the KV cache gives the same tokens as recomputing with each, past block_size."""

import pytest
import torch
import torch.nn.functional as F

from gpt_from_scratch.model import GPT, GPTConfig

SMALL = dict(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=32, dropout=0.0)

OPTIONS = {
    "relu2": dict(activation="relu2"),
    "qk_norm": dict(qk_norm=True),
    "softcap": dict(logit_softcap=3.0),
    "zero_init_proj": dict(zero_init_proj=True),
    "untied": dict(tie_weights=False),
    "qk_norm_rope_gqa": dict(qk_norm=True, pos="rope", n_kv_head=2, norm="rmsnorm"),
    "all": dict(activation="relu2", qk_norm=True, logit_softcap=10.0, zero_init_proj=True, tie_weights=False,
                pos="rope", norm="rmsnorm"),
}


def small_gpt(seed=0, **options) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**SMALL, **options}))


def sharp(model: GPT) -> GPT:
    """Larger weights than at init, so logits are far from uniform (greedy does not hinge on rounding)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    return model.eval()


def test_defaults_keep_todays_gpt():
    cfg = GPTConfig(**SMALL)
    assert (cfg.qk_norm, cfg.logit_softcap, cfg.zero_init_proj, cfg.tie_weights) == (False, None, False, True)
    # an older checkpoint's config (without the new fields) loads with them off
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("qk_norm", "logit_softcap", "zero_init_proj")}
    assert GPTConfig.from_dict(old) == cfg
    a, b = small_gpt(), small_gpt(qk_norm=False, logit_softcap=None, zero_init_proj=False)
    idx = torch.randint(0, 65, (2, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a(idx)[0], b(idx)[0])


@pytest.mark.parametrize("bad", [dict(logit_softcap=0.0), dict(logit_softcap=-1.0), dict(logit_softcap=float("inf")),
                                 dict(logit_softcap=float("nan")), dict(activation="relu3")])
def test_bad_options_raise_one_line(bad):
    with pytest.raises(ValueError) as err:
        GPTConfig(**{**SMALL, **bad})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", OPTIONS)
def test_every_option_round_trips_through_a_dict(name):
    model = small_gpt(**OPTIONS[name])
    again = GPT.from_config_dict(model.config_dict())
    again.load_state_dict(model.state_dict())  # strict: the same names and shapes
    idx = torch.randint(0, 65, (1, 8), generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.eval()(idx)[0], again.eval()(idx)[0])


def test_relu2_is_relu_squared():
    model = small_gpt(activation="relu2")
    x = torch.linspace(-3, 3, 13)
    assert torch.equal(model.transformer.h[0].mlp.act(x), torch.clamp(x, min=0) ** 2)


def test_softcap_bounds_logits_and_keeps_small_ones():
    capped, plain = sharp(small_gpt(logit_softcap=3.0)), sharp(small_gpt())
    capped.load_state_dict(plain.state_dict())
    idx = torch.randint(0, 65, (2, 16), generator=torch.Generator().manual_seed(0))
    lc, lp = capped(idx)[0], plain(idx)[0]
    assert lp.abs().max() > 3.0 and lc.abs().max() < 3.0  # the cap binds
    torch.testing.assert_close(lc, 3.0 * torch.tanh(lp / 3.0))
    small = lp.abs() < 0.3
    torch.testing.assert_close(lc[small], lp[small], atol=0.01, rtol=0)  # tanh(x) ~ x near 0


def test_qk_norm_makes_attention_ignore_the_scale_of_queries_and_keys():
    model = small_gpt(qk_norm=True).eval()
    attn = model.transformer.h[0].attn
    x = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(0))
    before = attn(x)
    with torch.no_grad():  # scale the query and key rows of c_attn by 5: normalised away
        attn.c_attn.weight[:64] *= 5.0
    torch.testing.assert_close(attn(x), before, atol=1e-5, rtol=1e-5)
    plain = small_gpt().eval().transformer.h[0].attn
    plain.load_state_dict(attn.state_dict())
    assert not torch.allclose(plain(x), before, atol=1e-3)  # without qk_norm the scale matters


def test_zero_init_proj_starts_every_block_as_the_identity():
    model = small_gpt(zero_init_proj=True)
    projs = [p for n, p in model.named_parameters() if n.endswith("c_proj.weight")]
    assert len(projs) == 4 and all(torch.count_nonzero(p) == 0 for p in projs)
    x = torch.randn(2, 10, 32)
    block = model.transformer.h[0]
    assert torch.equal(block(x), x)
    # and training moves them: the gradient reaches c_proj
    idx = torch.randint(0, 65, (2, 16))
    model(idx, idx)[1].backward()
    assert all(p.grad.abs().sum() > 0 for p in projs)


def test_untied_head_has_its_own_matrix():
    tied, untied = small_gpt(), small_gpt(tie_weights=False)
    assert tied.lm_head.weight is tied.transformer.wte.weight
    assert untied.lm_head.weight is not untied.transformer.wte.weight
    assert untied.num_params() == tied.num_params() + 65 * 32


@pytest.mark.parametrize("name", OPTIONS)
def test_cache_equals_no_cache_past_block_size(name):
    model = sharp(small_gpt(**OPTIONS[name]))
    idx = torch.randint(0, 65, (2, 3), generator=torch.Generator().manual_seed(0))
    for kw in (dict(temperature=0), dict(temperature=1.0)):
        a = model.generate(idx, 100, use_kv_cache=True, generator=torch.Generator().manual_seed(7), **kw)
        b = model.generate(idx, 100, use_kv_cache=False, generator=torch.Generator().manual_seed(7), **kw)
        assert a.shape == (2, 103)
        assert torch.equal(a, b), (name, kw)


def test_loss_uses_the_capped_logits():
    model = sharp(small_gpt(logit_softcap=2.0))
    idx = torch.randint(0, 65, (2, 16), generator=torch.Generator().manual_seed(0))
    logits, loss = model(idx, idx)
    torch.testing.assert_close(loss, F.cross_entropy(logits.view(-1, 65), idx.view(-1)))
