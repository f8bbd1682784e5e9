"""Llama-family models (SmolLM2 and its kin) in our own GPT: from a Hugging Face folder, the Hub or a GGUF file.

A Llama block is our GPT with the chapter-07 options all on: norm="rmsnorm",
activation="swiglu", pos="rope", bias=False, and n_kv_head key/value heads
(grouped-query attention). Only the sizes, RoPE's base (rope_theta) and the
norm's epsilon vary, and config.json (or the GGUF metadata) states them.
weight_maps.py holds the names (LLAMA_TENSORS, GGUF_LLAMA_TENSORS).

GGUF, llama.cpp's format, needs one more step. llama.cpp's RoPE rotates
*adjacent* pairs of a head's dimensions (0 with 1, 2 with 3, ...), ours and
Hugging Face's rotate *halves* (i with i + hs/2). So that the same weights give
the same attention, llama.cpp's converter reorders the rows of every head of
W_q and W_k: row i + hs/2 moves next to row i. `unpermute_qk` puts them back.
The rotation of a query then pairs the same numbers in both conventions, and
q.k (a sum over dimensions, in any order) is unchanged.

GGUF tensors may be quantized (SmolLM2's offline file: 4-bit Q4_1 blocks, the
embedding Q8_0): gguf.quants.dequantize turns each into float32 numbers, which
are what our float32 GPT computes with. Those numbers differ from the bf16
originals by the quantization error; transformers' GGUF loader dequantizes to
the same numbers, so the two agree with each other.

gguf (llama.cpp's reader), safetensors and huggingface_hub are optional:
pip install gguf safetensors huggingface_hub.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .model import GPT, GPTConfig
from .pretrained import PretrainedError, model_from_state, read_json, read_safetensors
from .weight_maps import GGUF_LLAMA_TENSORS, LLAMA_TENSORS, WeightMapError, import_state

# --- config.json <-> GPTConfig ----------------------------------------------------------------


def _rope_theta(hf: dict) -> float:
    """RoPE's base: `rope_theta`, or (transformers 5) `rope_parameters["rope_theta"]`; refuses scaled RoPE."""
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or {}
    kind = params.get("rope_type", scaling.get("rope_type", scaling.get("type", "default")))
    if kind != "default":
        raise PretrainedError(f"RoPE scaling {kind!r} is not something our GPT computes")
    return float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))


def llama_config(hf: dict, source: str = "config.json") -> GPTConfig:
    """Our GPTConfig for a Hugging Face Llama config.json, refusing what our GPT cannot compute."""
    try:
        n_embd, n_head = int(hf["hidden_size"]), int(hf["num_attention_heads"])
        n_kv_head = int(hf.get("num_key_value_heads") or n_head)
        sizes = dict(vocab_size=int(hf["vocab_size"]), block_size=int(hf["max_position_embeddings"]),
                     n_layer=int(hf["num_hidden_layers"]), n_head=n_head, n_embd=n_embd,
                     mlp_hidden=int(hf["intermediate_size"]))
    except (KeyError, TypeError, ValueError) as e:
        raise PretrainedError(f"{source} lacks a valid Llama size ({e}); download it again") from None
    checks = {
        "hidden_act": (hf.get("hidden_act", "silu") != "silu", "silu"),
        "attention_bias": (bool(hf.get("attention_bias", False)), "false"),
        "mlp_bias": (bool(hf.get("mlp_bias", False)), "false"),
        "head_dim": (hf.get("head_dim") not in (None, n_embd // n_head), str(n_embd // n_head)),
        "pretraining_tp": (hf.get("pretraining_tp", 1) != 1, "1"),
    }
    for key, (bad, wanted) in checks.items():
        if bad:
            raise PretrainedError(f"{source}: {key} is {hf[key]!r}, but our GPT needs {wanted}")
    try:
        return GPTConfig(
            **sizes, dropout=0.0, bias=False, activation="swiglu", norm="rmsnorm", pos="rope",
            n_kv_head=None if n_kv_head == n_head else n_kv_head, tie_weights=bool(hf.get("tie_word_embeddings", True)),
            rope_theta=_rope_theta(hf), norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        )
    except (TypeError, ValueError) as e:
        raise PretrainedError(f"{source} gives sizes our GPT rejects: {e}") from None


def load_llama_folder(folder: str | os.PathLike) -> GPT:
    """Our GPT (eval mode, float32, CPU) from a Hugging Face Llama folder: config.json + model.safetensors."""
    folder = Path(folder)
    from .pretrained import local_gpt2_files  # finds config.json and the (possibly sharded) safetensors

    config_path, weight_paths = local_gpt2_files(folder)
    config = llama_config(read_json(config_path), str(config_path))
    hf_state = read_safetensors(weight_paths)
    if config.tie_weights:
        hf_state.pop("lm_head.weight", None)  # some files repeat the tied matrix
    return _gpt_from(hf_state, LLAMA_TENSORS, config, str(folder))


def _gpt_from(theirs: dict, table, config: GPTConfig, source: str) -> GPT:
    try:
        state = import_state(theirs, table, config)
    except WeightMapError as e:
        raise PretrainedError(f"{source} {e}; is it a Llama model that fits its config?") from None
    return model_from_state(config, state).eval()


# --- GGUF ----------------------------------------------------------------------------


def unpermute_qk(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """llama.cpp's row order of W_q or W_k (out, in) -> Hugging Face's (see the module docstring).

    Per head, llama.cpp stores the rows as pairs (i, i + hs/2) side by side: (hs/2, 2) in row-major
    order. Ours are the two halves one after the other: (2, hs/2). A transpose of those two axes.
    """
    out, C = w.shape
    hs = out // n_heads
    return w.reshape(n_heads, hs // 2, 2, C).transpose(1, 2).reshape(out, C)


def permute_qk(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of unpermute_qk: Hugging Face's row order -> llama.cpp's."""
    out, C = w.shape
    hs = out // n_heads
    return w.reshape(n_heads, 2, hs // 2, C).transpose(1, 2).reshape(out, C)


def _import_gguf():
    try:
        import gguf
    except ImportError:
        raise PretrainedError("reading .gguf files needs llama.cpp's gguf package: pip install gguf") from None
    return gguf


def open_gguf(path: str | os.PathLike):
    """A gguf.GGUFReader on `path`; PretrainedError, one line, for a missing, cut-short or non-GGUF file."""
    gguf = _import_gguf()
    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"no GGUF file at {path}; check the path")
    try:
        return gguf.GGUFReader(str(path))
    except (OSError, ValueError) as e:
        raise PretrainedError(f"cannot read {path} as GGUF ({str(e)[:120]}); download it again") from None


def read_gguf_metadata(reader) -> dict:
    """Every key of a GGUF header as plain Python values (strings, numbers, lists)."""
    return {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


def read_gguf_tensors(reader) -> dict[str, torch.Tensor]:
    """Every tensor of a GGUF file, dequantized to float32, shaped as PyTorch wants it: (out, in)."""
    gguf = _import_gguf()
    tensors = {}
    for t in reader.tensors:
        try:
            array = gguf.quants.dequantize(t.data, t.tensor_type)  # numpy float32
        except NotImplementedError:
            raise PretrainedError(f"the gguf package cannot dequantize {t.name}'s type {t.tensor_type!r}; "
                                  "try a newer gguf (pip install -U gguf) or another quantization of the model") from None
        shape = tuple(reversed([int(n) for n in t.shape]))  # GGUF lists (in, out), the fastest axis first
        array = array.reshape(shape).astype("float32", copy=not array.flags.writeable)  # F32 tensors: the file itself
        tensors[t.name] = torch.from_numpy(array)
    return tensors


def gguf_config(meta: dict, has_output: bool, source: str) -> GPTConfig:
    """Our GPTConfig for a GGUF file's llama.* metadata."""
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise PretrainedError(f"{source} holds a {arch!r} model; only 'llama' models load here")
    try:
        n_head, n_embd = int(meta["llama.attention.head_count"]), int(meta["llama.embedding_length"])
        n_kv_head = int(meta.get("llama.attention.head_count_kv", n_head))
        hf = {"hidden_size": n_embd, "num_attention_heads": n_head, "num_key_value_heads": n_kv_head,
              "vocab_size": len(meta["tokenizer.ggml.tokens"]), "max_position_embeddings": meta["llama.context_length"],
              "num_hidden_layers": meta["llama.block_count"], "intermediate_size": meta["llama.feed_forward_length"],
              "tie_word_embeddings": not has_output, "rope_theta": meta.get("llama.rope.freq_base", 10000.0),
              "rms_norm_eps": meta["llama.attention.layer_norm_rms_epsilon"]}
    except KeyError as e:
        raise PretrainedError(f"{source} lacks the metadata {e}; is it a complete llama GGUF file?") from None
    if meta.get("llama.rope.dimension_count", n_embd // n_head) != n_embd // n_head:
        raise PretrainedError(f"{source}: RoPE on part of each head is not something our GPT computes")
    if "llama.rope.scaling.type" in meta and meta["llama.rope.scaling.type"] not in ("none", None):
        raise PretrainedError(f"{source}: RoPE scaling {meta['llama.rope.scaling.type']!r} is not supported")
    return llama_config(hf, source)


def load_gguf(path: str | os.PathLike):
    """(our GPT in eval mode, float32, CPU; its BPETokenizer) from a llama.cpp GGUF file."""
    from .tokenizer_files import tokenizer_from_gguf_metadata

    path = Path(path)
    reader = open_gguf(path)
    meta = read_gguf_metadata(reader)
    tensors = read_gguf_tensors(reader)
    config = gguf_config(meta, "output.weight" in tensors, str(path))
    for i in range(config.n_layer):  # llama.cpp's adjacent-pair rows -> rotate-halves rows
        for name, heads in (("attn_q", config.n_head), ("attn_k", config.kv_heads)):
            key = f"blk.{i}.{name}.weight"
            if key in tensors:
                tensors[key] = unpermute_qk(tensors[key], heads)
    model = _gpt_from(tensors, GGUF_LLAMA_TENSORS, config, str(path))
    return model, tokenizer_from_gguf_metadata(meta, str(path))
