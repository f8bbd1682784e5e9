"""Our models out to the ecosystem: a Hugging Face folder that transformers loads with the same logits.

Two of transformers' architectures compute what our GPT computes, each for one
set of options:

    our options                                          written as                 config.json
    ---------------------------------------------------  -------------------------  ----------------------
    pos="learned", norm="layernorm", activation gelu /   GPT2LMHeadModel            activation_function:
      gelu_tanh / relu, tied embeddings                                             gelu / gelu_new / relu
    pos="rope", norm="rmsnorm", activation="swiglu",     LlamaForCausalLM           rope_theta, rms_norm_eps,
      bias=False                                                                    num_key_value_heads

Any other combination (RoPE with LayerNorm, say) gives one error that names
the option neither has. GPT-2's exact-erf "gelu" is transformers' "gelu"
(its "gelu_new" is the tanh approximation, our "gelu_tanh"), so both export
exactly. A model without biases (bias=False, our default) is written with zero
biases, which GPT-2's layout requires and which change nothing.

The tensor names come from the same tables that import uses (weight_maps.py),
read backwards. The tokenizer goes in as tokenizer.json: a byte-level BPE with
its split regex, or a character tokenizer as a BPE without merges whose tokens
are characters (joined back without spaces), plus the chat template when the
model has one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .bpe import BPETokenizer, GPT2_SPLIT_PATTERN, NO_TOKEN, gpt2_bytes_to_unicode
from .chat import END_OF_TEXT, chat_template_for
from .checkpoint import CheckpointError
from .model import GPTConfig
from .pretrained import INSTALL_HINT
from .weight_maps import GPT2_TENSORS, LLAMA_TENSORS, export_state

GPT2_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}  # ours -> config.json's


class ExportError(CheckpointError):
    """The model has an option that neither GPT-2's nor Llama's layout can express."""


def hf_layout(config: GPTConfig) -> str:
    """"gpt2" or "llama", the layout that computes what this config computes; ExportError names what does not fit."""
    if config.pos == "learned":
        wanted = {"norm": ("layernorm",), "activation": tuple(GPT2_ACTIVATIONS), "n_kv_head": (None, config.n_head),
                  "tie_weights": (True,)}
        layout = "gpt2"
    else:
        wanted = {"norm": ("rmsnorm",), "activation": ("swiglu",), "bias": (False,)}
        layout = "llama"
    wanted.update(qk_norm=(False,), logit_softcap=(None,))  # the speedrun's options: in neither architecture
    for option, allowed in wanted.items():
        value = getattr(config, option)
        if value not in allowed:
            name = "GPT-2's (learned positions)" if layout == "gpt2" else "Llama's (RoPE)"
            raise ExportError(f"{option}={value!r} cannot be written in {name} layout, which needs "
                              f"{option} in {list(allowed)}; transformers has no architecture for this combination")
    return layout


def gpt2_hf_config(config: GPTConfig) -> dict:
    return {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": config.vocab_size,
        "n_positions": config.block_size, "n_ctx": config.block_size, "n_embd": config.n_embd,
        "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": config.mlp_hidden,
        "activation_function": GPT2_ACTIVATIONS[config.activation], "layer_norm_epsilon": config.norm_eps,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "tie_word_embeddings": True,
        "scale_attn_weights": True, "torch_dtype": "float32",
    }


def llama_hf_config(config: GPTConfig) -> dict:
    return {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": config.vocab_size,
        "hidden_size": config.n_embd, "intermediate_size": config.mlp_width,
        "num_hidden_layers": config.n_layer, "num_attention_heads": config.n_head,
        "num_key_value_heads": config.kv_heads, "head_dim": config.head_size,
        "max_position_embeddings": config.block_size, "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta, "tie_word_embeddings": config.tie_weights, "hidden_act": "silu",
        "attention_bias": False, "mlp_bias": False, "attention_dropout": 0.0, "torch_dtype": "float32",
    }


def hf_state(model, layout: str) -> dict[str, torch.Tensor]:
    """Our parameters under transformers' names (GPT-2: zero biases where ours has none)."""
    config = model.config
    ours = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    table = GPT2_TENSORS if layout == "gpt2" else LLAMA_TENSORS
    if layout == "gpt2":
        for row in GPT2_TENSORS:
            for i in range(config.n_layer) if "{i}" in row.ours else [None]:
                name = row.ours.format(i=i)
                if name.endswith(".bias") and name not in ours:  # bias=False: the same sums with zeros
                    ours[name] = torch.zeros(ours[name[: -len("bias")] + "weight"].shape[0])
    theirs = export_state(ours, table, config)
    prefix = "transformer." if layout == "gpt2" else ""
    return {prefix + k: v for k, v in theirs.items()}


def tokenizer_json(tokenizer) -> dict:
    """Our tokenizer as a Hugging Face tokenizer.json (the `tokenizers` library's format)."""
    if isinstance(tokenizer, BPETokenizer):
        spell = gpt2_bytes_to_unicode()
        specials = set(tokenizer.special_tokens.values())
        text = {i: "".join(spell[b] for b in tokenizer.vocab[i]) for i in tokenizer.vocab if i not in specials}
        vocab = {text[i]: i for i in sorted(text)}
        merges = [[text[a], text[b]] for (a, b) in tokenizer.merges]
        if tokenizer.pattern == GPT2_SPLIT_PATTERN:
            pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        elif tokenizer.pattern is None:
            pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
        else:
            pre = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": tokenizer.pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
        decoder = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
        added = tokenizer.special_tokens
    else:  # a character tokenizer: a BPE whose tokens are single characters and which has no merges
        vocab, merges, pre, decoder, added = dict(tokenizer.stoi), [], None, {"type": "Fuse"}, {}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": name, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for name, i in added.items()],
        "normalizer": None, "pre_tokenizer": pre, "post_processor": None, "decoder": decoder,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def special_token_ids(tokenizer) -> dict[str, int | None]:
    """config.json's bos and eos: <|endoftext|>, but a model that `chat` talks to ends its text with
    <|im_end|>, so that transformers' generate stops at the end of a turn. None where the tokenizer
    has no such token (transformers' own default, GPT-2's 50256, would be wrong for our vocabularies)."""
    end = getattr(tokenizer, "special_tokens", {}).get(END_OF_TEXT)
    template = chat_template_for(tokenizer)
    return {"bos_token_id": end, "eos_token_id": template.end_id if template else end}


def export_hf(src: str | os.PathLike, out: str | os.PathLike) -> tuple[Path, list[str]]:
    """Write the model at `src` (anything load_checkpoint takes) as a Hugging Face folder `out`.

    Returns the folder and notes worth telling the user (what could not be written).
    """
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise ExportError(f"export --format hf writes safetensors: {INSTALL_HINT}") from None
    from .checkpoint import load_checkpoint

    model, tokenizer = load_checkpoint(src)
    if not hasattr(model, "config") or not isinstance(model.config, GPTConfig):
        raise ExportError(f"{src} holds a {type(model).__name__}; only GPT models export to Hugging Face")
    layout = hf_layout(model.config)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    config = gpt2_hf_config(model.config) if layout == "gpt2" else llama_hf_config(model.config)
    config.update(special_token_ids(tokenizer))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(hf_state(model, layout), str(folder / "model.safetensors"), metadata={"format": "pt"})
    notes = []
    if isinstance(tokenizer, BPETokenizer) and NO_TOKEN in tokenizer.byte_ids:
        notes.append("bytes without a token of their own are dropped when encoding, as in the original")
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json(tokenizer), ensure_ascii=False), "utf-8")
    tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": model.config.block_size}
    if getattr(tokenizer, "chat_template", None):
        tok_config["chat_template"] = tokenizer.chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n", encoding="utf-8")
    return folder, notes
