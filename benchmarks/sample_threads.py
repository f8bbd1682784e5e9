"""How many CPU threads `sample` should use: tokens/s of KV-cached generation with 1 and 2 threads.

Batch 1, a 1-token prompt, --tokens new tokens, float32, temperature 0.8 from a fixed seed, random
weights, at four shapes: cpu-tiny (0.8M), the flagship shakespeare-char (10.7M), the flagship with
GPT-2's vocabulary, and GPT-2 124M itself (12 layers, 768 wide, context 1024, 50,257 tokens).
Each timing is the best of --repeat runs, taken in turns (1 thread, 2 threads, 1, 2, ...), because
other tenants of a shared machine only ever slow a run down. cli.py's `sample` picks its default
thread count from this (see benchmarks/README.md).

    python benchmarks/sample_threads.py --tokens 200 --repeat 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from gpt_from_scratch.model import GPT, GPTConfig  # noqa: E402

SHAPES = {
    "cpu-tiny": GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0),
    "flagship": GPTConfig(vocab_size=65, dropout=0.0),
    "flagship-50k": GPTConfig(vocab_size=50257, dropout=0.0),
    "gpt2-124M": GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768,
                           dropout=0.0, activation="gelu_tanh"),
}


def tokens_per_s(model: GPT, threads: int, tokens: int) -> float:
    torch.set_num_threads(threads)
    idx = torch.zeros((1, 1), dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    model.generate(idx, tokens, temperature=0.8, generator=gen)
    return tokens / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {args.tokens} tokens, best of {args.repeat}")
    print(f"{'shape':14} {'params':>8} " + " ".join(f"{t:>2} thr tok/s" for t in args.threads))
    for name in args.shapes:
        torch.manual_seed(0)
        model = GPT(SHAPES[name]).eval()
        tokens_per_s(model, 1, 8)  # warm-up
        best = {t: 0.0 for t in args.threads}
        for _ in range(args.repeat):
            for t in args.threads:
                best[t] = max(best[t], tokens_per_s(model, t, args.tokens))
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{name:14} {params:7.1f}M " + " ".join(f"{best[t]:12.1f}" for t in args.threads), flush=True)


if __name__ == "__main__":
    main()
