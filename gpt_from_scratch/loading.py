"""Every model load_checkpoint takes, besides our own .pt files: where it comes from decides how it loads.

    source                                   model                         tokenizer
    ---------------------------------------  ----------------------------  ------------------------------------
    "gpt2" .. "gpt2-xl"                      pretrained.load_gpt2 (Hub)    GPT-2's ranks, shipped (offline)
    a Hub name "owner/name" (SmolLM2, ...)   downloaded once, then as a folder below
    a folder: config.json model_type gpt2    pretrained.load_gpt2          tokenizer.json or vocab.json+merges.txt
    a folder: config.json model_type llama   llama.load_llama_folder       tokenizer.json (+ chat template)
    a .gguf file                             llama.load_gguf               the file's metadata (+ chat template)

Each returns our own GPT in eval mode (float32) and our own BPETokenizer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from .bpe import BPETokenizer, TokenizerError
from . import checkpoint
from .checkpoint import CheckpointError
from .hub import MODEL_FILES, TOKENIZER_FILES, HubError, download_folder
from .model import GPT
from .llama import load_gguf, load_llama_folder, open_gguf, read_gguf_metadata
from .pretrained import CONFIG_FILE, PretrainedError, load_gpt2, read_json
from .tokenizer_files import gpt2_tokenizer, tokenizer_from_gguf_metadata, tokenizer_from_tokenizer_json

GPT2_MODELS = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name


def _gpt2_name(name: str) -> str | None:
    short = str(name).removeprefix("openai-community/")
    return short if short in GPT2_MODELS else None


def is_pretrained_source(name_or_path: str | os.PathLike) -> bool:
    """True for what loading.py loads (a name, a folder, a .gguf file); False for our .pt files.

    "owner/name" is a Hub name only when no such local file or folder exists, "owner" is not a local
    folder and "name" has no file suffix (out/best.ckpt is a missing file, not a repository)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir() or path.suffix.lower() == ".gguf":
        return True
    if path.exists():
        return False
    name = str(name_or_path)
    if _gpt2_name(name) is not None:
        return True
    looks_like_a_file = Path(name).parent.is_dir() or Path(name).suffix.lower() in (".pt", ".pth", ".ckpt", ".bin")
    return _HUB_NAME.match(name) is not None and not looks_like_a_file


def _folder(name_or_path: str | os.PathLike, files=None) -> Path:
    """A local folder: the path itself, or a Hub repository's cached download."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if is_pretrained_source(name_or_path):
        try:
            return download_folder(str(name_or_path), files or MODEL_FILES)
        except HubError as e:
            raise PretrainedError(str(e)) from None
    raise CheckpointError(
        f"{name_or_path} is neither a file, a folder nor a model name; pass a .pt or .gguf file, a Hugging Face "
        f"folder, one of {', '.join(GPT2_MODELS)}, or a Hub name such as HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def _model_type(folder: Path) -> str:
    if not (folder / CONFIG_FILE).is_file():
        raise PretrainedError(f"{folder} has no {CONFIG_FILE}; save the model with save_pretrained")
    return read_json(folder / CONFIG_FILE).get("model_type", "gpt2")


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> GPT:
    """Our GPT (eval mode) from a GPT-2 name, a Hub name, a Hugging Face folder or a .gguf file."""
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() == ".gguf":
        return load_gguf(path)[0].to(device)
    if not path.exists() and _gpt2_name(str(name_or_path)):
        return load_gpt2(name_or_path, device)
    folder = _folder(name_or_path)
    kind = _model_type(folder)
    if kind == "gpt2":
        return load_gpt2(folder, device)
    if kind == "llama":
        return load_llama_folder(folder).to(device)
    raise PretrainedError(f"{folder} holds a {kind!r} model; only 'gpt2' and 'llama' models load into our GPT")


def tokenizer_from_folder(folder: Path) -> BPETokenizer:
    """A Hugging Face folder's tokenizer: tokenizer.json, or GPT-2's vocab.json and merges.txt."""
    if (folder / "tokenizer.json").is_file():
        return tokenizer_from_tokenizer_json(folder / "tokenizer.json")
    for name in ("vocab.json", "merges.txt"):
        if not (folder / name).is_file():
            raise TokenizerError(f"{folder} has no tokenizer.json and no {name}: "
                                 "a tokenizer folder holds tokenizer.json, or vocab.json and merges.txt")
    return BPETokenizer._from_gpt2_files(folder / "vocab.json", folder / "merges.txt")


def load_tokenizer(name_or_path: str | os.PathLike) -> BPETokenizer:
    """The BPETokenizer of a GPT-2 name (offline: shipped), a Hub name, a folder or a .gguf file."""
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() == ".gguf":
        try:
            reader = open_gguf(path)
        except PretrainedError as e:  # missing, not GGUF, or no gguf package: a tokenizer's error here
            raise TokenizerError(str(e)) from None
        return tokenizer_from_gguf_metadata(read_gguf_metadata(reader), str(path))
    if not path.exists() and _gpt2_name(str(name_or_path)):
        return gpt2_tokenizer()
    if not path.is_dir() and not is_pretrained_source(name_or_path):
        raise TokenizerError(f"no folder {name_or_path}: pass a folder holding tokenizer.json (or vocab.json and "
                             "merges.txt), a .gguf file, or a name like 'gpt2' or 'HuggingFaceTB/SmolLM2-135M'")
    try:
        folder = _folder(name_or_path, files=TOKENIZER_FILES[:1])
    except CheckpointError as e:
        raise TokenizerError(str(e)) from None
    return tokenizer_from_folder(folder)


def load_pretrained(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[GPT, BPETokenizer]:
    """(our GPT in eval mode, its BPETokenizer) from any source in the table above."""
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() == ".gguf":
        model, tokenizer = load_gguf(path)
        return model.to(device), tokenizer
    model = load_model(name_or_path, device)
    if not path.exists() and _gpt2_name(str(name_or_path)):
        return model, load_tokenizer(name_or_path)
    return model, load_tokenizer(_folder(name_or_path))  # the folder is cached by now


# The lower modules' entry points call these; they cannot import this module, which imports them.
GPT.pretrained_loader = load_model  # GPT.from_pretrained
BPETokenizer.pretrained_loader = load_tokenizer  # BPETokenizer.from_pretrained
checkpoint.pretrained_loader = (is_pretrained_source, load_pretrained)  # load_checkpoint
