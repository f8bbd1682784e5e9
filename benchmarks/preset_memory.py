"""One training step of each preset on the CPU at batch 1: time and peak memory.

    python benchmarks/preset_memory.py                     # every preset, with and without checkpointing
    python benchmarks/preset_memory.py --presets tiny small

Each measurement runs in a fresh process, so its peak resident memory (ru_maxrss) is
its own: the weights, the gradients, AdamW's two moments and the activations of one
sequence of the preset's context, in float32. From those it estimates what a preset
needs on a GPU at its own batch size, and whether that fits a 16 GB T4 (free Colab,
Kaggle) with and without gradient checkpointing. The numbers for README.md's table
come from here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time, torch
from gpt_from_scratch.model import GPT
from gpt_from_scratch.train import configure_optimizer, get_preset
torch.set_num_threads(1)
name, checkpointing = sys.argv[1], sys.argv[2] == "1"
cfg = get_preset(name)
torch.manual_seed(0)
model = GPT(cfg.gpt)
model.gradient_checkpointing = checkpointing
opt = configure_optimizer(model, cfg, torch.device("cpu"))
T = cfg.gpt.block_size
x = torch.randint(0, cfg.gpt.vocab_size, (1, T))
saved = {}  # what autograd keeps for the backward pass: the activations, counted once per storage
def pack(t):
    saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return t
t0 = time.perf_counter()
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    _, loss = model(x, x)
params = {p.untyped_storage().data_ptr() for p in model.parameters()}
act = sum(n for ptr, n in saved.items() if ptr not in params)  # weights are not activations
loss.backward()
opt.step()
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
print(json.dumps(dict(params=model.num_params(), seconds=dt, peak_mb=peak, act_mb=act / 2**20,
                      micro_batch=cfg.batch_size, block=T, n_layer=cfg.gpt.n_layer)))
"""


def measure(name: str, checkpointing: bool) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, name, "1" if checkpointing else "0"],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"error: {name}: {r.stderr.strip().splitlines()[-1]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "small", "medium", "large"])
    args = p.parse_args(argv)
    print(f"python {sys.version.split()[0]} | one CPU thread | float32 | batch 1 | {time.strftime('%Y-%m-%d')}")
    print("activations: the bytes autograd saves for the backward pass of one sequence (float32; with")
    print("checkpointing, the blocks' inputs plus one block recomputed at a time in the backward pass);")
    print("GPU estimate: 16 bytes per parameter (fp32 weights, gradients, AdamW's two moments)")
    print("+ the preset's micro-batch x activations at half precision + 1 GB of CUDA context")
    print(f"{'preset':<8}{'params':>13}{'state GB':>10}{'ckpt':>6}{'step s':>8}{'peak RSS MB':>13}"
          f"{'act MB/seq':>12}{'GPU GB (micro-batch)':>22}{'T4 16 GB':>10}")
    for name in args.presets:
        full = measure(name, False)
        for m in (full, measure(name, True)):
            ckpt = m is not full
            act = m["act_mb"]
            if ckpt:  # the backward pass recomputes one block at a time: add one block's activations
                act += (full["act_mb"] - m["act_mb"]) / m["n_layer"]
            state_gb = 16 * m["params"] / 1e9
            gpu_gb = state_gb + m["micro_batch"] * act / 2 / 1024 + 1.0
            fits = "yes" if gpu_gb < 15.0 else "no"
            print(f"{name:<8}{m['params']:>13,}{state_gb:>10.2f}{'yes' if ckpt else 'no':>6}{m['seconds']:>8.2f}"
                  f"{m['peak_mb']:>13,.0f}{act:>12,.1f}{gpu_gb:>14.1f} ({m['micro_batch']:>3}){fits:>11}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
