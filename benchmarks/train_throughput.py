"""Training throughput at the flagship shape: tokens/s and MFU of one optimizer step.

One step = forward + backward + AdamW update on a random batch, at GPTConfig()'s
shape (6 layers, 6 heads, 384 wide, context 256, dropout 0.2, 65 characters).
It compares

  teaching   the loop-over-heads model built from gfs.Block (teaching.py)
  fused      gfs.GPT (one qkv matmul, scaled_dot_product_attention)
  compiled   gfs.GPT under torch.compile (GPU by default; on CPU only with --compile)
  nanogpt    nanoGPT's GPT, when --nanogpt PATH points at a local copy of its model.py

after --warmup untimed steps, as the median of --steps timed steps.

    python benchmarks/train_throughput.py                 # the current device
    python benchmarks/train_throughput.py --batch 16 --steps 5
    python benchmarks/train_throughput.py --nanogpt ~/src/nanoGPT/model.py

MFU (model FLOPs utilisation) = achieved training FLOP/s over the GPU's dense
bf16 peak, counting 6 FLOPs per parameter per token plus 12*L*C*T for attention
(the PaLM / nanoGPT formula), the same count for every row. It is n/a on CPU and
on GPUs whose peak the package does not know.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import gpt_from_scratch as gfs  # noqa: E402
from gpt_from_scratch.device import describe_device  # noqa: E402
from gpt_from_scratch.train import (  # noqa: E402
    TrainConfig,
    autocast_context,
    configure_optimizer,
    flops_per_token,
    make_grad_scaler,
    peak_flops,
    resolve_dtype,
)


def load_nanogpt(path: str, cfg: gfs.GPTConfig) -> nn.Module:
    """nanoGPT's GPT from a local model.py (never downloaded, never copied into this repository)."""
    path = Path(path).expanduser()
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ncfg = mod.GPTConfig(block_size=cfg.block_size, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer,
                         n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias)
    return mod.GPT(ncfg)


def build(name: str, cfg: gfs.GPTConfig, args) -> nn.Module:
    if name == "teaching":
        # embeddings -> n_layer teaching Blocks (a Python loop over heads) -> LayerNorm -> logits
        return gfs.AttentionLanguageModel(cfg.vocab_size, block_size=cfg.block_size, n_embd=cfg.n_embd,
                                          n_head=cfg.n_head, n_layer=cfg.n_layer, stage="blocks",
                                          dropout=cfg.dropout)
    if name in ("fused", "compiled"):
        return gfs.GPT(cfg)
    if name == "nanogpt":
        return load_nanogpt(args.nanogpt, cfg)
    raise ValueError(name)


def time_steps(model: nn.Module, device, dtype, args, cfg) -> list[float]:
    opt = configure_optimizer(model, TrainConfig(), device)
    ctx = autocast_context(device, dtype) if dtype != torch.float32 else contextlib.nullcontext()
    scaler = make_grad_scaler(device, enabled=(dtype == torch.float16 and device.type == "cuda"))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.vocab_size, (args.batch, cfg.block_size), generator=g).to(device)
    y = torch.randint(0, cfg.vocab_size, (args.batch, cfg.block_size), generator=g).to(device)
    model.train()
    times = []
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with ctx:
            _, loss = model(x, y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--dtype", default="auto", help="auto (bf16/fp16 autocast on GPU, fp32 on CPU) | float32 | "
                                                  "bfloat16 | float16")
    p.add_argument("--batch", type=int, default=None, help="default 64 on GPU, 8 on CPU")
    p.add_argument("--block", type=int, default=256, help="context length (default 256)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on GPU, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5 on GPU, 1 on CPU)")
    p.add_argument("--models", default="teaching,fused,compiled", help="comma-separated subset")
    p.add_argument("--compile", action="store_true", help="also time torch.compile on CPU (slow to compile)")
    p.add_argument("--nanogpt", help="path to a local copy of nanoGPT's model.py, to time it too")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = p.parse_args(argv)

    if args.nanogpt and not Path(args.nanogpt).expanduser().is_file():
        p.error(f"--nanogpt {args.nanogpt}: no such file (point it at nanoGPT's model.py)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = gfs.get_device(args.device, verbose=False)
    gpu = device.type == "cuda"
    args.batch = args.batch or (64 if gpu else 8)
    args.steps = args.steps or (20 if gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    dtype = resolve_dtype(args.dtype, device)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = gfs.GPTConfig(block_size=args.block)  # the flagship shape, dropout 0.2
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if args.nanogpt and "nanogpt" not in names:
        names.append("nanogpt")
    peak = peak_flops(device)
    fpt = flops_per_token(gfs.GPT(cfg), cfg.block_size)
    tokens = args.batch * cfg.block_size

    print(f"device: {describe_device(device)} | torch {torch.__version__} | "
          f"dtype {str(dtype).replace('torch.', '')}")
    print(f"shape: {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} wide, context {cfg.block_size}, "
          f"dropout {cfg.dropout} | batch {args.batch} ({tokens:,} tokens/step) | "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    rows = []
    for name in names:
        if name == "compiled" and not gpu and not args.compile:
            print("compiled: skipped on CPU (compiling takes minutes here; pass --compile to time it)")
            continue
        if name == "compiled" and (sys.platform == "win32" or device.type == "mps"):
            print(f"compiled: skipped (torch.compile does not support {device.type} on {sys.platform})")
            continue
        torch.manual_seed(0)
        model = build(name, cfg, args).to(device)
        n_params = sum(p.numel() for p in model.parameters())
        if name == "compiled":
            model = torch.compile(model)
        if gpu:
            torch.cuda.reset_peak_memory_stats(device)
        try:
            times = time_steps(model, device, dtype, args, cfg)
        except getattr(torch, "OutOfMemoryError", RuntimeError):
            print(f"{name}: out of memory at batch {args.batch}")
            continue
        med = statistics.median(times)
        tps = tokens / med
        mfu = f"{100 * fpt * tps / peak:.1f}%" if peak else "n/a"
        mem = f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}" if gpu else "-"
        rows.append((name, n_params, med, tps, mfu, mem))
        print(f"  {name}: {med * 1000:.0f} ms/step", flush=True)
        del model
        if gpu:
            torch.cuda.empty_cache()

    base = next((r[3] for r in rows if r[0] == "teaching"), None)
    print()
    print("| model    | params   | ms/step | tokens/s  | MFU   | peak GiB | vs teaching |")
    print("|----------|----------|---------|-----------|-------|----------|-------------|")
    for name, n, med, tps, mfu, mem in rows:
        rel = f"{tps / base:.2f}x" if base else "-"
        print(f"| {name:<8} | {n / 1e6:6.2f}M | {med * 1000:7.0f} | {tps:9,.0f} | {mfu:>5} | {mem:>8} | {rel:>11} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
