"""OpenAI's GPT-2 weights, loaded into our own GPT.

GPT-2 is the model our GPT was modelled on, so its weights fit with almost no
change. They come from the Hugging Face Hub (or a folder in the same layout)
as `config.json`, which gives the sizes, and `model.safetensors`, a plain
table of named tensors. Loading is one renaming table:

    Hugging Face name (shape)         our name                              change
    --------------------------------  ------------------------------------  -----------------------
    wte.weight (V, C)                 transformer.wte.weight                none; lm_head shares it
    wpe.weight (P, C)                 transformer.wpe.weight                none
    h.{i}.ln_1.weight, .bias (C,)     transformer.h.{i}.ln_1.*              none
    h.{i}.attn.c_attn.weight (C, 3C)  transformer.h.{i}.attn.c_attn.weight  transpose to (3C, C)
    h.{i}.attn.c_attn.bias (3C,)      transformer.h.{i}.attn.c_attn.bias    none
    h.{i}.attn.c_proj.weight (C, C)   transformer.h.{i}.attn.c_proj.weight  transpose
    h.{i}.attn.c_proj.bias (C,)       transformer.h.{i}.attn.c_proj.bias    none
    h.{i}.ln_2.weight, .bias (C,)     transformer.h.{i}.ln_2.*              none
    h.{i}.mlp.c_fc.weight (C, 4C)     transformer.h.{i}.mlp.c_fc.weight     transpose to (4C, C)
    h.{i}.mlp.c_fc.bias (4C,)         transformer.h.{i}.mlp.c_fc.bias       none
    h.{i}.mlp.c_proj.weight (4C, C)   transformer.h.{i}.mlp.c_proj.weight   transpose to (C, 4C)
    h.{i}.mlp.c_proj.bias (C,)        transformer.h.{i}.mlp.c_proj.bias     none
    ln_f.weight, .bias (C,)           transformer.ln_f.*                    none
    h.{i}.attn.bias (1, 1, P, P)      -                                     skipped: a mask buffer
    h.{i}.attn.masked_bias ()         -                                     skipped: a mask buffer
    lm_head.weight (V, C)             lm_head.weight = wte                  must equal wte.weight

(C = n_embd, V = vocab_size, P = n_positions, i = 0 .. n_layer - 1.)

Why the changes:
* Transpose. OpenAI wrote GPT-2 in TensorFlow, and Hugging Face kept its
  layout: a `Conv1D` layer stores its weight as (in, out) and computes
  x @ W + b. nn.Linear stores (out, in) and computes x @ W.T + b. Same
  numbers, transposed.
* Skipped. `attn.bias` is not a bias at all: it is the (1, 1, P, P) causal
  mask that older Hugging Face versions saved with the weights (and
  `masked_bias` the -10000 filled in above it). Our attention builds its
  mask itself.
* Tied. GPT-2 reads its output layer from the token embedding, as our GPT
  does with tie_weights=True. `GPT2LMHeadModel` files may repeat it as
  `lm_head.weight`; `GPT2Model` files leave it out. Both load.
* Prefix. `GPT2LMHeadModel` files name everything `transformer.wte.weight`
  and so on, `GPT2Model` files just `wte.weight`: the prefix is dropped first.

The sizes come from config.json: n_layer, n_head, n_embd, vocab_size,
n_positions as block_size, n_inner as mlp_hidden (null: 4 * n_embd) and
layer_norm_epsilon as norm_eps. GPT-2's GELU ("gelu_new") is the tanh approximation,
our activation="gelu_tanh". Every tensor in the file must be used or
deliberately skipped, and every parameter of ours must get a value, with the
shapes checked, so a wrong file fails loudly instead of loading half a model.

safetensors and huggingface_hub are optional: `pip install -e ".[gpt2]"`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn

from .checkpoint import CheckpointError
from .hub import GPT2_REPOS, HubError, download
from .model import GPT, GPTConfig
from .weight_maps import GPT2_TENSORS, import_state

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"  # save_pretrained's split of a large model

# config.json's activation_function -> our GPTConfig.activation
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
MASK_BUFFERS = ("attn.bias", "attn.masked_bias")
INSTALL_HINT = 'pip install safetensors huggingface_hub (or pip install -e ".[gpt2]")'


class PretrainedError(CheckpointError):
    """GPT-2's files cannot be found, downloaded or fitted into our GPT."""


def load_gpt2(name_or_dir: str | os.PathLike, device: str | torch.device = "cpu") -> GPT:
    """Our own GPT (eval mode, float32) holding OpenAI's GPT-2 weights.

    `name_or_dir` is "gpt2", "gpt2-medium", "gpt2-large" or "gpt2-xl"
    (downloaded once from the Hugging Face Hub, then read from its cache), or a
    folder with config.json and model.safetensors, which loads offline. An
    existing folder wins over a Hub name of the same spelling.
    """
    config_path, weight_paths = resolve_gpt2_files(name_or_dir)
    config = gpt2_config(read_json(config_path), source=config_path)
    hf_state = read_safetensors(weight_paths)
    state = convert_gpt2_state(hf_state, config, source=weight_paths[0].parent)
    del hf_state  # the converted tensors are all we keep
    model = model_from_state(config, state)
    return model.to(device).eval()



# --- finding the files ---------------------------------------------------------


def resolve_gpt2_files(name_or_dir: str | os.PathLike) -> tuple[Path, list[Path]]:
    """config.json and the safetensors file(s), from a folder or the Hub cache."""
    folder = Path(name_or_dir).expanduser()
    if folder.is_dir():
        return local_gpt2_files(folder)
    name = str(name_or_dir)
    short = name.removeprefix("openai-community/")
    if short not in GPT2_REPOS:
        raise PretrainedError(
            f"{name!r} is neither a folder nor a GPT-2 model: use one of "
            f"{', '.join(GPT2_REPOS)}, or a folder with {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    return download_gpt2_files(short)


def local_gpt2_files(folder: Path) -> tuple[Path, list[Path]]:
    """The files of a folder in Hugging Face layout, with one clear error if any is missing."""
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise PretrainedError(f"{folder} has no {CONFIG_FILE}; save the model with save_pretrained")
    if (folder / WEIGHTS_FILE).is_file():
        return config_path, [folder / WEIGHTS_FILE]
    if (folder / WEIGHTS_INDEX).is_file():
        weight_map = read_json(folder / WEIGHTS_INDEX).get("weight_map", {})
        shards = [folder / f for f in sorted(set(weight_map.values()))]
        missing = [p.name for p in shards if not p.is_file()]
        if not shards or missing:
            what = f"lacks {_names(missing)}" if missing else f"has a {WEIGHTS_INDEX} that lists no files"
            raise PretrainedError(f"{folder} {what}; copy the whole folder again")
        return config_path, shards
    hint = " (pytorch_model.bin is not read: re-save it with save_pretrained(safe_serialization=True))"
    has_bin = (folder / "pytorch_model.bin").is_file()
    raise PretrainedError(f"{folder} has no {WEIGHTS_FILE}{hint if has_bin else ''}; save it with save_pretrained")


def download_gpt2_files(short: str) -> tuple[Path, list[Path]]:
    """Download (once; afterwards the cache answers) GPT-2's config and weights from the Hub."""
    try:
        config_path, weights_path = download(short, (CONFIG_FILE, WEIGHTS_FILE))
    except HubError as e:
        raise PretrainedError(str(e)) from None
    return config_path, [weights_path]


def _import_optional(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise PretrainedError(f"loading GPT-2 needs {module}: {INSTALL_HINT}") from None


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PretrainedError(f"cannot read {path}: {e}; download it again") from None
    if not isinstance(data, dict):
        raise PretrainedError(f"{path} is not a JSON object; download it again")
    return data


# --- config.json -> GPTConfig ----------------------------------------------------------


def gpt2_config(hf: dict, source: Path | str = CONFIG_FILE) -> GPTConfig:
    """Our GPTConfig for a Hugging Face GPT-2 config.json, refusing what we cannot compute."""
    model_type = hf.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise PretrainedError(f"{source} describes a {model_type!r} model; only GPT-2 ('gpt2') loads here")
    try:
        n_embd = int(hf["n_embd"])
        sizes = dict(
            vocab_size=int(hf["vocab_size"]),
            block_size=int(hf.get("n_positions", hf.get("n_ctx"))),
            n_layer=int(hf["n_layer"]),
            n_head=int(hf["n_head"]),
            n_embd=n_embd,
        )
        inner = hf.get("n_inner")  # the MLP's hidden width; null means 4 * n_embd
        sizes.update(mlp_hidden=None if inner in (None, 4 * n_embd) else int(inner),
                     norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)))
    except (KeyError, TypeError, ValueError) as e:
        raise PretrainedError(f"{source} lacks a valid GPT-2 size ({e}); download it again") from None
    act = hf.get("activation_function", "gelu_new")
    if act not in ACTIVATIONS:
        raise PretrainedError(f"{source}: activation_function {act!r} is not one of {list(ACTIVATIONS)}")
    unsupported = {
        "scale_attn_weights": (hf.get("scale_attn_weights", True) is not True, "true"),
        "scale_attn_by_inverse_layer_idx": (hf.get("scale_attn_by_inverse_layer_idx", False), "false"),
        "add_cross_attention": (hf.get("add_cross_attention", False), "false"),
        "tie_word_embeddings": (hf.get("tie_word_embeddings", True) is not True, "true"),
    }
    for key, (bad, wanted) in unsupported.items():
        if bad:
            raise PretrainedError(f"{source}: {key} is {hf[key]!r}, but our GPT needs {wanted}")
    try:
        return GPTConfig(
            **sizes, dropout=0.0, bias=True, activation=ACTIVATIONS[act], tie_weights=True,
            norm="layernorm", pos="learned",  # GPT-2's block: the defaults, spelled out
        )
    except (TypeError, ValueError) as e:
        raise PretrainedError(f"{source} gives sizes our GPT rejects: {e}") from None


# --- the weights ---------------------------------------------------------------------


def read_safetensors(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Every tensor of the file(s), by its Hugging Face name, as float32 on the CPU."""
    safetensors = _import_optional("safetensors")
    from safetensors import safe_open

    state: dict[str, torch.Tensor] = {}
    for path in paths:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                for name in f.keys():
                    state[name] = f.get_tensor(name).float()  # one at a time: no second copy of the file
        except (OSError, safetensors.SafetensorError) as e:
            raise PretrainedError(f"cannot read {path}: {e}; download it again") from None
    return state


def gpt2_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor a GPT-2 file must hold (names without 'transformer.'), with its shape."""
    C, V, P = config.n_embd, config.vocab_size, config.block_size
    H = config.mlp_width  # the MLP's hidden width (n_inner)
    shapes = {"wte.weight": (V, C), "wpe.weight": (P, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(config.n_layer):
        layer = {
            "ln_1.weight": (C,), "ln_1.bias": (C,),
            "attn.c_attn.weight": (C, 3 * C), "attn.c_attn.bias": (3 * C,),  # Conv1D: (in, out)
            "attn.c_proj.weight": (C, C), "attn.c_proj.bias": (C,),
            "ln_2.weight": (C,), "ln_2.bias": (C,),
            "mlp.c_fc.weight": (C, H), "mlp.c_fc.bias": (H,),
            "mlp.c_proj.weight": (H, C), "mlp.c_proj.bias": (C,),
        }
        shapes.update({f"h.{i}.{k}": shape for k, shape in layer.items()})
    return shapes


def _in_layer(name: str) -> str:
    """The name inside a block: "h.3.attn.c_attn.bias" -> "attn.c_attn.bias" ("" outside the blocks)."""
    parts = name.split(".", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "h" else ""


def _names(names) -> str:
    names = sorted(names)
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def convert_gpt2_state(
    hf_state: dict[str, torch.Tensor], config: GPTConfig, source: Path | str = WEIGHTS_FILE
) -> dict[str, torch.Tensor]:
    """Hugging Face GPT-2 tensors -> our parameter names (see the table at the top)."""
    state: dict[str, torch.Tensor] = {}
    for name, tensor in hf_state.items():
        short = name.removeprefix("transformer.")  # GPT2LMHeadModel's prefix; GPT2Model has none
        if short in state:
            raise PretrainedError(f"{source} holds {short} twice (with and without 'transformer.'); re-save it")
        state[short] = tensor
    lm_head = state.pop("lm_head.weight", None)
    for n in [n for n in state if _in_layer(n) in MASK_BUFFERS]:
        del state[n]  # causal-mask buffers, not weights

    expected = gpt2_shapes(config)
    if set(state) != set(expected):
        missing, unknown = set(expected) - set(state), set(state) - set(expected)
        what = f"lacks {_names(missing)}" if missing else f"holds tensors GPT-2 has not: {_names(unknown)}"
        raise PretrainedError(f"{source} {what}; is it a GPT-2 model that fits its {CONFIG_FILE}?")
    for n, shape in expected.items():
        if tuple(state[n].shape) != shape:
            raise PretrainedError(
                f"{source}: {n} has shape {tuple(state[n].shape)}, {CONFIG_FILE} implies {shape}; "
                "download the model again"
            )
    if lm_head is not None and not torch.equal(lm_head, state["wte.weight"]):
        raise PretrainedError(f"{source}: lm_head.weight differs from wte.weight; only tied GPT-2 weights load")

    return import_state(state, GPT2_TENSORS, config)  # the table above, as data (weight_maps.py)


def model_from_state(config: GPTConfig, state: dict[str, torch.Tensor]) -> GPT:
    """Our GPT with exactly these parameters (names as in model.named_parameters())."""
    # The skeleton is built on the meta device: shapes only, no memory and no
    # random initialisation of (for gpt2-xl) 1.5 billion numbers we overwrite.
    with torch.device("meta"):
        model = GPT(config)
    params = dict(model.named_parameters())  # the tied lm_head.weight is listed once, as transformer.wte.weight
    if set(params) != set(state):
        missing, unknown = set(params) - set(state), set(state) - set(params)
        raise PretrainedError(
            f"GPT-2's weights do not fit our GPT (missing {_names(missing) or 'nothing'}, "
            f"unused {_names(unknown) or 'nothing'}); update gpt_from_scratch"
        )
    for name, tensor in state.items():
        if tensor.shape != params[name].shape:
            shapes = f"{tuple(tensor.shape)} vs ours {tuple(params[name].shape)}"
            raise PretrainedError(f"GPT-2's {name} has shape {shapes}; update gpt_from_scratch")
        module_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(module_name), attr, nn.Parameter(tensor))
    # wte now holds a new Parameter while lm_head still holds the empty meta one: tie them again.
    if config.tie_weights:
        model.lm_head.weight = model.transformer.wte.weight
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise PretrainedError(f"GPT-2 gives no values for our {_names(leftover)}; update gpt_from_scratch")
    return model
