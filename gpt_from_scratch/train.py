"""The training engine shared by the notebooks and `python -m gpt_from_scratch train`.

One loop for every model in the course: AdamW with decoupled weight decay on
matrices only, linear warmup then cosine decay, gradient clipping and
accumulation, mixed precision, periodic evaluation, atomic checkpoints that
resume exactly, Ctrl-C that saves before it stops, and DistributedDataParallel
under torchrun.
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
    read_checkpoint,
    unwrap_model,
)
from .data import get_batch, load_text, prepare_data
from .device import get_device
from .model import GPT, GPTConfig
from .tokenizer import CharTokenizer


class ConfigError(ValueError):
    """Bad settings or data for a training run: the CLI prints it as `error: ...`."""


@dataclass
class TrainConfig:
    # the model (used when train() builds a GPT itself)
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    block_size: int = 256  # context length in characters
    dropout: float = 0.2
    bias: bool = False
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
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, TrainConfig] = {
    # nanoGPT's shakespeare-char recipe: the flagship model and the baseline.
    "shakespeare-char": TrainConfig(),
    # A few minutes on a laptop CPU, and it still writes recognisable play text.
    "cpu-tiny": TrainConfig(
        n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, batch_size=32,
        max_iters=2000, learning_rate=2e-3, min_lr=2e-4, warmup_iters=100,
        eval_interval=200, eval_iters=20,
    ),
    # Bigger models for bigger GPUs (they overfit Tiny Shakespeare sooner: watch val).
    "small": TrainConfig(
        n_layer=8, n_head=8, n_embd=512, dropout=0.25, learning_rate=6e-4, min_lr=6e-5,
        max_iters=5000, warmup_iters=200,
    ),
    "medium": TrainConfig(
        n_layer=12, n_head=12, n_embd=768, dropout=0.3, learning_rate=3e-4, min_lr=3e-5,
        max_iters=5000, warmup_iters=200, batch_size=32, grad_accum=2,
    ),
}


def get_preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


# --- pieces ------------------------------------------------------------------


def get_lr(it: int, cfg: TrainConfig) -> float:
    """Linear warmup to learning_rate, then cosine decay to min_lr."""
    if not cfg.decay_lr:
        return cfg.learning_rate
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    decay_iters = cfg.lr_decay_iters or cfg.max_iters
    if it >= decay_iters:
        return cfg.min_lr
    ratio = (it - cfg.warmup_iters) / max(1, decay_iters - cfg.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 -> 0
    return cfg.min_lr + coeff * (cfg.learning_rate - cfg.min_lr)


def configure_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW that decays matrices (weights, embeddings) but not biases or LayerNorm gains."""
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
    n = sum(p.numel() for p in m.parameters())
    cfg = getattr(m, "config", None)
    if isinstance(cfg, GPTConfig):
        n -= m.transformer.wpe.weight.numel()
        return 6 * n + 12 * cfg.n_layer * cfg.n_embd * block_size
    return 6 * n


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

    Every character after the first is predicted exactly once; the mean is over characters.
    """
    model_block = unwrap_model(model).block_size
    block_size = block_size or model_block
    if device is None:
        device = next(model.parameters()).device
    if len(data) < 2:
        raise ConfigError("the split needs at least 2 characters to evaluate")
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


# --- the loop ------------------------------------------------------------------


@dataclass
class TrainResult:
    model: nn.Module
    tokenizer: CharTokenizer | None
    history: list = field(default_factory=list)  # one dict per evaluation
    step_losses: list = field(default_factory=list)  # training loss of every step run here
    best_val_loss: float = float("inf")
    iter_num: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    out_dir: str | None = None


class _StopFlag:
    """Ctrl-C asks the loop to stop at the next step boundary; a second one stops at once."""

    def __init__(self):
        self.set = False
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
        print("\nCtrl-C: saving a checkpoint before stopping (press again to stop at once)", file=sys.stderr)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _ddp_info():
    rank = int(os.environ.get("RANK", -1))
    if rank == -1:
        return False, 0, 0, 1
    return True, rank, int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _gather(obj, ddp: bool, world: int) -> list:
    if not ddp:
        return [obj]
    import torch.distributed as dist

    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _validate(cfg: TrainConfig, train_data: torch.Tensor, val_data: torch.Tensor, block_size: int) -> None:
    if cfg.n_embd % cfg.n_head != 0:
        raise ConfigError(f"n_embd ({cfg.n_embd}) must be divisible by n_head ({cfg.n_head})")
    for name in ("max_iters", "batch_size", "grad_accum", "eval_interval", "eval_iters", "block_size"):
        v = getattr(cfg, name)
        if v < (0 if name == "max_iters" else 1):
            raise ConfigError(f"{name.replace('_', '-')} must be positive, got {v}")
    n = len(train_data) + len(val_data)
    if block_size >= n:
        raise ConfigError(f"block_size ({block_size}) is longer than the data ({n} characters); use a smaller --preset or more text")
    for name, data in (("training", train_data), ("validation", val_data)):
        if len(data) <= block_size:
            raise ConfigError(
                f"the {name} split has {len(data)} characters, fewer than one batch window of "
                f"{block_size + 1}; use more text or a smaller block_size"
            )


def train(
    cfg: TrainConfig,
    model: nn.Module | None = None,
    tokenizer: CharTokenizer | None = None,
    train_data: torch.Tensor | None = None,
    val_data: torch.Tensor | None = None,
    text: str | None = None,
) -> TrainResult:
    """Train `model` (or a GPT built from cfg) and return what happened.

    Give either train_data/val_data (token tensors) or text; with neither the
    text comes from load_text(cfg.data). With cfg.out_dir set it writes
    ckpt.pt, best.pt, log.csv and loss.png there.
    """
    ddp, rank, local_rank, world = _ddp_info()
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    if ddp:
        import torch.distributed as dist

        backend = "nccl" if torch.cuda.is_available() and cfg.device in ("auto", "cuda") else "gloo"
        dist.init_process_group(backend=backend)
        device = torch.device(f"cuda:{local_rank}") if backend == "nccl" else torch.device("cpu")
        if backend == "nccl":
            torch.cuda.set_device(device)
        log(f"DistributedDataParallel: {world} processes, backend {backend}")
    else:
        try:
            device = get_device(cfg.device, verbose=master and cfg.progress)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if not ddp:
        return _train(cfg, model, tokenizer, train_data, val_data, text, device, ddp, rank, world, log)
    import torch.distributed as dist

    try:
        result = _train(cfg, model, tokenizer, train_data, val_data, text, device, ddp, rank, world, log)
        # Tearing gloo down while a peer is still writing its logs can abort the
        # process ("terminate called without an active exception"): wait for all.
        dist.barrier()
        return result
    finally:
        dist.destroy_process_group()


def _train(cfg, model, tokenizer, train_data, val_data, text, device, ddp, rank, world, log):
    master = rank == 0
    dtype = resolve_dtype(cfg.dtype, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # --- data
    if train_data is None or val_data is None:
        if text is None:
            text = load_text(cfg.data)
        tokenizer, train_data, val_data = prepare_data(text, cfg.train_frac, tokenizer=tokenizer)
    block_size = cfg.block_size
    model_block = getattr(model, "block_size", None) if model is not None else None
    if model_block and model_block > 1 and block_size > model_block:
        raise ConfigError(f"block_size ({block_size}) is longer than the model's context ({model_block})")
    _validate(cfg, train_data, val_data, block_size)

    # --- model, resumed or new
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    if out_dir is not None and tokenizer is None:
        raise ConfigError("saving checkpoints needs the tokenizer: pass tokenizer= along with train_data")
    ckpt = None
    if cfg.resume:
        if out_dir is None:
            raise ConfigError("--resume needs --out-dir (the folder holding ckpt.pt)")
        path = out_dir / "ckpt.pt"
        if not path.is_file():
            raise ConfigError(f"cannot resume: {path} does not exist; train without --resume first")
        ckpt = read_checkpoint(path, "cpu")
    if model is None:
        gcfg = GPTConfig(
            vocab_size=tokenizer.vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
            n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias,
        )
        torch.manual_seed(cfg.seed)
        model = GPT(gcfg)
    if ckpt is not None:
        want, have = unwrap_model(model).config_dict(), ckpt["config"]
        diff = [k for k in want if k != "dropout" and want.get(k) != have.get(k)]
        if diff or ckpt["model_type"] != unwrap_model(model).model_type:
            got = ", ".join(f"{k}={have.get(k)}" for k in diff)
            asked = ", ".join(f"{k}={want.get(k)}" for k in diff)
            raise ConfigError(
                f"checkpoint {out_dir / 'ckpt.pt'} does not match the requested model "
                f"(checkpoint {got}; requested {asked}); use the run's own --preset, or a new --out-dir"
            )
        model.load_state_dict(float32_state(ckpt["model"]))
        if tokenizer is not None and ckpt["tokenizer"] != tokenizer.to_dict():
            raise ConfigError("cannot resume: the training text has a different vocabulary than the checkpoint")
    model.to(device)
    raw_model = model
    optimizer = configure_optimizer(raw_model, cfg, device)
    scaler = make_grad_scaler(device, enabled=(dtype == torch.float16 and device.type == "cuda"))
    batch_gen = torch.Generator().manual_seed(cfg.seed + rank)
    torch.manual_seed(cfg.seed + rank)  # dropout masks
    iter_num, best_val = 0, float("inf")
    history: list[dict] = []
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        if "scaler" in ckpt and ckpt["scaler"]:
            scaler.load_state_dict(ckpt["scaler"])
        iter_num, best_val = int(ckpt["iter_num"]), float(ckpt["best_val_loss"])
        history = list(ckpt.get("history", []))
        rng = ckpt.get("rng", {})
        if len(rng.get("batch", [])) == world:
            batch_gen.set_state(rng["batch"][rank])
            torch.set_rng_state(rng["torch"][rank])
            if device.type == "cuda" and rng.get("cuda"):
                torch.cuda.set_rng_state(rng["cuda"][rank], device)
        else:
            log("warning: the checkpoint was written by a different number of processes; data order restarts")
        log(f"resumed from {out_dir / 'ckpt.pt'} at iteration {iter_num} (best val {best_val:.4f})")
    model = maybe_compile(raw_model, cfg.compile, device, log)
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    ctx = autocast_context(device, dtype)
    splits = {"train": train_data, "val": val_data}
    fpt = flops_per_token(raw_model, block_size)
    peak = peak_flops(device)
    tokens_per_step = cfg.batch_size * block_size * cfg.grad_accum * world

    def save(kind: str) -> None:
        if out_dir is None:
            return
        rng = {  # every rank's, so a resumed run continues each rank's data order
            "torch": _gather(torch.get_rng_state(), ddp, world),
            "batch": _gather(batch_gen.get_state(), ddp, world),
            "cuda": _gather(torch.cuda.get_rng_state(device), ddp, world) if device.type == "cuda" else [],
        }
        if not master:
            return
        payload = checkpoint_payload(
            raw_model, tokenizer, optimizer=optimizer.state_dict(),
            scaler=scaler.state_dict() if scaler.is_enabled() else {}, iter_num=iter_num,
            best_val_loss=best_val, rng=rng, history=history,
            train_config=dataclasses.asdict(cfg), world_size=world,
        )
        atomic_torch_save(payload, out_dir / kind)

    def write_logs() -> None:
        if not master or out_dir is None:
            return
        with open(out_dir / "log.csv.tmp", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["iter", "train_loss", "val_loss", "lr", "tokens_per_s"])
            for h in history:
                w.writerow([h["iter"], f"{h['train_loss']:.4f}", f"{h['val_loss']:.4f}",
                            f"{h['lr']:.3e}", f"{h['tokens_per_s']:.0f}"])
        os.replace(out_dir / "log.csv.tmp", out_dir / "log.csv")
        from .plotting import plot_losses

        plot_losses(history, out_dir / "loss.png", title=f"Training {out_dir.name}")

    if out_dir is not None and master:
        out_dir.mkdir(parents=True, exist_ok=True)
        log(f"writing checkpoints and logs to {out_dir}/")
    n_params = sum(p.numel() for p in raw_model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters | dtype {str(dtype).replace('torch.', '')} | "
        f"{tokens_per_step:,} tokens per step")

    step_losses: list[torch.Tensor] = []
    result_losses: list[float] = []
    bar = None
    if cfg.progress and master:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_iters, initial=iter_num, desc="train", unit="it", dynamic_ncols=True)
    t_start = time.time()
    t_last, tokens_since = time.time(), 0
    interrupted = False
    just_resumed = ckpt is not None
    model.train()
    with _StopFlag() as stop:
        while True:
            # evaluate (and checkpoint) every eval_interval steps and at the end
            if (iter_num % cfg.eval_interval == 0 or iter_num == cfg.max_iters) and not just_resumed:
                tps = tokens_since / max(time.time() - t_last, 1e-9) if tokens_since else 0.0
                losses = estimate_loss(model, splits, cfg.batch_size, block_size, cfg.eval_iters,
                                       device, seed=cfg.seed + 10_000, ctx=ctx)
                if ddp:  # every rank follows rank 0's numbers, so all take the same "best" branch
                    import torch.distributed as dist

                    both = torch.tensor([losses["train"], losses["val"]], device=device)
                    dist.broadcast(both, src=0)
                    losses = {"train": both[0].item(), "val": both[1].item()}
                t_last, tokens_since = time.time(), 0  # evaluation time does not count as training
                history.append(dict(iter=iter_num, train_loss=losses["train"], val_loss=losses["val"],
                                    lr=get_lr(iter_num, cfg), tokens_per_s=tps))
                line = f"iter {iter_num}: train {losses['train']:.4f}, val {losses['val']:.4f}"
                bar.write(line) if bar is not None else log(line)
                if losses["val"] < best_val:
                    best_val = losses["val"]
                    save("best.pt")
                save("ckpt.pt")
                write_logs()
            just_resumed = False
            if iter_num >= cfg.max_iters:
                break
            stop_now = stop.set
            if ddp:
                import torch.distributed as dist

                flag = torch.tensor([1.0 if stop_now else 0.0], device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop_now = bool(flag.item())
            if stop_now:
                save("ckpt.pt")
                write_logs()
                interrupted = True
                if out_dir is not None:
                    log(f"stopped at iteration {iter_num}; resume with --resume --out-dir {out_dir}")
                break

            # one optimizer step
            lr = get_lr(iter_num, cfg)
            for g in optimizer.param_groups:
                g["lr"] = lr
            for micro in range(cfg.grad_accum):
                x, y = get_batch(train_data, cfg.batch_size, block_size, device, generator=batch_gen)
                sync = contextlib.nullcontext()
                if ddp and micro < cfg.grad_accum - 1:
                    sync = model.no_sync()
                with sync:
                    with ctx:
                        _, loss = model(x, y)
                    scaler.scale(loss / cfg.grad_accum).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step_losses.append(loss.detach())
            iter_num += 1
            tokens_since += tokens_per_step
            if bar is not None:
                bar.update(1)
                if iter_num % 10 == 0 or iter_num == cfg.max_iters:
                    dt = max(time.time() - t_last, 1e-9)
                    tps = tokens_since / dt
                    mfu = f"{100 * fpt * tps / peak:.1f}%" if peak else "n/a"
                    bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tps:,.0f}", mfu=mfu, refresh=False)
            if len(step_losses) >= 256:
                result_losses += torch.stack(step_losses).float().tolist()
                step_losses.clear()
    if bar is not None:
        bar.close()
    if step_losses:
        result_losses += torch.stack(step_losses).float().tolist()
    elapsed = time.time() - t_start
    if history:
        log(f"done: iteration {iter_num}, best val {best_val:.4f}, {elapsed:.1f} s")
    return TrainResult(
        model=raw_model, tokenizer=tokenizer, history=history, step_losses=result_losses,
        best_val_loss=best_val, iter_num=iter_num, elapsed_s=elapsed, interrupted=interrupted,
        out_dir=str(out_dir) if out_dir else None,
    )
