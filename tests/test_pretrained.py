"""GPT-2's weights in our GPT (gpt_from_scratch/pretrained.py), all offline.

Each test writes a tiny random GPT-2 in Hugging Face layout (config.json and
model.safetensors with Hugging Face's names and Conv1D (in, out) shapes) and
checks our loaded GPT against a reference forward pass written out below
straight from those tensors, independent of model.py.
"""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

import huggingface_hub
from safetensors.torch import save_file

from gpt_from_scratch.hub import GPT2_REPOS
from gpt_from_scratch.pretrained import (
    PretrainedError,
    gpt2_config,
    load_gpt2,
)

HF_CONFIG = dict(
    model_type="gpt2",
    n_layer=2,
    n_head=2,
    n_embd=16,
    n_positions=32,
    n_ctx=32,
    vocab_size=50,
    layer_norm_epsilon=1e-5,
    activation_function="gelu_new",
)


def random_gpt2(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random GPT-2 tensors with Hugging Face's names (no prefix) and shapes, mask buffers included."""
    g = torch.Generator().manual_seed(seed)
    C, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]

    def rand(*shape, std=0.3, mean=0.0):
        return mean + std * torch.randn(*shape, generator=g)

    sd = {"wte.weight": rand(V, C, std=0.5), "wpe.weight": rand(P, C, std=0.2)}
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        sd.update({
            p + "ln_1.weight": rand(C, mean=1.0, std=0.1), p + "ln_1.bias": rand(C, std=0.1),
            p + "attn.c_attn.weight": rand(C, 3 * C), p + "attn.c_attn.bias": rand(3 * C, std=0.1),
            p + "attn.c_proj.weight": rand(C, C), p + "attn.c_proj.bias": rand(C, std=0.1),
            p + "ln_2.weight": rand(C, mean=1.0, std=0.1), p + "ln_2.bias": rand(C, std=0.1),
            p + "mlp.c_fc.weight": rand(C, 4 * C), p + "mlp.c_fc.bias": rand(4 * C, std=0.1),
            p + "mlp.c_proj.weight": rand(4 * C, C, std=0.15), p + "mlp.c_proj.bias": rand(C, std=0.1),
            # the causal-mask buffers older transformers versions saved with the weights
            p + "attn.bias": torch.tril(torch.ones(P, P)).view(1, 1, P, P),
            p + "attn.masked_bias": torch.tensor(-1e4),
        })
    sd.update({"ln_f.weight": rand(C, mean=1.0, std=0.1), "ln_f.bias": rand(C, std=0.1)})
    return sd


def write_gpt2(folder, sd: dict, cfg: dict = HF_CONFIG, prefix: bool = True, lm_head: bool = True):
    """Save sd as save_pretrained would: GPT2LMHeadModel (prefix, lm_head) or GPT2Model style."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    out = {("transformer." + k if prefix else k): v.clone() for k, v in sd.items()}
    if lm_head:
        out["lm_head.weight"] = sd["wte.weight"].clone()
    save_file(out, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


# --- the reference: GPT-2 written out from Hugging Face's tensors ------------------


def layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def reference_logits(sd: dict, cfg: dict, idx: torch.Tensor) -> torch.Tensor:
    """GPT-2's forward pass in float64, Conv1D as x @ W + b: (B, T) -> (B, T, V)."""
    sd = {k: v.double() for k, v in sd.items()}
    B, T = idx.shape
    nh, C = cfg["n_head"], cfg["n_embd"]
    hs = C // nh
    x = sd["wte.weight"][idx] + sd["wpe.weight"][:T]  # (B, T, C)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        h = layer_norm(x, sd[p + "ln_1.weight"], sd[p + "ln_1.bias"])
        qkv = h @ sd[p + "attn.c_attn.weight"] + sd[p + "attn.c_attn.bias"]  # (B, T, 3C)
        q, k, v = (t.reshape(B, T, nh, hs).transpose(1, 2) for t in qkv.split(C, dim=-1))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, nh, T, T)
        att = torch.softmax(att.masked_fill(future, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ sd[p + "attn.c_proj.weight"] + sd[p + "attn.c_proj.bias"]
        h = layer_norm(x, sd[p + "ln_2.weight"], sd[p + "ln_2.bias"])
        h = gelu_tanh(h @ sd[p + "mlp.c_fc.weight"] + sd[p + "mlp.c_fc.bias"])
        x = x + h @ sd[p + "mlp.c_proj.weight"] + sd[p + "mlp.c_proj.bias"]
    x = layer_norm(x, sd["ln_f.weight"], sd["ln_f.bias"])
    return x @ sd["wte.weight"].T


def one_line_error(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


# --- loading gives GPT-2's outputs ---------------------------------------------------


@pytest.mark.parametrize("prefix", [True, False], ids=["GPT2LMHeadModel-names", "GPT2Model-names"])
@pytest.mark.parametrize("lm_head", [True, False], ids=["with-lm_head", "without-lm_head"])
def test_logits_match_reference(tmp_path, prefix, lm_head):
    sd = random_gpt2(HF_CONFIG)
    model = load_gpt2(str(write_gpt2(tmp_path / "gpt2", sd, prefix=prefix, lm_head=lm_head)))

    cfg = model.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.vocab_size) == (2, 2, 16, 32, 50)
    assert (cfg.activation, cfg.bias, cfg.dropout, cfg.tie_weights) == ("gelu_tanh", True, 0.0, True)
    assert not model.training
    assert model.lm_head.weight is model.transformer.wte.weight
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())

    idx = torch.randint(0, 50, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, loss = model(idx)
    assert loss is None
    torch.testing.assert_close(logits, reference_logits(sd, HF_CONFIG, idx).float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_kv_cache", [True, False], ids=["kv-cache", "no-cache"])
def test_greedy_tokens_match_reference(tmp_path, use_kv_cache):
    cfg = dict(HF_CONFIG, n_positions=48, n_ctx=48)  # room for 4 + 40 tokens
    sd = random_gpt2(cfg, seed=2)
    model = load_gpt2(write_gpt2(tmp_path / "gpt2", sd, cfg))

    prompt = torch.tensor([[3, 14, 15, 9]])
    ref = prompt
    for _ in range(40):
        next_id = reference_logits(sd, cfg, ref)[:, -1].argmax(-1, keepdim=True)
        ref = torch.cat([ref, next_id], dim=1)
    out = model.generate(prompt, max_new_tokens=40, temperature=0, use_kv_cache=use_kv_cache)
    assert out.tolist() == ref.tolist()
    assert len(set(ref[0, 4:].tolist())) > 3  # the greedy path is not stuck on one token


def test_gpt_from_pretrained_is_the_same_loader(tmp_path):
    from gpt_from_scratch import GPT

    folder = write_gpt2(tmp_path / "gpt2", random_gpt2(HF_CONFIG))
    a, b = GPT.from_pretrained(str(folder)), load_gpt2(str(folder))
    assert isinstance(a, GPT) and not a.training
    idx = torch.randint(0, 50, (1, 32), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(a(idx)[0], b(idx)[0])


def test_sharded_half_precision_folder_loads_as_float32(tmp_path):
    """A big model saved with save_pretrained comes in shards with an index, sometimes in float16."""
    sd = {k: v.half() for k, v in random_gpt2(HF_CONFIG).items()}
    folder = tmp_path / "gpt2-sharded"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_CONFIG))
    names = sorted(sd)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, part in shards.items():
        save_file({"transformer." + k: sd[k] for k in part}, str(folder / file), metadata={"format": "pt"})
    weight_map = {"transformer." + k: file for file, part in shards.items() for k in part}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))

    model = load_gpt2(folder)
    assert model.transformer.wte.weight.dtype == torch.float32
    assert torch.equal(model.transformer.h[1].mlp.c_fc.weight, sd["h.1.mlp.c_fc.weight"].float().t())
    idx = torch.arange(32).view(1, 32) % 50
    with torch.no_grad():
        logits, _ = model(idx)
    torch.testing.assert_close(logits, reference_logits(sd, HF_CONFIG, idx).float(), rtol=1e-5, atol=1e-5)


def test_matches_transformers_gpt2(tmp_path):
    """Only where transformers happens to be installed: the real GPT2LMHeadModel, saved and reloaded."""
    import transformers
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(
        vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    hf_model = transformers.GPT2LMHeadModel(hf_config).eval()
    with torch.no_grad():
        for p in hf_model.parameters():  # nonzero biases and LayerNorm gains too
            p.add_(0.1 * torch.randn_like(p))
    hf_model.save_pretrained(tmp_path / "hf")  # model.safetensors (transformers >= 4.35)

    model = load_gpt2(tmp_path / "hf")
    idx = torch.randint(0, 50, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, _ = model(idx)
        theirs = hf_model(idx).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


# --- wrong files: one clear line -------------------------------------------------------


def test_missing_tensor(tmp_path):
    sd = random_gpt2(HF_CONFIG)
    del sd["h.1.mlp.c_fc.bias"]
    with pytest.raises(PretrainedError) as e:
        load_gpt2(write_gpt2(tmp_path / "m", sd))
    assert "lacks h.1.mlp.c_fc.bias" in one_line_error(e)


def test_extra_tensor(tmp_path):
    sd = random_gpt2(HF_CONFIG)
    sd["h.2.ln_1.weight"] = torch.ones(16)  # a third layer that config.json does not mention
    with pytest.raises(PretrainedError) as e:
        load_gpt2(write_gpt2(tmp_path / "m", sd))
    assert "h.2.ln_1.weight" in one_line_error(e)


def test_wrong_shape(tmp_path):
    sd = random_gpt2(HF_CONFIG)
    w = sd["h.0.attn.c_attn.weight"]
    sd["h.0.attn.c_attn.weight"] = w.t().contiguous()  # nn.Linear's (out, in), not Conv1D's (in, out)
    with pytest.raises(PretrainedError) as e:
        load_gpt2(write_gpt2(tmp_path / "m", sd))
    assert "h.0.attn.c_attn.weight has shape (48, 16)" in one_line_error(e)
    assert "(16, 48)" in str(e.value)


def test_config_and_weights_disagree(tmp_path):
    folder = write_gpt2(tmp_path / "m", random_gpt2(HF_CONFIG), dict(HF_CONFIG, vocab_size=51))
    with pytest.raises(PretrainedError) as e:
        load_gpt2(folder)
    assert "wte.weight has shape (50, 16)" in one_line_error(e)


def test_untied_lm_head(tmp_path):
    folder = write_gpt2(tmp_path / "m", random_gpt2(HF_CONFIG), lm_head=False)
    sd = {"transformer." + k: v for k, v in random_gpt2(HF_CONFIG).items()}
    sd["lm_head.weight"] = torch.zeros(50, 16)
    save_file(sd, str(folder / "model.safetensors"))
    with pytest.raises(PretrainedError) as e:
        load_gpt2(folder)
    assert "lm_head.weight differs from wte.weight" in one_line_error(e)


def test_folder_without_weights(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_CONFIG))
    with pytest.raises(PretrainedError) as e:
        load_gpt2(folder)
    assert "has no model.safetensors" in one_line_error(e)

    (folder / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(PretrainedError) as e:
        load_gpt2(folder)
    assert "safe_serialization=True" in one_line_error(e)


def test_folder_without_config(tmp_path):
    folder = write_gpt2(tmp_path / "m", random_gpt2(HF_CONFIG))
    (folder / "config.json").unlink()
    with pytest.raises(PretrainedError) as e:
        load_gpt2(folder)
    assert "has no config.json" in one_line_error(e)


def test_corrupt_weights(tmp_path):
    folder = write_gpt2(tmp_path / "m", random_gpt2(HF_CONFIG))
    (folder / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(PretrainedError) as e:
        load_gpt2(folder)
    assert "cannot read" in one_line_error(e)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"model_type": "gpt_neo"}, "only GPT-2"),
        ({"activation_function": "silu"}, "activation_function 'silu'"),
        ({"n_inner": "wide"}, "lacks a valid GPT-2 size"),
        ({"tie_word_embeddings": False}, "tie_word_embeddings is False"),
        ({"n_head": 3}, "divisible"),
        ({"n_layer": None}, "lacks a valid GPT-2 size"),
    ],
)
def test_config_we_cannot_compute(change, words):
    with pytest.raises(PretrainedError) as e:
        gpt2_config(dict(HF_CONFIG, **change))
    assert words in one_line_error(e)


def test_config_sizes():
    c = gpt2_config({"n_layer": 12, "n_head": 12, "n_embd": 768, "n_ctx": 1024, "vocab_size": 50257})
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size) == (12, 12, 768, 1024, 50257)
    assert c.activation == "gelu_tanh" and c.bias and c.tie_weights and c.dropout == 0.0
    assert c.mlp_hidden is None and c.norm_eps == 1e-5  # GPT-2's 4C and LayerNorm epsilon


def test_config_mlp_width_and_norm_epsilon():
    """n_inner and layer_norm_epsilon, as export --format hf writes them, load back."""
    c = gpt2_config(dict(HF_CONFIG, n_inner=100, layer_norm_epsilon=1e-6))
    assert c.mlp_hidden == 100 and c.norm_eps == 1e-6
    assert gpt2_config(dict(HF_CONFIG, n_inner=4 * HF_CONFIG["n_embd"])).mlp_hidden is None


def test_unknown_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedError) as e:
        load_gpt2("gpt3")
    msg = one_line_error(e)
    assert "gpt2, gpt2-medium, gpt2-large, gpt2-xl" in msg and "folder" in msg


# --- the Hub, without the network -----------------------------------------------------


def test_hub_names_download_once_through_huggingface_hub(tmp_path, monkeypatch):
    hub = huggingface_hub
    folder = write_gpt2(tmp_path / "cache", random_gpt2(HF_CONFIG))
    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        return str(folder / filename)

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    monkeypatch.chdir(tmp_path)
    model = load_gpt2("gpt2")
    assert calls == [("openai-community/gpt2", "config.json"), ("openai-community/gpt2", "model.safetensors")]
    assert model.config.n_layer == 2
    calls.clear()
    load_gpt2("openai-community/gpt2-xl")
    assert calls[0] == ("openai-community/gpt2-xl", "config.json")
    assert set(GPT2_REPOS) == {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"}


def test_a_hub_folder_brings_the_tokenizer_files_the_repository_has(tmp_path, monkeypatch):
    from gpt_from_scratch.hub import download_folder
    from gpt_from_scratch.tokenizer_files import read_chat_template

    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        (repo / name).write_text(f"the {name}", encoding="utf-8")  # no tokenizer_config.json
    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append(filename)
        if not (repo / filename).is_file():
            raise FileNotFoundError(f"404: {filename}")  # what the Hub says of a file a repository lacks
        return str(repo / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert download_folder("HuggingFaceTB/SmolLM2-135M-Instruct") == repo
    assert calls == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                     "chat_template.jinja"]
    assert read_chat_template(repo) == "the chat_template.jinja"


def test_offline_finds_the_cache_under_the_old_bare_name(tmp_path, monkeypatch):
    hub = huggingface_hub
    from huggingface_hub.utils import LocalEntryNotFoundError  # also where huggingface_hub 0.23 has it

    folder = write_gpt2(tmp_path / "cache", random_gpt2(HF_CONFIG))

    def fake_download(repo_id, filename, local_files_only=False, **kwargs):
        if repo_id == "gpt2-medium" and local_files_only:
            return str(folder / filename)
        raise LocalEntryNotFoundError("not cached and no connection")

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    monkeypatch.chdir(tmp_path)
    assert load_gpt2("gpt2-medium").config.n_embd == 16


def test_offline_and_not_cached(tmp_path, monkeypatch):
    hub = huggingface_hub
    from huggingface_hub.utils import LocalEntryNotFoundError  # also where huggingface_hub 0.23 has it

    def offline(repo_id, filename, **kwargs):
        raise LocalEntryNotFoundError(
            "An error happened while trying to locate the file on the Hub and we cannot find the\n"
            "requested files in the local cache."
        )

    monkeypatch.setattr(hub, "hf_hub_download", offline)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedError) as e:
        load_gpt2("gpt2-large")
    msg = one_line_error(e)
    assert "cannot download gpt2-large" in msg and "connect" in msg and "pass their folder" in msg


def test_offline_with_the_real_huggingface_hub(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE and an empty cache: the library's own error becomes our one line."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedError) as e:
        load_gpt2("gpt2")
    assert "cannot download gpt2" in one_line_error(e)


def test_download_fails_for_another_reason(tmp_path, monkeypatch):
    hub = huggingface_hub

    def broken(repo_id, filename, **kwargs):
        raise OSError("No space left on device\nwhile writing the blob")

    monkeypatch.setattr(hub, "hf_hub_download", broken)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedError) as e:
        load_gpt2("gpt2")
    assert "could not download openai-community/gpt2: No space left on device" in one_line_error(e)


# --- the optional packages are missing ---------------------------------------------------


def test_without_huggingface_hub(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import huggingface_hub now fails
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedError) as e:
        load_gpt2("gpt2")
    msg = one_line_error(e)
    assert "pip install huggingface_hub" in msg and 'pip install -e ".[gpt2]"' in msg


def test_without_safetensors(tmp_path, monkeypatch):
    folder = write_gpt2(tmp_path / "m", random_gpt2(HF_CONFIG))
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(PretrainedError) as e:
        load_gpt2(folder)
    assert "needs safetensors: pip install safetensors huggingface_hub" in one_line_error(e)
