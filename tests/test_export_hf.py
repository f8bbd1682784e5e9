"""export --format hf: our models in a folder that transformers loads, with the same logits and token ids."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import gpt_from_scratch as gfs
from gpt_from_scratch import cli
from gpt_from_scratch.export_hf import ExportError, export_hf, hf_layout
from gpt_from_scratch.model import GPTConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
LINES = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"


def _transformers_logits(folder: Path, ids: list[int]) -> tuple[str, torch.Tensor, list[int]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    return type(model).__name__, logits, tokenizer.encode(LINES, add_special_tokens=False)


@pytest.mark.parametrize("name, architecture", [("cpu-tiny", "GPT2LMHeadModel"),
                                                ("cpu-modern", "LlamaForCausalLM")])
def test_shipped_checkpoints_round_trip_through_transformers(name, architecture, tmp_path, monkeypatch, capsys):
    path = REPO_ROOT / "checkpoints" / f"{name}.pt"
    assert cli.main(["export", "--checkpoint", str(path), "--format", "hf", "--out", str(tmp_path / name)]) == 0
    assert "wrote" in capsys.readouterr().out
    model, tokenizer = gfs.load_checkpoint(path)
    ids = tokenizer.encode(LINES)[: model.config.block_size]
    kind, logits, their_ids = _transformers_logits(tmp_path / name, ids)
    assert kind == architecture
    with torch.no_grad():
        diff = (model(torch.tensor([ids]))[0] - logits).abs().max().item()
    assert diff < 1e-4, diff
    assert their_ids == tokenizer.encode(LINES)  # the character tokenizer, written as tokenizer.json
    again, again_tokenizer = gfs.load_checkpoint(tmp_path / name)  # and back into our GPT
    assert again_tokenizer == tokenizer
    with torch.no_grad():
        torch.testing.assert_close(again(torch.tensor([ids]))[0], model(torch.tensor([ids]))[0])


def test_a_bpe_model_with_biases_exports_as_gpt2(tmp_path, text):
    tokenizer = gfs.BPETokenizer.train(text[:20000], 320)
    tokenizer.register_special_tokens({"<|endoftext|>": 320})
    torch.manual_seed(0)
    model = gfs.GPT(GPTConfig(vocab_size=321, block_size=32, n_layer=2, n_head=2, n_embd=32, dropout=0.0,
                              bias=True, activation="gelu_tanh", mlp_hidden=48, norm_eps=1e-6)).eval()
    gfs.save_checkpoint(tmp_path / "bpe.pt", model, tokenizer)
    export_hf(tmp_path / "bpe.pt", tmp_path / "hf")
    ids = tokenizer.encode(LINES)[:32]
    kind, logits, their_ids = _transformers_logits(tmp_path / "hf", ids)
    assert kind == "GPT2LMHeadModel" and their_ids == tokenizer.encode(LINES)
    back, _ = gfs.load_checkpoint(tmp_path / "hf")  # and back into our GPT, its MLP width and epsilon kept
    assert (back.config.mlp_hidden, back.config.norm_eps) == (48, 1e-6)
    with torch.no_grad():
        assert (model(torch.tensor([ids]))[0] - logits).abs().max().item() < 1e-4
        assert torch.equal(back(torch.tensor([ids]))[0], model(torch.tensor([ids]))[0])


def test_a_chat_model_ends_its_text_at_the_end_of_a_turn(tmp_path, text):
    """eos is <|im_end|> exactly for the models that `chat` talks to (chat.chat_template_for)."""
    trained = gfs.BPETokenizer.train(text[:5000], 300)
    chatml = {"<|endoftext|>": 300, "<|im_start|>": 301, "<|im_end|>": 302}
    cases = {  # special tokens, chat template -> (bos, eos)
        "plain": ({"<|endoftext|>": 300}, None, (300, 300)),
        "ChatML": (chatml, "{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}", (300, 302)),
        "another layout": (chatml, "{% for m in messages %}[{{ m.content }}]{% endfor %}", (300, 300)),
    }
    for what, (special, template, want) in cases.items():
        tokenizer = copy.deepcopy(trained)
        tokenizer.register_special_tokens(special)
        tokenizer.chat_template = template
        model = gfs.GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
        gfs.save_checkpoint(tmp_path / "m.pt", model, tokenizer)
        export_hf(tmp_path / "m.pt", tmp_path / "hf")
        config = json.loads((tmp_path / "hf" / "config.json").read_text())
        assert (config["bos_token_id"], config["eos_token_id"]) == want, what


@pytest.mark.parametrize("options, named", [
    (dict(pos="rope", norm="layernorm"), "norm='layernorm'"),
    (dict(pos="learned", activation="swiglu"), "activation='swiglu'"),
    (dict(pos="learned", n_kv_head=2), "n_kv_head=2"),
    (dict(pos="rope", norm="rmsnorm", activation="swiglu", bias=True), "bias=True"),
    (dict(pos="learned", tie_weights=False), "tie_weights=False"),
    (dict(pos="learned", activation="relu2"), "activation='relu2'"),
    (dict(pos="rope", norm="rmsnorm", activation="swiglu", qk_norm=True), "qk_norm=True"),
    (dict(pos="learned", logit_softcap=15.0), "logit_softcap=15.0"),
])
def test_other_combinations_name_the_option(options, named, tmp_path, monkeypatch, capsys):
    config = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=4, n_embd=16, **options)
    with pytest.raises(ExportError, match=named.replace("(", r"\(")):
        hf_layout(config)
    model, tokenizer = gfs.load_checkpoint(REPO_ROOT / "checkpoints" / "cpu-tiny.pt")
    gfs.save_checkpoint(tmp_path / "odd.pt", gfs.GPT(GPTConfig(**{**config.to_dict(), "vocab_size": 65})), tokenizer)
    rc = cli.main(["export", "--checkpoint", str(tmp_path / "odd.pt"), "--format", "hf", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and named in err and err.count("\n") == 1


def test_eval_and_sample_take_a_hugging_face_folder(tmp_path, capsys, text):
    """Every --checkpoint load_checkpoint takes: the exported folder scores and samples as the .pt file does."""
    path = REPO_ROOT / "checkpoints" / "cpu-modern.pt"
    export_hf(path, tmp_path / "hf")
    (tmp_path / "small.txt").write_text(text[:20000], encoding="utf-8")
    scores = []
    for source in (path, tmp_path / "hf"):
        argv = ["eval", "--checkpoint", str(source), "--data", str(tmp_path / "small.txt"), "--device", "cpu"]
        assert cli.main(argv) == 0
        scores.append(capsys.readouterr().out)
    assert scores[0] == scores[1] and "val_loss_per_char" in scores[0]
    samples = []
    for source in (path, tmp_path / "hf"):
        argv = ["sample", "--checkpoint", str(source), "--max-new-tokens", "30", "--seed", "3", "--device", "cpu"]
        assert cli.main(argv) == 0
        samples.append(capsys.readouterr().out)
    assert samples[0] == samples[1] and len(samples[0]) > 30
