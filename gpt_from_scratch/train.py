"""The training engine shared by the notebooks and `python -m gpt_from_scratch train`.

One loop for every model in the course, in four parts a reader can follow:

1. setup (`_prepare`): the data and tokenizer, the model (new, fine-tuned from
   a checkpoint, or resumed), the optimizer, mixed precision, DDP;
2. one optimizer step (`Trainer.step`): gradient accumulation over micro-steps,
   clipping, the learning rate of the warmup + cosine schedule;
3. evaluate and checkpoint (`Trainer.evaluate`, `Trainer.save`): losses on both
   splits every eval_interval steps, best.pt and ckpt.pt written atomically;
4. the loop (`Trainer.run`): steps until max_iters, the time budget of
   max_minutes (budget.py), or Ctrl-C, which saves first.

The optimizer is AdamW, or Muon for the blocks' matrices (muon.py).

DistributedDataParallel under torchrun lives in distributed.py.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import (
    atomic_torch_save,
    checkpoint_payload,
    float32_state,
    model_and_tokenizer,
    read_checkpoint,
    tokenizer_from_dict,
)
from .budget import TimeBudget
from .data import encode_text, get_batch, load_text, make_tokenizer, prepare_data
from .device import get_device
from .distributed import Distributed, unwrap_model
from .files import atomic_write
from .model import GPT, GPTConfig
from .plotting import plot_losses
from .muon import make_muon

MODEL_FIELDS = {f.name for f in dataclasses.fields(GPTConfig)}


class ConfigError(ValueError):
    """Bad settings or data for a training run: the CLI prints it as `error: ...`."""


@dataclass
class TrainConfig:
    # the model: the GPT that train() builds when it is given none (None: GPTConfig(), the flagship).
    # Its vocab_size is taken from the tokenizer.
    model: GPTConfig | None = None
    train_window: int | None = None  # tokens per training sequence; None: the model's block_size
    tokenizer: str = "char"  # "char", or "bpe" (byte-level BPE trained on the training split)
    bpe_vocab_size: int = 512  # size of the BPE vocabulary (tokenizer="bpe" only)
    init_from: str | None = None  # fine-tune: start from this checkpoint's weights and tokenizer
    # optimisation
    batch_size: int = 64  # sequences per micro-step (per process under torchrun)
    grad_accum: int = 1  # micro-steps per optimizer step
    max_iters: int = 5000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4  # the cosine schedule ends here
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: decay over max_iters
    decay_lr: bool = True  # False: constant learning_rate
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1  # on 2-D weights only
    grad_clip: float = 1.0  # 0 disables clipping
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower
    optimizer: str = "adamw"  # "adamw" | "muon" (Muon for the blocks' matrices, AdamW for the rest: muon.py)
    muon_lr: float = 0.02  # Muon's peak learning rate (warmup and decay as learning_rate's)
    muon_momentum: float = 0.95
    # stop after this many minutes of training steps (evaluation excluded); the schedule is stretched to
    # fit (budget.py). max_iters still caps the steps. None: no time limit.
    max_minutes: float | None = None
    # what max_minutes counts: "wall" clock, or "cpu", this process's CPU time (all its threads): with one
    # thread on a machine shared with other jobs, a fair measure of the work done
    budget_clock: str = "wall"
    # evaluation
    eval_interval: int = 250
    eval_iters: int = 200  # batches averaged per estimate
    # system
    device: str = "auto"
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    compile: bool = False
    seed: int = 1337
    data: str | None = None  # a text file; None means Tiny Shakespeare
    train_frac: float = 0.9
    out_dir: str | None = None  # None: keep nothing on disk (notebooks)
    resume: bool = False
    progress: bool = True

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed. GPTConfig's fields (n_layer, block_size, dropout, ...)
        change `model` (the flagship's when there is none): one call for a whole experiment."""
        if "vocab_size" in changes:
            raise ConfigError("the model's vocab_size comes from the tokenizer; "
                              "set bpe_vocab_size for the size of a BPE vocabulary")
        model_changes = {k: changes.pop(k) for k in list(changes) if k in MODEL_FIELDS}
        if model_changes:
            base = changes.get("model", self.model) or GPTConfig()
            try:
                changes["model"] = dataclasses.replace(base, **model_changes)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        return dataclasses.replace(self, **changes)

    @property
    def gpt(self) -> GPTConfig:
        """The model config in force: `model`, or the flagship's."""
        return self.model if self.model is not None else GPTConfig()

    @property
    def out_path(self) -> Path | None:
        return Path(self.out_dir) if self.out_dir else None

    def window(self, model: nn.Module) -> int:
        """Tokens per training sequence: train_window, or the model's own context."""
        return self.train_window or unwrap_model(model).block_size


PRESETS: dict[str, TrainConfig] = {
    # nanoGPT's shakespeare-char recipe: the flagship model and the baseline (10.7M parameters).
    "shakespeare-char": TrainConfig(model=GPTConfig()),
    # A few minutes on a laptop CPU, and it still writes recognisable play text (0.8M).
    "cpu-tiny": TrainConfig(
        model=GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0), batch_size=32,
        max_iters=2000, learning_rate=2e-3, min_lr=2e-4, warmup_iters=100, eval_interval=200, eval_iters=20,
    ),
    # The CPU speedrun (benchmarks/README.md): the lowest val loss in a few minutes on a 2-core CPU, chosen
    # by an equal-time ablation (benchmarks/speedrun_ablation.py). It trains for max_minutes (5 by default;
    # set --max-minutes), the schedule stretched to fit.
    "cpu-speedrun": TrainConfig(
        model=GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, norm="rmsnorm",
                        activation="relu2", pos="rope", n_kv_head=2, mlp_hidden=512),
        batch_size=16, max_iters=10**6, max_minutes=5.0, learning_rate=3e-3, min_lr=3e-4, warmup_iters=100,
        eval_interval=200, eval_iters=20,
    ),
    # Larger sizes, as in the bigger "custom GPT" projects: about 10M, 25M, 80M and 350M parameters.
    # They overfit Tiny Shakespeare sooner the larger they are: watch val. README.md has a memory table.
    "tiny": TrainConfig(model=GPTConfig()),
    "small": TrainConfig(
        model=GPTConfig(n_layer=8, n_head=8, n_embd=512, dropout=0.25), learning_rate=6e-4, min_lr=6e-5,
        warmup_iters=200,
    ),
    "medium": TrainConfig(
        model=GPTConfig(n_layer=12, n_head=12, n_embd=768, dropout=0.3), learning_rate=3e-4, min_lr=3e-5,
        warmup_iters=200, batch_size=32, grad_accum=2,
    ),
    "large": TrainConfig(
        model=GPTConfig(n_layer=28, n_head=16, n_embd=1024, dropout=0.3), learning_rate=2e-4, min_lr=2e-5,
        warmup_iters=300, batch_size=16, grad_accum=4, gradient_checkpointing=True,
    ),
    # Fine-tuning (`train --init-from CKPT`): the model, its context and its tokenizer come from the
    # checkpoint. The learning rate is a tenth of cpu-tiny's, so the first steps adjust what the model
    # knows instead of wrecking it; the warmup is short because the weights are already good; and it
    # evaluates every 50 steps, because a small text is memorised within a few hundred steps: best.pt
    # keeps the model from before that happened.
    "finetune": TrainConfig(
        batch_size=32, max_iters=600, learning_rate=2e-4, min_lr=2e-5, warmup_iters=20,
        eval_interval=50, eval_iters=20,
    ),
}


def get_preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


# --- pieces ------------------------------------------------------------------


def get_lr(it: int, cfg: TrainConfig, total: int | None = None) -> float:
    """Linear warmup to learning_rate, then cosine decay to min_lr.

    `total`: the steps a time budget is estimated to hold (budget.py). The decay
    then ends there, or at lr_decay_iters / max_iters if that is sooner, and a
    budget too short for the whole warmup warms up over its first half.
    """
    if not cfg.decay_lr:
        return cfg.learning_rate
    decay_iters = cfg.lr_decay_iters or cfg.max_iters
    warmup = cfg.warmup_iters
    if total is not None:
        decay_iters = min(decay_iters, total)
        warmup = min(warmup, decay_iters // 2)
    if it < warmup:
        return cfg.learning_rate * (it + 1) / (warmup + 1)
    if it >= decay_iters:
        return cfg.min_lr
    ratio = (it - warmup) / max(1, decay_iters - warmup)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 -> 0
    return cfg.min_lr + coeff * (cfg.learning_rate - cfg.min_lr)


def configure_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW that decays matrices (weights, embeddings) but not biases or LayerNorm gains.

    With cfg.optimizer == "muon": Muon for the blocks' matrices, this AdamW for the rest (muon.py).
    """
    if cfg.optimizer == "muon":
        return make_muon(unwrap_model(model), cfg.learning_rate, cfg.muon_lr, cfg.weight_decay,
                         betas=(cfg.beta1, cfg.beta2), momentum=cfg.muon_momentum)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), **extra)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """auto: bf16 on GPUs that really have it (compute capability >= 8.0), fp16 on
    older GPUs such as the T4 and V100 (where is_bf16_supported() reports
    emulated bf16 as supported), fp32 on CPU and MPS."""
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name != "auto":
        if name not in table:
            raise ConfigError(f"unknown dtype {name!r}; choose auto, float32, bfloat16 or float16")
        return table[name]
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    return torch.float32


def autocast_context(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, enabled: bool):
    """fp16 needs loss scaling so small gradients do not underflow; bf16 and fp32 do not."""
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler("cuda" if device.type == "cuda" else "cpu", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def maybe_compile(model: nn.Module, want: bool, device: torch.device, log=print) -> nn.Module:
    """torch.compile where it works; one printed line where it cannot."""
    if not want:
        return model
    reason = None
    if os.name == "nt":
        reason = "torch.compile is not supported on Windows"
    elif device.type == "mps":
        reason = "torch.compile is not supported on MPS"
    elif device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 7:
        reason = "torch.compile needs a GPU with compute capability >= 7.0 (this one is older, e.g. a P100)"
    if reason:
        log(f"{reason}; training without it")
        return model
    return torch.compile(model)


# Dense bf16/fp16 tensor-core peaks from the vendors' datasheets, in FLOP/s.
GPU_PEAK_FLOPS = [
    ("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12),
    ("L40S", 362e12), ("L4", 121e12), ("A10G", 70e12), ("V100", 125e12), ("T4", 65e12),
    ("P100", 18.7e12),
]


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in GPU_PEAK_FLOPS:
        if key in name:
            return flops
    return None


def flops_per_token(model: nn.Module, block_size: int) -> float:
    """Training FLOPs per token: 6 per parameter plus attention's 12 * L * C * T."""
    m = unwrap_model(model)
    cfg = getattr(m, "config", None)
    if isinstance(cfg, GPTConfig):
        n = m.num_params(non_embedding=True)  # position embeddings cost no multiplications
        return 6 * n + 12 * cfg.n_layer * cfg.n_embd * block_size
    return 6 * sum(p.numel() for p in m.parameters())


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    splits: dict[str, torch.Tensor],
    batch_size: int,
    block_size: int,
    eval_iters: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
    ctx=None,
) -> dict[str, float]:
    """Mean loss over eval_iters random batches of each split (dropout off).

    Uses its own seeded generator, so evaluating never changes the training data order.
    """
    was_training = model.training
    model.eval()
    out = {}
    for name, data in splits.items():
        gen = torch.Generator().manual_seed(seed)
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            x, y = get_batch(data, batch_size, block_size, device, generator=gen)
            with ctx or contextlib.nullcontext():
                _, loss = model(x, y)
            losses[k] = loss.float().item()
        out[name] = losses.mean().item()
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate_split(
    model: nn.Module,
    data: torch.Tensor,
    block_size: int | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> float:
    """Mean loss over a whole split, in non-overlapping windows of block_size.

    Every token after the first is predicted exactly once; the mean is over tokens.
    """
    model_block = unwrap_model(model).block_size
    block_size = block_size or model_block
    if device is None:
        device = next(model.parameters()).device
    if len(data) < 2:
        raise ConfigError("the split needs at least 2 tokens to evaluate")
    was_training = model.training
    model.eval()
    starts = list(range(0, len(data) - 1, block_size))
    full = [s for s in starts if s + block_size + 1 <= len(data)]
    total, count = 0.0, 0
    batches = [full[i : i + batch_size] for i in range(0, len(full), batch_size)]
    if len(full) < len(starts):
        batches.append([starts[-1]])  # the shorter last window
    iterator = batches
    if progress:
        from tqdm import tqdm

        iterator = tqdm(batches, desc="eval", unit="batch", leave=False)
    for group in iterator:
        n = min(block_size, len(data) - 1 - group[0])
        x = torch.stack([data[s : s + n] for s in group]).to(device)
        y = torch.stack([data[s + 1 : s + 1 + n] for s in group]).to(device)
        logits, _ = model(x)
        total += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    return total / count


def evaluate_text(
    model: nn.Module, tokenizer, text: str, batch_size: int = 32,
    device: torch.device | str | None = None, progress: bool = False,
) -> dict:
    """Score a text with any tokenizer: the loss per token, and per character.

    Per character is the fair number between tokenizers: the total nats over
    the text divided by the characters predicted (all but those of the first
    token, which has nothing before it). For a character model the two agree.
    """
    data = encode_text(text, tokenizer)
    per_token = evaluate_split(model, data, batch_size=batch_size, device=device, progress=progress)
    predicted = len(data) - 1
    chars = len(text) - len(tokenizer.decode(data[:1].tolist()))
    return dict(loss_per_token=per_token, loss_per_char=per_token * predicted / chars,
                tokens=len(data), chars=len(text))


# --- setup ---------------------------------------------------------------------


@dataclass
class TrainResult:
    model: nn.Module
    tokenizer: object | None
    history: list = field(default_factory=list)  # one dict per evaluation
    step_losses: list = field(default_factory=list)  # training loss of every step run here
    best_val_loss: float = float("inf")
    iter_num: int = 0
    elapsed_s: float = 0.0  # wall clock of the whole run, evaluations included
    train_s: float = 0.0  # seconds in training steps (what max_minutes limits), over the resumed runs too
    interrupted: bool = False
    out_dir: str | None = None


def _check_settings(cfg: TrainConfig, train_data: torch.Tensor, val_data: torch.Tensor, block_size: int) -> None:
    for name in ("max_iters", "batch_size", "grad_accum", "eval_interval", "eval_iters"):
        v = getattr(cfg, name)
        if v < (0 if name == "max_iters" else 1):
            raise ConfigError(f"{name.replace('_', '-')} must be positive, got {v}")
    if block_size < 1:
        raise ConfigError(f"block-size must be positive, got {block_size}")
    if cfg.optimizer not in ("adamw", "muon"):
        raise ConfigError(f"unknown optimizer {cfg.optimizer!r}; choose adamw or muon")
    if cfg.budget_clock not in ("wall", "cpu"):
        raise ConfigError(f"unknown budget clock {cfg.budget_clock!r}; choose wall or cpu")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        raise ConfigError(f"max-minutes must be a number > 0, got {cfg.max_minutes}")
    n = len(train_data) + len(val_data)
    if block_size >= n:
        raise ConfigError(f"block_size ({block_size}) is longer than the data ({n} tokens); "
                          "use a smaller --block-size or more text")
    for name, data in (("training", train_data), ("validation", val_data)):
        if len(data) <= block_size:
            raise ConfigError(
                f"the {name} split has {len(data)} tokens, fewer than one window of {block_size + 1}; "
                "use more text or a smaller --block-size"
            )


def _load_data(cfg: TrainConfig, tokenizer, train_data, val_data, text, log):
    """(tokenizer, train, val): given tensors as they are, else the text tokenized and split."""
    if train_data is not None and val_data is not None:
        return tokenizer, train_data, val_data
    if text is None:
        text = load_text(cfg.data)
    if tokenizer is None:
        tokenizer = make_tokenizer(cfg.tokenizer, text, cfg.train_frac, cfg.bpe_vocab_size, log=log)
    try:
        tokenizer, train_data, val_data = prepare_data(text, cfg.train_frac, tokenizer=tokenizer)
    except ValueError as e:  # characters a checkpoint's vocabulary lacks
        if not cfg.init_from:
            raise ConfigError(str(e)) from None
        raise ConfigError(f"{e}; the checkpoint of --init-from cannot read this text: train from scratch "
                          "(without --init-from), or drop or replace those characters in the text") from None
    return tokenizer, train_data, val_data


def _report_split(train_frac: float, train_data, val_data, block_size: int, log) -> None:
    """Say how a user's text was split, and warn when the validation part is too small to trust."""
    log(f"data: the first {train_frac:.0%} train ({len(train_data):,} tokens), "
        f"the last {1 - train_frac:.0%} validate ({len(val_data):,} tokens)")
    if len(val_data) < max(10 * block_size, 2000):
        log(f"warning: the validation split has only {len(val_data):,} tokens, so its loss is noisy and "
            "will not show overfitting reliably; use more text for a number you can trust")


def _check_model_matches(cfg: TrainConfig, model: nn.Module) -> None:
    """A model passed in must be the one cfg.model describes, when cfg.model says anything."""
    if cfg.model is None:
        return
    have = getattr(unwrap_model(model), "config", None)
    if not isinstance(have, GPTConfig):
        raise ConfigError(f"TrainConfig.model describes a GPT but the model passed in is a {type(model).__name__}; "
                          "leave TrainConfig.model unset when you pass your own model")
    want = dataclasses.replace(cfg.model, vocab_size=have.vocab_size)  # the tokenizer decides vocab_size
    diff = [f"{k}={getattr(want, k)!r} vs {getattr(have, k)!r}" for k in sorted(MODEL_FIELDS)
            if getattr(want, k) != getattr(have, k)]
    if diff:
        raise ConfigError("the model passed in differs from TrainConfig.model (config vs model: "
                          + ", ".join(diff) + "); change one of them, or leave TrainConfig.model unset")


def _fine_tune_start(cfg: TrainConfig) -> tuple[nn.Module, object]:
    """The weights and tokenizer of cfg.init_from, in a model with cfg's dropout, for fine-tuning."""
    path = Path(cfg.init_from)
    trained, tokenizer = model_and_tokenizer(read_checkpoint(path), path)
    if not isinstance(trained, GPT):
        raise ConfigError(f"--init-from needs a GPT checkpoint; {path} holds a {trained.model_type} model")
    dropout = cfg.model.dropout if cfg.model is not None else trained.config.dropout
    model = GPT(dataclasses.replace(trained.config, dropout=dropout))
    model.load_state_dict(trained.state_dict())
    return model, tokenizer


def _restore(ckpt: dict, model: nn.Module, tokenizer, path: Path) -> None:
    """Check that a run's ckpt.pt fits the requested model and tokenizer, and load its weights."""
    want = unwrap_model(model).config_dict()
    try:  # an older checkpoint lacks newer fields: they take their defaults
        have = GPTConfig.from_dict(ckpt["config"]).to_dict() if ckpt["model_type"] == "gpt" else ckpt["config"]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"checkpoint {path} has an invalid model config: {e}") from None
    diff = [k for k in want if k != "dropout" and want.get(k) != have.get(k)]
    if diff or ckpt["model_type"] != unwrap_model(model).model_type:
        got = ", ".join(f"{k}={have.get(k)}" for k in diff)
        asked = ", ".join(f"{k}={want.get(k)}" for k in diff)
        raise ConfigError(f"checkpoint {path} does not match the requested model (checkpoint {got}; "
                          f"requested {asked}); use the run's own --preset, or a new --out-dir")
    model.load_state_dict(float32_state(ckpt["model"]))
    if tokenizer is not None and ckpt["tokenizer"] != tokenizer.to_dict():
        raise ConfigError("cannot resume: the training text has a different vocabulary than the checkpoint")


def _resume_tokenizer(ckpt: dict, path: Path):
    """The tokenizer a run's ckpt.pt holds."""
    try:
        return tokenizer_from_dict(ckpt["tokenizer"])
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"checkpoint {path} has an invalid tokenizer: {e}; train without --resume") from None


def _read_resume_checkpoint(cfg: TrainConfig, out_dir: Path | None) -> dict | None:
    if not cfg.resume:
        return None
    if out_dir is None:
        raise ConfigError("--resume needs --out-dir (the folder holding ckpt.pt)")
    path = out_dir / "ckpt.pt"
    if not path.is_file():
        raise ConfigError(f"cannot resume: {path} does not exist; train without --resume first")
    return read_checkpoint(path, "cpu")


# --- the run ---------------------------------------------------------------------


class _StopFlag:
    """Ctrl-C asks the loop to stop at the next step boundary; a second one stops at once."""

    def __init__(self, master: bool = True):
        self.set, self.master = False, master  # under torchrun every process gets the signal: one speaks
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        if self.master:
            print("\nCtrl-C: saving a checkpoint before stopping (press again to stop at once)", file=sys.stderr)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Trainer:
    """One training run: the state the parts share, and the parts themselves."""

    def __init__(self, cfg: TrainConfig, dist: Distributed, device: torch.device, model: nn.Module,
                 tokenizer, train_data: torch.Tensor, val_data: torch.Tensor, ckpt: dict | None, log):
        self.cfg, self.dist, self.device, self.log = cfg, dist, device, log
        self.tokenizer, self.splits = tokenizer, {"train": train_data, "val": val_data}
        self.unit = getattr(tokenizer, "unit", "token")  # what a loss is the mean over, for logs and plots
        self.block_size, self.out_dir = cfg.window(model), cfg.out_path
        self.dtype = resolve_dtype(cfg.dtype, device)
        self.ctx = autocast_context(device, self.dtype)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing = True
        self.raw_model = model.to(device)
        self.optimizer = configure_optimizer(model, cfg, device)
        self.scaler = make_grad_scaler(device, enabled=(self.dtype == torch.float16 and device.type == "cuda"))
        self.batch_gen = torch.Generator().manual_seed(cfg.seed + dist.rank)
        torch.manual_seed(cfg.seed + dist.rank)  # dropout masks
        self.iter_num, self.best_val, self.history = 0, float("inf"), []
        clock = time.process_time if cfg.budget_clock == "cpu" else time.perf_counter
        self.budget = TimeBudget(cfg.max_minutes, clock)  # counts training seconds; a limit only with max_minutes
        if ckpt is not None:
            self._resume(ckpt)
        self.model = dist.wrap(maybe_compile(model, cfg.compile, device, log), device)
        self.tokens_per_step = cfg.batch_size * self.block_size * cfg.grad_accum * dist.world

    def _resume(self, ckpt: dict) -> None:
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.iter_num, self.best_val = int(ckpt["iter_num"]), float(ckpt["best_val_loss"])
        self.history = list(ckpt.get("history", []))
        self.budget.spent = float(ckpt.get("train_seconds") or 0.0)
        rng, rank = ckpt.get("rng", {}), self.dist.rank
        if len(rng.get("batch", [])) == self.dist.world:
            self.batch_gen.set_state(rng["batch"][rank])
            torch.set_rng_state(rng["torch"][rank])
            if self.device.type == "cuda" and rng.get("cuda"):
                torch.cuda.set_rng_state(rng["cuda"][rank], self.device)
        else:
            self.log("warning: the checkpoint was written by a different number of processes; data order restarts")
        self.log(f"resumed from {self.out_dir / 'ckpt.pt'} at iteration {self.iter_num} (best val {self.best_val:.4f})")

    # --- 2. one optimizer step ---------------------------------------------------------

    def budget_total(self) -> int | None:
        """The steps the time budget holds (None without max_minutes): rank 0's estimate on every rank,
        so that under torchrun all processes use one learning rate."""
        total = self.budget.total_steps(self.iter_num)
        if self.dist.enabled and self.cfg.max_minutes:
            total = int(self.dist.from_master([-1 if total is None else total], self.device)[0])
            total = None if total < 0 else total
        return total

    def out_of_time(self) -> bool:
        """The budget is spent (on any rank: they all stop together)."""
        if not self.cfg.max_minutes:
            return False
        return self.dist.any(self.budget.expired, self.device)

    def step(self) -> torch.Tensor:
        """Accumulate gradients over grad_accum micro-batches, clip, and update. Returns the mean loss."""
        cfg = self.cfg
        lr = get_lr(self.iter_num, cfg, self.budget_total())
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)  # Muon's group has its own peak (muon.py)
        mean_loss = 0.0
        for micro in range(cfg.grad_accum):
            x, y = get_batch(self.splits["train"], cfg.batch_size, self.block_size, self.device,
                             generator=self.batch_gen)
            with self.dist.no_sync(self.model, last_micro_step=micro == cfg.grad_accum - 1):
                with self.ctx:
                    _, loss = self.model(x, y)
                loss = loss / cfg.grad_accum  # the gradient of the mean over all micro-batches
                self.scaler.scale(loss).backward()
            mean_loss = mean_loss + loss.detach()
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.iter_num += 1
        return mean_loss

    # --- 3. evaluate and checkpoint ------------------------------------------------------

    def evaluate(self, tokens_per_s: float) -> dict:
        """Both splits' loss on eval_iters random batches (rank 0's numbers on every rank)."""
        cfg = self.cfg
        losses = estimate_loss(self.model, self.splits, cfg.batch_size, self.block_size, cfg.eval_iters,
                               self.device, seed=cfg.seed + 10_000, ctx=self.ctx)
        train_loss, val_loss = self.dist.from_master([losses["train"], losses["val"]], self.device)
        row = dict(iter=self.iter_num, train_loss=train_loss, val_loss=val_loss,
                   lr=get_lr(self.iter_num, cfg, self.budget_total()), tokens_per_s=tokens_per_s,
                   train_s=self.budget.spent)
        self.history.append(row)
        if val_loss < self.best_val:
            self.best_val = val_loss
            self.save("best.pt")
        self.save("ckpt.pt")
        self.write_logs()
        return row

    def save(self, name: str) -> None:
        """Write a checkpoint that resumes exactly: weights, optimizer, every rank's RNG state."""
        if self.out_dir is None:
            return
        rng = {
            "torch": self.dist.gather(torch.get_rng_state()),
            "batch": self.dist.gather(self.batch_gen.get_state()),
            "cuda": self.dist.gather(torch.cuda.get_rng_state(self.device)) if self.device.type == "cuda" else [],
        }
        if not self.dist.master:
            return
        payload = checkpoint_payload(
            self.raw_model, self.tokenizer, optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else {}, iter_num=self.iter_num,
            best_val_loss=self.best_val, rng=rng, history=self.history,
            train_config=dataclasses.asdict(self.cfg), world_size=self.dist.world, train_seconds=self.budget.spent,
        )
        atomic_torch_save(payload, self.out_dir / name)

    def write_logs(self) -> None:
        """log.csv and loss.png, rewritten after every evaluation."""
        if not self.dist.master or self.out_dir is None:
            return
        with atomic_write(self.out_dir / "log.csv", "w") as f:
            w = csv.writer(f)
            w.writerow(["iter", "train_loss", "val_loss", "lr", "tokens_per_s"])
            for h in self.history:
                w.writerow([h["iter"], f"{h['train_loss']:.4f}", f"{h['val_loss']:.4f}",
                            f"{h['lr']:.3e}", f"{h['tokens_per_s']:.0f}"])
        plot_losses(self.history, self.out_dir / "loss.png", title=f"Training {self.out_dir.name}", unit=self.unit)

    # --- 4. the loop -----------------------------------------------------------------------

    def run(self) -> TrainResult:
        cfg, log = self.cfg, self.log
        if self.out_dir is not None and self.dist.master:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            log(f"writing checkpoints and logs to {self.out_dir}/")
        n_params = sum(p.numel() for p in self.raw_model.parameters())
        log(f"model: {n_params:,} parameters | dtype {str(self.dtype).replace('torch.', '')} | "
            f"{self.tokens_per_step:,} tokens per step | losses in nats per {self.unit}")
        bar = _progress_bar(cfg, self.dist, self.iter_num)
        meter = _Speed(self.raw_model, self.block_size, self.device)
        step_losses, interrupted, skip_eval = [], False, self.iter_num > 0
        t_start = time.time()
        self.model.train()
        with _StopFlag(self.dist.master) as stop:
            while True:
                done = self.iter_num >= cfg.max_iters or self.out_of_time()
                if (self.iter_num % cfg.eval_interval == 0 or done) and not skip_eval:
                    row = self.evaluate(meter.tokens_per_s())
                    meter.restart()  # evaluation time does not count as training
                    line = f"iter {row['iter']}: train {row['train_loss']:.4f}, val {row['val_loss']:.4f}"
                    bar.write(line) if bar is not None else log(line)
                skip_eval = False  # a resumed run has already evaluated its first iteration
                if done:
                    break
                if self.dist.any(stop.set, self.device):
                    self.save("ckpt.pt")
                    self.write_logs()
                    interrupted = True
                    if self.out_dir is not None:
                        log(f"stopped at iteration {self.iter_num}; resume with --resume --out-dir {self.out_dir}")
                    break
                loss = self.budget.time_step(self.step)  # only the steps count against max_minutes
                step_losses.append(loss)
                meter.add(self.tokens_per_step)
                if bar is not None:
                    bar.update(1)
                    if self.iter_num % 10 == 0 or self.iter_num == cfg.max_iters:
                        bar.set_postfix(loss=f"{loss.item():.3f}", **meter.postfix(), refresh=False)
        if bar is not None:
            bar.close()
        elapsed = time.time() - t_start
        if self.history:
            log(f"done: iteration {self.iter_num}, best val {self.best_val:.4f}, {elapsed:.1f} s")
        return TrainResult(
            model=self.raw_model, tokenizer=self.tokenizer, history=self.history,
            step_losses=torch.stack(step_losses).float().tolist() if step_losses else [],
            best_val_loss=self.best_val, iter_num=self.iter_num, elapsed_s=elapsed, interrupted=interrupted,
            out_dir=str(self.out_dir) if self.out_dir else None, train_s=self.budget.spent,
        )


class _Speed:
    """Training tokens per second since the last evaluation, and MFU where the GPU's peak is known."""

    def __init__(self, model: nn.Module, block_size: int, device: torch.device):
        self.fpt, self.peak = flops_per_token(model, block_size), peak_flops(device)
        self.restart()

    def restart(self) -> None:
        self.t, self.tokens = time.time(), 0

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    def tokens_per_s(self) -> float:
        return self.tokens / max(time.time() - self.t, 1e-9) if self.tokens else 0.0

    def postfix(self) -> dict:
        tps = self.tokens_per_s()
        out = {"tok_s": f"{tps:,.0f}"}
        if self.peak:  # model FLOPs utilisation: only meaningful on a GPU with a known peak
            out["mfu"] = f"{100 * self.fpt * tps / self.peak:.1f}%"
        return out


def _progress_bar(cfg: TrainConfig, dist: Distributed, initial: int):
    if not (cfg.progress and dist.master):
        return None
    from tqdm import tqdm

    total = None if cfg.max_minutes else cfg.max_iters  # a time budget: the steps are not known ahead
    return tqdm(total=total, initial=initial, desc="train", unit="it", dynamic_ncols=True)


def _prepare(cfg: TrainConfig, dist: Distributed, model, tokenizer, train_data, val_data, text, log) -> Trainer:
    """1. Setup: device, data, model (new, fine-tuned or resumed), and the Trainer that holds them."""
    if dist.enabled:
        device = dist.device()
        log(f"DistributedDataParallel: {dist.world} processes, backend {dist.backend}")
    else:
        try:
            device = get_device(cfg.device, verbose=dist.master and cfg.progress)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out_dir = cfg.out_path
    if out_dir is not None and (out_dir.exists() and not out_dir.is_dir()):
        raise ConfigError(f"--out-dir {out_dir} is a file, not a folder; pick another --out-dir")
    ckpt = _read_resume_checkpoint(cfg, out_dir)
    if cfg.init_from and model is None:
        model, tokenizer = _fine_tune_start(cfg)
    elif model is not None:
        _check_model_matches(cfg, model)
    if ckpt is not None and tokenizer is None:  # resume with the run's own tokenizer: never train BPE again
        tokenizer = _resume_tokenizer(ckpt, out_dir / "ckpt.pt")
    tokenizer, train_data, val_data = _load_data(cfg, tokenizer, train_data, val_data, text, log)
    if model is None:
        torch.manual_seed(cfg.seed)
        model = GPT(dataclasses.replace(cfg.gpt, vocab_size=tokenizer.vocab_size))
    block_size, model_block = cfg.window(model), unwrap_model(model).block_size
    if model_block > 1 and block_size > model_block:
        raise ConfigError(f"train_window ({block_size}) is longer than the model's context ({model_block})")
    _check_settings(cfg, train_data, val_data, block_size)
    if cfg.data:  # the user's own text: say how it was split
        _report_split(cfg.train_frac, train_data, val_data, block_size, log)
    if out_dir is not None and tokenizer is None:
        raise ConfigError("saving checkpoints needs the tokenizer: pass tokenizer= along with train_data")
    if ckpt is not None:
        _restore(ckpt, model, tokenizer, out_dir / "ckpt.pt")
    return Trainer(cfg, dist, device, model, tokenizer, train_data, val_data, ckpt, log)


def train(
    cfg: TrainConfig,
    model: nn.Module | None = None,
    tokenizer=None,
    train_data: torch.Tensor | None = None,
    val_data: torch.Tensor | None = None,
    text: str | None = None,
    clock=None,
) -> TrainResult:
    """Train `model` (or the GPT that cfg.model describes) and return what happened.

    Give either train_data/val_data (token tensors) or text; with neither the
    text comes from load_text(cfg.data). With cfg.out_dir set it writes
    ckpt.pt, best.pt, log.csv and loss.png there. `clock` (a function returning
    seconds) replaces time.perf_counter for the max_minutes budget: tests pass a fake.
    """
    dist = Distributed.from_env(cfg.device)
    log = print if dist.master else (lambda *a, **k: None)
    ok = False
    try:
        trainer = _prepare(cfg, dist, model, tokenizer, train_data, val_data, text, log)
        if clock is not None:
            trainer.budget.clock = clock
        result = trainer.run()
        ok = True
        return result
    finally:
        dist.close(ok)
