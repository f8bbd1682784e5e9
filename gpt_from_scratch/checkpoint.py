"""Saving and loading models as plain data (tensors, numbers, strings, dicts).

Checkpoints are read with torch.load(weights_only=True): no pickled classes,
so loading a file from the internet cannot run code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from .teaching import AttentionLanguageModel
from .bigram import BigramLanguageModel
from .distributed import unwrap_model
from .files import atomic_write
from .model import GPT
from .bpe import BPETokenizer
from .tokenizer import CharTokenizer, Tokenizer

FORMAT = "gpt-from-scratch/1"
MODEL_TYPES = {cls.model_type: cls for cls in (GPT, BigramLanguageModel, AttentionLanguageModel)}
TOKENIZER_KINDS = {cls.kind: cls for cls in (CharTokenizer, BPETokenizer)}

# The shipped checkpoints, best first: load_checkpoint(None) takes the first that exists.
SHIPPED_CHECKPOINTS = ("shakespeare-char.pt", "cpu-speedrun.pt", "cpu-modern.pt", "cpu-tiny.pt")
CHECKPOINT_ENV = "GPT_FROM_SCRATCH_CHECKPOINT"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit its model."""


def tokenizer_from_dict(d) -> Tokenizer:
    """The tokenizer a checkpoint holds, of the kind it recorded (files without one hold characters)."""
    kind = d.get("type", CharTokenizer.kind) if isinstance(d, dict) else CharTokenizer.kind
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"unknown tokenizer type {kind!r}; expected one of {', '.join(TOKENIZER_KINDS)}")
    return TOKENIZER_KINDS[kind].from_dict(d)


def clean_state_dict(state: dict) -> dict:
    """Strip the wrapper prefixes that compile and DDP add to parameter names."""
    out = {}
    for k, v in state.items():
        while k.startswith(("_orig_mod.", "module.")):  # in any order: DDP(compile(m)) is "module._orig_mod."
            k = k.split(".", 1)[1]
        out[k] = v
    return out


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """torch.save through files.atomic_write: the old file stays whole until the new one is."""
    with atomic_write(path) as f:
        torch.save(obj, f)
    return Path(path)


def checkpoint_payload(model: nn.Module, tokenizer: Tokenizer, half: bool = False, **extra) -> dict:
    model = unwrap_model(model)
    model_type = getattr(model, "model_type", None)
    if model_type not in MODEL_TYPES:
        raise TypeError(f"cannot checkpoint a {type(model).__name__}: not a gpt_from_scratch model")
    state = clean_state_dict(model.state_dict())
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    return {
        "format": FORMAT,
        "model_type": model_type,
        "config": model.config_dict(),
        "model": state,
        "tokenizer": tokenizer.to_dict(),
        **extra,
    }


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, tokenizer: Tokenizer, **extra
) -> Path:
    """Save model weights, config and tokenizer (plus any plain `extra` data), atomically."""
    return atomic_torch_save(checkpoint_payload(model, tokenizer, **extra), path)


def shipped_checkpoint_path(name: str | None = None) -> Path:
    """The pretrained checkpoint that ships with the repository: the best one, or the file `name`
    (e.g. "cpu-tiny.pt", which notebooks about learned positions use). $GPT_FROM_SCRATCH_CHECKPOINT
    overrides the default."""
    env = os.environ.get(CHECKPOINT_ENV)
    if env and name is None:
        return Path(env)
    folders = [Path(__file__).resolve().parent.parent / "checkpoints"]  # a checkout
    try:
        from importlib.resources import files

        folders.append(Path(str(files("gpt_from_scratch.checkpoints"))))  # an installed copy
    except Exception:
        pass
    for folder in folders:
        for candidate in ([name] if name else SHIPPED_CHECKPOINTS):
            if (folder / candidate).is_file():
                return folder / candidate
    raise CheckpointError(
        f"no shipped checkpoint {name or ''} found (looked in checkpoints/); run from a clone of the "
        "repository, or train one with `python -m gpt_from_scratch train --preset cpu-tiny` "
        "and pass --checkpoint out/best.pt"
    )


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """The raw checkpoint dict, with a one-line error for every way it can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}; check the path, or train one with "
            "`python -m gpt_from_scratch train`"
        )
    if not zipfile.is_zipfile(path):  # every torch.save since PyTorch 1.6 writes a zip archive
        raise CheckpointError(f"cannot read checkpoint {path}: the file is corrupt or not a gpt-from-scratch "
                              "checkpoint (not a complete PyTorch zip archive); re-download or retrain it")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Weights only load failed" in reason:
            reason = "it holds pickled Python objects, which are never loaded, for safety"
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is corrupt or not a gpt-from-scratch "
            f"checkpoint ({reason[:160]}); re-download or retrain it"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a gpt-from-scratch checkpoint (format {FORMAT!r} expected); "
            "re-download or retrain it"
        )
    for key in ("model_type", "config", "model", "tokenizer"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} has no {key!r} entry; re-download or retrain it")
    if ckpt["model_type"] not in MODEL_TYPES:
        raise CheckpointError(f"checkpoint {path} holds an unknown model type {ckpt['model_type']!r}")
    return ckpt


def float32_state(state: dict) -> dict:
    """A state dict with floating-point tensors as float32 (shipped files may hold float16)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def model_from_checkpoint(ckpt: dict, path: str | os.PathLike = "checkpoint") -> nn.Module:
    """Build the model a checkpoint describes and load its weights (as float32)."""
    cls = MODEL_TYPES[ckpt["model_type"]]
    try:
        model = cls.from_config_dict(dict(ckpt["config"]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has an invalid model config: {e}") from None
    try:
        model.load_state_dict(float32_state(ckpt["model"]))
    except RuntimeError as e:
        first = [ln.strip() for ln in str(e).splitlines() if ln.strip()][1:2] or [str(e)[:160]]
        raise CheckpointError(
            f"checkpoint {path} does not match its model config ({first[0][:200]}); "
            "re-download or retrain it"
        ) from None
    return model


def model_and_tokenizer(ckpt: dict, path: str | os.PathLike = "checkpoint") -> tuple[nn.Module, Tokenizer]:
    """The model (float32, on the CPU) and the tokenizer a checkpoint dict holds, checked against each other."""
    model = model_from_checkpoint(ckpt, path)
    try:
        tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} has an invalid tokenizer: {e}") from None
    if tokenizer.vocab_size != model.vocab_size:
        raise CheckpointError(
            f"checkpoint {path}: the tokenizer has {tokenizer.vocab_size} tokens but the "
            f"model expects {model.vocab_size}; re-download or retrain it"
        )
    return model, tokenizer


# (is_pretrained_source, load_pretrained): loading.py registers them, as it imports this module.
pretrained_loader: tuple[Callable[[Any], bool], Callable[..., tuple[nn.Module, Tokenizer]]] | None = None


def load_checkpoint(
    path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Tokenizer]:
    """(model in eval mode on `device`, tokenizer). path=None loads the shipped checkpoint.

    Besides our .pt files: "gpt2".."gpt2-xl", a Hub name, a Hugging Face folder or a .gguf file (loading.py)."""
    if path is not None and pretrained_loader is not None:
        is_pretrained_source, load_pretrained = pretrained_loader
        if is_pretrained_source(path):
            return load_pretrained(path, device)
    path = shipped_checkpoint_path() if path is None else Path(path)
    model, tokenizer = model_and_tokenizer(read_checkpoint(path, "cpu"), path)
    return model.to(device).eval(), tokenizer


def export_checkpoint(
    src: str | os.PathLike, dst: str | os.PathLike, half: bool = False
) -> Path:
    """A small file to ship: weights, config, tokenizer and the training record.

    Drops the optimizer and RNG state (needed only to resume). With half=True
    the weights are stored in float16; load_checkpoint turns them back into float32.
    """
    ckpt = read_checkpoint(src)
    model, tokenizer = model_and_tokenizer(ckpt, src)
    keep = {k: ckpt[k] for k in ("iter_num", "best_val_loss", "history", "train_config") if k in ckpt}
    return atomic_torch_save(checkpoint_payload(model, tokenizer, half=half, **keep), dst)
