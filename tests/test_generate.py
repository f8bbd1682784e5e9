"""Generation: generate.py and GPT.generate (the `sample` command is tested in test_cli.py).

The sampling tests compute the expected distributions here, independently of
filter_probs, and compare empirical frequencies with a chi-square test.
"""

import math

import pytest
import torch

import gpt_from_scratch as gfs
from gpt_from_scratch.generate import (
    check_sampling_args,
    filter_probs,
    generate,
    generate_text,
    sample_next_token,
    window_start,
)
from gpt_from_scratch.model import GPT, GPTConfig
from helpers import sharpen




def sharp_gpt(block_size=256, n_layer=2, n_embd=32, n_head=2, vocab_size=65, seed=0) -> GPT:
    """A random GPT with larger weights than at init, so its logits are far from uniform
    (near-ties between logits would make greedy decoding depend on rounding)."""
    torch.manual_seed(seed)
    return sharpen(GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer,
                                 n_head=n_head, n_embd=n_embd, dropout=0.0)))


@pytest.fixture(scope="module")
def model():
    return sharp_gpt()


SAMPLING = [
    pytest.param(dict(temperature=0), id="greedy"),
    pytest.param(dict(temperature=1.0), id="T=1"),
    pytest.param(dict(temperature=0.9, top_k=10, top_p=0.9), id="top_k+top_p"),
]


# --- the KV cache is exact ------------------------------------------------------------


@pytest.mark.parametrize("kw", SAMPLING)
def test_cache_equals_no_cache_past_block_size(model, kw):
    idx = torch.randint(0, 65, (2, 5), generator=torch.Generator().manual_seed(0))
    a = model.generate(idx, 600, use_kv_cache=True, generator=torch.Generator().manual_seed(7), **kw)
    b = model.generate(idx, 600, use_kv_cache=False, generator=torch.Generator().manual_seed(7), **kw)
    assert a.shape == (2, 605)
    assert torch.equal(a[:, :5], idx)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # two different rows: the batch is not one row repeated


@pytest.mark.parametrize("kw", SAMPLING)
def test_cache_equals_no_cache_on_the_shipped_checkpoint(kw):
    model, tok = gfs.load_checkpoint(None)  # the checkpoint ships with the repo: its absence fails
    n = model.block_size + model.block_size // 2  # past block_size, where the cache rolls
    idx = torch.tensor([tok.encode("ROMEO:")], dtype=torch.long)
    a = model.generate(idx, n, use_kv_cache=True, generator=torch.Generator().manual_seed(3), **kw)
    b = model.generate(idx, n, use_kv_cache=False, generator=torch.Generator().manual_seed(3), **kw)
    assert a.shape == (1, 6 + n)
    assert torch.equal(a, b)


def test_context_never_exceeds_block_size(monkeypatch):
    model = sharp_gpt(block_size=8, n_layer=1, n_embd=16)
    seen = []
    real_cached, real_full = model.forward_cached, model.next_token_logits

    def forward_cached(idx, cache):
        out = real_cached(idx, cache)
        seen.append(cache.length)
        return out

    def next_token_logits(idx):
        seen.append(idx.size(1))
        return real_full(idx)

    monkeypatch.setattr(model, "forward_cached", forward_cached)
    monkeypatch.setattr(model, "next_token_logits", next_token_logits)
    idx = torch.zeros((1, 3), dtype=torch.long)
    for use_cache in (True, False):
        seen.clear()
        out = model.generate(idx, 50, use_kv_cache=use_cache, generator=torch.Generator().manual_seed(0))
        assert out.shape == (1, 53)
        assert len(seen) == 50 and max(seen) == 8 and min(seen) >= 1
    # a prompt longer than block_size: only its last block_size tokens are used
    long_prompt = torch.randint(0, 65, (1, 20))
    seen.clear()
    out = model.generate(long_prompt, 5, use_kv_cache=False, temperature=0)
    assert torch.equal(out[:, :20], long_prompt) and max(seen) == 8


def test_window_start_slides_by_a_quarter_block():
    assert window_start(5, 5, 8) == 0
    assert window_start(8, 5, 8) == 0
    assert window_start(9, 5, 8) == 2  # full: jump by 8 // 4
    assert window_start(10, 5, 8) == 2
    assert window_start(11, 5, 8) == 4
    assert window_start(20, 20, 8) == 12  # a long prompt starts at its last 8 tokens
    for length in range(1, 100):
        s = window_start(length, 1, 8)
        assert 0 <= length - s <= 8


def test_a_sliding_window_never_jumps():
    # the cache starts at the prompt's last block_size tokens and then rolls by itself
    assert [window_start(n, 5, 8, sliding_window=True) for n in (5, 9, 40)] == [0, 0, 0]
    assert window_start(30, 20, 8, sliding_window=True) == 12


def test_bigram_and_ladder_models_generate():
    torch.manual_seed(0)
    for m in (gfs.BigramLanguageModel(65), gfs.AttentionLanguageModel(65, block_size=8, n_embd=16, n_head=2)):
        out = m.generate(torch.zeros((2, 1), dtype=torch.long), 30, generator=torch.Generator().manual_seed(0))
        assert out.shape == (2, 31) and int(out.max()) < 65


# --- greedy and its limits ------------------------------------------------------------


def test_top_k_1_and_tiny_top_p_equal_greedy(model):
    logits = 3 * torch.randn(500, 65, generator=torch.Generator().manual_seed(0))
    greedy = logits.argmax(-1, keepdim=True)
    for t in (0.5, 1.0, 2.0):
        g = torch.Generator().manual_seed(1)
        assert torch.equal(sample_next_token(logits, t, top_k=1, generator=g), greedy)
        assert torch.equal(sample_next_token(logits, t, top_p=1e-6, generator=g), greedy)
    assert torch.equal(sample_next_token(logits, 0), greedy)
    idx = torch.zeros((1, 1), dtype=torch.long)
    g = model.generate(idx, 100, temperature=0)
    gen = torch.Generator().manual_seed(5)
    assert torch.equal(model.generate(idx, 100, temperature=1.0, top_k=1, generator=gen), g)
    assert torch.equal(model.generate(idx, 100, temperature=1.3, top_p=1e-6, generator=gen), g)


def test_temperature_zero_never_nan():
    inf = float("-inf")
    logits = torch.tensor([[inf, 1.0, 3.0, inf], [inf, inf, inf, -2.0], [0.0, 0.0, 5.0, 0.0]])
    assert sample_next_token(logits, 0).flatten().tolist() == [2, 3, 2]
    # a tiny temperature acts like greedy, without NaN
    probs = filter_probs(logits, 1e-8)
    assert not torch.isnan(probs).any()
    assert torch.equal(probs.argmax(-1), torch.tensor([2, 3, 2]))
    torch.testing.assert_close(probs.max(-1).values, torch.ones(3))
    # sampling never draws a -inf token
    draws = sample_next_token(logits.repeat(1000, 1), 1.0, generator=torch.Generator().manual_seed(0))
    rows = draws.view(1000, 3)
    assert set(rows[:, 0].tolist()) <= {1, 2} and set(rows[:, 1].tolist()) == {3}
    # the model path: greedy on a model is finite and deterministic
    m = sharp_gpt(block_size=16, n_layer=1, n_embd=16)
    out = m.generate(torch.zeros((1, 1), dtype=torch.long), 20, temperature=0)
    assert torch.equal(out, m.generate(torch.zeros((1, 1), dtype=torch.long), 20, temperature=0.0))


@pytest.mark.parametrize("kw", [
    dict(temperature=-0.1), dict(temperature=float("nan")), dict(temperature=float("inf")),
    dict(temperature="hot"), dict(top_k=0), dict(top_k=-2), dict(top_k=2.5), dict(top_p=0.0),
    dict(top_p=1.5), dict(top_p=-0.2), dict(top_p=float("nan")), dict(max_new_tokens=-1),
])
def test_bad_sampling_settings_raise(model, kw):
    kw = {"max_new_tokens": 3, **kw}
    n = kw.pop("max_new_tokens")
    idx = torch.zeros((1, 1), dtype=torch.long)
    with pytest.raises(ValueError):
        model.generate(idx, n, **kw)
    with pytest.raises(ValueError):
        check_sampling_args(max_new_tokens=n, **kw)


def test_good_edge_settings_are_accepted(model):
    idx = torch.zeros((1, 2), dtype=torch.long)
    assert torch.equal(model.generate(idx, 0), idx)
    for kw in (dict(top_p=1.0), dict(top_k=65), dict(top_k=1000), dict(temperature=0)):
        assert model.generate(idx, 3, **kw).shape == (1, 5)


# --- the sampled distribution ---------------------------------------------------------


def expected_probs(logits, temperature, top_k=None, top_p=None):
    """softmax(logits / T) restricted to the top-k, then the top-p nucleus, renormalised (float64)."""
    z = torch.tensor(logits, dtype=torch.float64) / temperature
    p = torch.softmax(z, dim=0)
    keep = torch.ones_like(p, dtype=torch.bool)
    order = torch.argsort(p, descending=True)
    if top_k is not None:
        keep[order[top_k:]] = False
        p = torch.where(keep, p, torch.zeros_like(p))
        p = p / p.sum()
    if top_p is not None:
        mass = 0.0
        for i in order.tolist():
            if mass >= top_p:
                keep[i] = False
            mass += p[i].item()
        p = torch.where(keep, p, torch.zeros_like(p))
        p = p / p.sum()
    return p


# Chi-square critical values for p = 0.001, from the standard table.
CHI2_0001 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515, 6: 22.458, 7: 24.322,
             8: 26.124, 9: 27.877, 10: 29.588}


def wilson_hilferty(df: int, z: float = 3.0902) -> float:
    """The normal approximation to the chi-square quantile (z = 3.0902 for p = 0.001)."""
    a = 2.0 / (9 * df)
    return df * (1 - a + z * math.sqrt(a)) ** 3


def chi2_critical(df: int) -> float:
    return CHI2_0001.get(df) or wilson_hilferty(df)


LOGITS = [2.0, 1.5, 1.2, 0.8, 0.5, 0.0, -0.4, -1.0, -1.5, float("-inf")]


@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.0, None, None), (0.7, None, None), (1.6, None, None),
    (1.0, 4, None), (1.0, None, 0.75), (1.3, 6, 0.8),
])
def test_sampling_frequencies_match_the_filtered_softmax(temperature, top_k, top_p):
    n = 20_000
    p = expected_probs(LOGITS, temperature, top_k, top_p)
    logits = torch.tensor([LOGITS]).repeat(n, 1)
    draws = sample_next_token(logits, temperature, top_k, top_p, generator=torch.Generator().manual_seed(42))
    assert draws.shape == (n, 1)
    counts = torch.bincount(draws.flatten(), minlength=len(LOGITS)).double()
    kept = p > 0
    assert counts[~kept].sum() == 0, f"cut tokens were drawn: {counts.tolist()}"
    expected = n * p[kept]
    assert expected.min() >= 5  # the chi-square approximation needs this
    stat = ((counts[kept] - expected) ** 2 / expected).sum().item()
    df = int(kept.sum()) - 1
    assert stat < chi2_critical(df), (stat, chi2_critical(df), counts.tolist(), expected.tolist())
    # and filter_probs itself says the same
    torch.testing.assert_close(filter_probs(torch.tensor([LOGITS]), temperature, top_k, top_p)[0].double(),
                               p, atol=1e-6, rtol=1e-5)


def test_chi_square_check_detects_a_wrong_distribution():
    """The bound is tight enough to reject sampling at the wrong temperature."""
    n = 20_000
    p = expected_probs(LOGITS, 1.0)
    draws = sample_next_token(torch.tensor([LOGITS]).repeat(n, 1), 1.2, generator=torch.Generator().manual_seed(42))
    counts = torch.bincount(draws.flatten(), minlength=len(LOGITS)).double()[:-1]
    expected = n * p[:-1]
    stat = ((counts - expected) ** 2 / expected).sum().item()
    assert stat > chi2_critical(len(expected) - 1)


# --- seeds and batches --------------------------------------------------------------


def test_batched_generation_and_seeds(model):
    idx = torch.zeros((3, 1), dtype=torch.long)
    a = model.generate(idx, 40, generator=torch.Generator().manual_seed(11))
    b = model.generate(idx, 40, generator=torch.Generator().manual_seed(11))
    c = model.generate(idx, 40, generator=torch.Generator().manual_seed(12))
    assert a.shape == (3, 41)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert len({tuple(r) for r in a.tolist()}) == 3  # three different samples
    # the global seed works too when no generator is given
    torch.manual_seed(5)
    d = model.generate(idx, 20)
    torch.manual_seed(5)
    assert torch.equal(d, model.generate(idx, 20))


def test_generate_restores_training_mode():
    m = sharp_gpt(block_size=16, n_layer=1, n_embd=16)
    m.train()
    generate(m, torch.zeros((1, 1), dtype=torch.long), 5)
    assert m.training


def test_generate_text():
    tok = gfs.CharTokenizer.from_text("abcdefgh \n")
    m = sharp_gpt(block_size=16, n_layer=1, n_embd=16, vocab_size=tok.vocab_size)
    outs = generate_text(m, tok, prompt="abc", max_new_tokens=12, num_samples=2,
                         generator=torch.Generator().manual_seed(0))
    assert len(outs) == 2 and all(o.startswith("abc") and len(o) == 15 for o in outs)
    empty = generate_text(m, tok, prompt="", max_new_tokens=4, temperature=0)
    assert empty[0].startswith("\n") and len(empty[0]) == 5


def test_generated_tokens_are_ordinary_tensors(model):
    # generation runs under inference_mode for speed; what it hands back must work anywhere
    from gpt_from_scratch.generate import iter_generate

    idx = torch.zeros((1, 1), dtype=torch.long)
    out = model.generate(idx, 5, generator=torch.Generator().manual_seed(0))
    assert not out.is_inference()
    out[0, 0] = 1  # in-place edits are allowed
    loss = model(out[:, :-1], out[:, 1:])[1]
    loss.backward()  # and the tokens can feed a training step
    for token in iter_generate(model, idx, 3):
        assert not token.is_inference() and not torch.is_inference_mode_enabled()


def test_one_signature_for_every_way_to_generate(model):
    import inspect

    from gpt_from_scratch.generate import iter_generate

    contract = ["idx", "max_new_tokens", "temperature", "top_k", "top_p", "use_kv_cache", "generator"]
    for m in (model, gfs.BigramLanguageModel(65)):
        sig = inspect.signature(m.generate)
        assert list(sig.parameters) == contract
        assert sig.parameters["temperature"].default == 1.0 and sig.parameters["use_kv_cache"].default is True
    assert list(inspect.signature(iter_generate).parameters) == ["model", *contract]
    assert list(inspect.signature(generate).parameters) == ["model", *contract]
    # positional and keyword arguments reach the same loop
    idx = torch.zeros((1, 1), dtype=torch.long)
    a = model.generate(idx, 10, 0.8, 5, None, True, torch.Generator().manual_seed(1))
    b = generate(model, idx, 10, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
