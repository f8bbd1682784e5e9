"""Chapter 07's ablation: does each piece of the modern block help a small GPT on Tiny Shakespeare?

Six variants of the cpu-tiny shape (4 layers, 4 heads, 128 wide, context 64, dropout 0):

  vanilla   GPT-2's block: LayerNorm, GELU, learned positions, 4 key/value heads
  rmsnorm   RMSNorm instead of LayerNorm
  swiglu    the gated SwiGLU MLP instead of GELU
  rope      rotary position embeddings instead of learned ones
  gqa       grouped-query attention, 2 key/value heads for the 4 query heads
  all       the four together (the Llama-style block)

A fair comparison changes one thing at a time and keeps the rest equal:

- parameters: each variant's `mlp_hidden` is the multiple of 8 that brings its
  parameter count closest to vanilla's 804,096 (GQA and RoPE remove weights, the
  MLP gets them back), and the script asserts that every count is within 2 %;
- steps and schedule: the same max_iters, learning rate and warmup + cosine decay;
- data: run k of every variant uses seed k, so it starts from the same random
  stream and sees the same training batches and the same evaluation batches.

Each run evaluates every --eval-interval steps on --eval-iters batches and keeps
its best val loss; the table gives mean +- standard deviation over seeds. Runs go
--workers at a time in separate processes with one thread each.

    python benchmarks/ablation.py                        # the sweep behind ablation_results.json (20 min on 2 cores)
    python benchmarks/ablation.py --seeds 1 --steps 50   # a quick look
    python benchmarks/ablation.py --variants vanilla,all --seeds 1 --out /tmp/a.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import io
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import gpt_from_scratch as gfs  # noqa: E402

VARIANTS: dict[str, dict] = {
    "vanilla": {},
    "rmsnorm": {"norm": "rmsnorm"},
    "swiglu": {"activation": "swiglu"},
    "rope": {"pos": "rope"},
    "gqa": {"n_kv_head": 2},
    "all": {"norm": "rmsnorm", "activation": "swiglu", "pos": "rope", "n_kv_head": 2},
}
VOCAB_SIZE = 65  # Tiny Shakespeare's characters
TOLERANCE = 0.02  # parameter counts within 2 % of vanilla's
MACHINE = "2-core VM, CPU, float32, 1 thread per run"


def base_config() -> gfs.GPTConfig:
    return dataclasses.replace(gfs.PRESETS["cpu-tiny"].gpt, vocab_size=VOCAB_SIZE)


def num_params(cfg: gfs.GPTConfig) -> int:
    return gfs.GPT(cfg).num_params()


def matched_config(changes: dict, target: int) -> gfs.GPTConfig:
    """The variant's config, with the multiple-of-8 mlp_hidden whose parameter count is closest to target."""
    cfg = dataclasses.replace(base_config(), **changes)
    default = num_params(cfg)
    per_unit = num_params(dataclasses.replace(cfg, mlp_hidden=8)) - num_params(dataclasses.replace(cfg, mlp_hidden=7))
    hidden = gfs.GPT(cfg).transformer.h[0].mlp.c_fc.out_features  # the default width
    best = hidden + 8 * round((target - default) / per_unit / 8)
    if best != hidden:
        cfg = dataclasses.replace(cfg, mlp_hidden=best)
    n = num_params(cfg)
    assert abs(n - target) <= TOLERANCE * target, f"{changes}: {n:,} parameters, not within 2 % of {target:,}"
    return cfg


def train_config(model: gfs.GPTConfig, seed: int, args) -> gfs.TrainConfig:
    return dataclasses.replace(
        gfs.PRESETS["cpu-tiny"], model=model, seed=seed, max_iters=args.steps, batch_size=args.batch_size,
        warmup_iters=args.warmup, eval_interval=args.eval_interval, eval_iters=args.eval_iters,
        device="cpu", dtype="float32", progress=False, out_dir=None,
    )


_DATA = {}


def _worker_init(data_path: str | None) -> None:
    """One thread per process; the text tokenized once per process."""
    torch.set_num_threads(1)
    text = gfs.load_text(data_path)
    tok, train, val = gfs.prepare_data(text)
    _DATA.update(tokenizer=tok, train=train, val=val)


def run_one(job: tuple[str, dict, int, argparse.Namespace]) -> dict:
    name, model_dict, seed, args = job
    cfg = train_config(gfs.GPTConfig(**model_dict), seed, args)
    t0 = time.time()
    with contextlib.redirect_stdout(io.StringIO()):  # the engine's own lines; one summary line per run below
        result = gfs.train(cfg, tokenizer=_DATA["tokenizer"], train_data=_DATA["train"], val_data=_DATA["val"])
    evals = [[h["iter"], round(h["val_loss"], 4)] for h in result.history]
    print(f"{name:8s} seed {seed}: best val {result.best_val_loss:.4f} ({time.time() - t0:.0f} s)", flush=True)
    return dict(variant=name, seed=seed, evals=evals, best_val_loss=round(result.best_val_loss, 4),
                seconds=round(time.time() - t0, 1))


def summarize(runs: list[dict], names: list[str]) -> dict:
    out = {}
    for name in names:
        best = [r["best_val_loss"] for r in runs if r["variant"] == name]
        out[name] = dict(mean=round(statistics.mean(best), 4),
                         std=round(statistics.stdev(best), 4) if len(best) > 1 else None, n=len(best))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=240)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--warmup", type=int, default=24)
    p.add_argument("--eval-interval", type=int, default=40)
    p.add_argument("--eval-iters", type=int, default=12)
    p.add_argument("--workers", type=int, default=2, help="runs in parallel, one thread each")
    p.add_argument("--data", default=None, help="the text (default: Tiny Shakespeare via load_text)")
    p.add_argument("--out", default=str(Path(__file__).with_name("ablation_results.json")))
    args = p.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")

    target = num_params(base_config())
    configs = {n: matched_config(VARIANTS[n], target) for n in names}
    for n, c in configs.items():
        print(f"{n:8s} {num_params(c):>9,} parameters, mlp_hidden {c.mlp_hidden or 'default'}")
    jobs = [(n, configs[n].to_dict(), seed, args) for seed in range(args.seeds) for n in names]
    t0 = time.time()
    with ProcessPoolExecutor(args.workers, initializer=_worker_init, initargs=(args.data,)) as pool:
        runs = list(pool.map(run_one, jobs))
    summary = summarize(runs, names)
    print(f"\n{'variant':8s}  best val loss (mean +- std over {args.seeds} seeds)")
    for n, s in summary.items():
        std = f" +- {s['std']:.4f}" if s["std"] is not None else ""
        print(f"{n:8s}  {s['mean']:.4f}{std}")
    print(f"total {time.time() - t0:.0f} s")

    settings = {k: v for k, v in vars(args).items() if k not in ("out", "data")}
    shared = ("learning_rate", "min_lr", "warmup_iters", "max_iters", "batch_size", "eval_interval", "eval_iters",
              "weight_decay", "grad_clip")
    full = dataclasses.asdict(train_config(base_config(), 0, args))
    results = dict(
        command=" ".join(["python benchmarks/ablation.py", *sys.argv[1:]]),
        date=datetime.date.today().isoformat(), machine=MACHINE, torch=torch.__version__,
        settings=settings, train_config={k: full[k] for k in shared},
        seeds=list(range(args.seeds)), vanilla_params=target,
        variants={n: dict(changes=VARIANTS[n], config=configs[n].to_dict(), params=num_params(configs[n]))
                  for n in names},
        runs=runs, summary=summary, total_seconds=round(time.time() - t0),
    )
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
