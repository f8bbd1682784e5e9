"""Generation speed: our KV-cached generation against nanoGPT's own generate, on the same weights.

Batch 1, a 1-character prompt, --tokens new tokens (default 500), float32,
one thread (--threads), from the flagship-shaped model (GPTConfig(): 6 layers,
6 heads, 384 wide, context 256) with random weights, or from --checkpoint.
Three timings in one process, each the best of --repeat runs taken in turns
(other tenants of a shared machine only ever slow a run down):

- cache:    gfs.GPT.generate with the KV cache (one position of work per token);
- no cache: gfs.GPT.generate recomputing its context window at every step;
- nanoGPT:  nanoGPT's GPT.generate (no cache: it re-runs the last block_size
            tokens at every step), with our weights copied into it. It is
            loaded from --nanogpt PATH, a local copy of nanoGPT's model.py,
            never downloaded and never copied into this repository.

All three sample at temperature 0.8 from a fixed seed. The speed of a path
does not depend on which tokens it draws (nanoGPT samples with
torch.multinomial, so its text differs from ours).

    python benchmarks/generate_speed.py --nanogpt /path/to/nanoGPT/model.py
    python benchmarks/generate_speed.py --nanogpt PATH --repeat 5
    python benchmarks/generate_speed.py --checkpoint checkpoints/cpu-tiny.pt

Target: at the flagship shape and 500 tokens, the cache at least 8x faster
than nanoGPT's generate.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import gpt_from_scratch as gfs  # noqa: E402
from gpt_from_scratch.device import describe_device  # noqa: E402

TARGET = 8.0  # cache vs nanoGPT, flagship shape, 500 tokens


def load_nanogpt(path: str, ours: gfs.GPT) -> nn.Module:
    """nanoGPT's GPT at our model's shape, holding exactly our weights."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    c = ours.config
    cfg = mod.GPTConfig(block_size=c.block_size, vocab_size=c.vocab_size, n_layer=c.n_layer,
                        n_head=c.n_head, n_embd=c.n_embd, dropout=0.0, bias=c.bias)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameter count
        nano = mod.GPT(cfg)
    ours_sd = ours.state_dict()
    # strict=False: without flash attention nanoGPT registers a causal-mask buffer named attn.bias
    missing, unexpected = nano.load_state_dict(ours_sd, strict=False)
    missing = [k for k in missing if not k.endswith(".attn.bias")]
    if missing or unexpected:
        raise SystemExit(f"error: nanoGPT's weights do not match ours (missing {missing}, unexpected {unexpected})")
    nano_sd = nano.state_dict()
    for name, p in ours_sd.items():  # every real weight was copied
        if not torch.equal(nano_sd[name], p):
            raise SystemExit(f"error: {name} differs after copying our weights into nanoGPT")
    return nano.eval()


def check_same_logits(ours: nn.Module, nano: nn.Module, device: torch.device) -> float:
    """Largest difference of the last position's logits on a random context (both models, same weights)."""
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, ours.config.vocab_size, (1, ours.config.block_size), generator=g).to(device)
    with torch.no_grad():
        a = ours(idx)[0][:, -1]
        b = nano(idx)[0][:, -1]  # nanoGPT returns the last position only when there are no targets
    return (a - b).abs().max().item()


def best_times(runs: dict, repeat: int, device: torch.device) -> dict:
    """The fastest of `repeat` calls of each run(), in seconds.

    The paths take turns (cache, no cache, nanoGPT, cache, ...), so a burst of
    load from other tenants of a shared machine does not land on one path only.
    """
    best = {name: float("inf") for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def is_flagship(c: gfs.GPTConfig) -> bool:
    default = gfs.GPTConfig()
    return all(getattr(c, f) == getattr(default, f) for f in ("n_layer", "n_head", "n_embd", "block_size"))


def report(times: dict, n: int, repeat: int, flagship: bool) -> None:
    base = times.get("nanoGPT", times["no cache"])
    base_name = "nanoGPT" if "nanoGPT" in times else "no cache"
    print()
    print(f"{n} new tokens per run, best of {repeat}")
    print(f"| path     | tokens/s | ms/token | vs {base_name:<8} |")
    print("|----------|----------|----------|-------------|")
    for name, t in times.items():
        print(f"| {name:<8} | {n / t:8,.1f} | {1000 * t / n:8.2f} | {base / t:10.1f}x |")
    if "nanoGPT" in times:
        ratio = times["nanoGPT"] / times["cache"]
        verdict = ("met" if ratio >= TARGET else "NOT met") if flagship else "applies to the flagship, 500 tokens"
        print(f"cache vs nanoGPT's generate: {ratio:.1f}x (target >= {TARGET:.0f}x: {verdict})")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nanogpt", help="path to a local copy of nanoGPT's model.py (without it: our two paths only)")
    p.add_argument("--checkpoint", help="a trained checkpoint (default: random weights at GPTConfig()'s shape)")
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda | mps | auto")
    p.add_argument("--tokens", type=int, default=500, help="new tokens per run (default 500)")
    p.add_argument("--repeat", type=int, default=3, help="runs per path; the fastest counts (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.tokens < 1 or args.threads < 1:
        p.error("--repeat, --tokens and --threads must be at least 1")
    if args.nanogpt and not Path(args.nanogpt).expanduser().is_file():
        p.error(f"--nanogpt {args.nanogpt}: no such file (point it at nanoGPT's model.py)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = gfs.get_device(args.device, verbose=False)
    if args.checkpoint:
        model, _ = gfs.load_checkpoint(args.checkpoint)
        what = args.checkpoint
    else:
        torch.manual_seed(0)
        model = gfs.GPT(gfs.GPTConfig())
        what = "random weights, GPTConfig() shape"
    model = model.to(device=device, dtype=torch.float32).eval()
    c = model.config
    nano = None
    if args.nanogpt:
        default = gfs.GPTConfig()
        if any(getattr(c, f) != getattr(default, f) for f in ("activation", "norm", "pos", "n_kv_head", "tie_weights")):
            raise SystemExit("error: nanoGPT has only GPT-2's block; use a model with the default options")
        nano = load_nanogpt(str(Path(args.nanogpt).expanduser()), model).to(device)
    print(f"device: {describe_device(device)} | torch {torch.__version__} | threads {torch.get_num_threads()}")
    print(f"model: {what} ({c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide, context {c.block_size}, "
          f"{model.num_params() / 1e6:.2f}M parameters) | float32, batch 1, 1-character prompt")
    if nano is not None:
        print(f"nanoGPT: same weights (every tensor equal); last-position logits differ by at most "
              f"{check_same_logits(model, nano, device):.1e}")

    idx = torch.zeros((1, 1), dtype=torch.long, device=device)
    n = args.tokens

    def ours(use_kv_cache: bool, tokens: int = n):
        return lambda: model.generate(idx, tokens, temperature=0.8, use_kv_cache=use_kv_cache,
                                      generator=torch.Generator().manual_seed(0))

    def nanogpt(tokens: int = n):
        def run():
            torch.manual_seed(0)
            return nano.generate(idx, tokens, temperature=0.8)
        return run

    runs = {"cache": ours(True), "no cache": ours(False)}
    warm = [ours(True, 20), ours(False, 5)]
    if nano is not None:
        runs["nanoGPT"] = nanogpt()
        warm.append(nanogpt(5))
    for w in warm:
        w()
    times = best_times(runs, args.repeat, device)
    report(times, n, args.repeat, flagship=is_flagship(c) and n == 500)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
