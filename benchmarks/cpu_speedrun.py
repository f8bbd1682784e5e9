"""The CPU speedrun, side by side: nanoGPT's own CPU recipe, then ours for the same time.

1. nanoGPT: its own train.py and prepare.py, run from a temporary copy of a local
   checkout (--nanogpt, never copied into this repository), with the CPU recipe of
   its README: 4 layers, 4 heads, 128 wide, context 64, batch 12, 2,000 iterations,
   dropout 0, eval_iters 20, no compile. Its prepare.py reads input.txt when it is
   there: we put Tiny Shakespeare there. We record its wall time W and its CPU time C
   (start-up, data preparation and its nine evaluations included).
2. Ours: `python -m gpt_from_scratch train --preset cpu-speedrun --max-minutes M`
   with M = C / 60 counted in CPU time (`--budget-clock cpu`, the default here) or
   M = W / 60 in wall time (`--clock wall`), the same thread count, right after.
   CPU time is the fair measure on a machine shared with other jobs: their load
   stretches the wall clock of whichever run it happens to hit.
3. Both are scored by our own whole-split evaluation (`evaluate_split`, every val
   character predicted once, in windows of the model's context): nanoGPT's weights
   load into our GPT exactly, since the state-dict names and the architecture are
   the same.

It prints both losses, the difference, and when ours first reached nanoGPT's final
loss (from our run's evaluations, interpolated between them; those use eval-iters
random batches, so this time is an estimate).

    python benchmarks/cpu_speedrun.py --nanogpt /path/to/nanoGPT --out benchmarks/cpu_speedrun.json
    python benchmarks/cpu_speedrun.py --nanogpt PATH --max-iters 100 --out /tmp/s.json   # a quick look
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

import gpt_from_scratch as gfs  # noqa: E402
from gpt_from_scratch.checkpoint import model_and_tokenizer, read_checkpoint  # noqa: E402
from gpt_from_scratch.train import evaluate_split  # noqa: E402

NANOGPT_CPU_RECIPE = [  # nanoGPT's README, "I only have a macbook": the shakespeare_char config on a CPU
    "config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1",
    "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
    "--lr_decay_iters=2000", "--dropout=0.0", "--dtype=float32",
]


def timed_run(cmd: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, float]:
    """Run a command to the end; its (wall seconds, CPU seconds of the child, user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_nanogpt(nanogpt: Path, work: Path, text: str, env: dict, max_iters: int) -> dict:
    """nanoGPT's CPU recipe from a temporary copy: its times and its checkpoint."""
    copy = work / "nanoGPT"
    shutil.copytree(nanogpt, copy, ignore=shutil.ignore_patterns(".git", "out*"))
    prep = copy / "data" / "shakespeare_char"
    (prep / "input.txt").write_text(text, encoding="utf-8")
    subprocess.run([sys.executable, "prepare.py"], cwd=prep, env=env, check=True, capture_output=True)
    recipe = [a for a in NANOGPT_CPU_RECIPE if not a.startswith(("--max_iters", "--lr_decay_iters"))]
    recipe += [f"--max_iters={max_iters}", f"--lr_decay_iters={max_iters}"]
    # its checkpoint at the last evaluation (iteration max_iters), not only when val improved
    recipe += ["--always_save_checkpoint=True"] + ([f"--eval_interval={max_iters}"] if max_iters < 250 else [])
    recipe += [f"--out_dir={work / 'out-nanogpt'}"]
    wall, cpu = timed_run([sys.executable, "train.py", *recipe], copy, env, work / "nanogpt.log")
    return dict(wall_s=wall, cpu_s=cpu, ckpt=str(work / "out-nanogpt" / "ckpt.pt"), command="python train.py " + " ".join(recipe[:-1]))


def nanogpt_into_ours(path: str) -> gfs.GPT:
    """nanoGPT's checkpoint in our GPT: the same names and shapes, loaded strictly."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)  # nanoGPT's own file holds its config dicts
    a = ckpt["model_args"]
    model = gfs.GPT(gfs.GPTConfig(vocab_size=a["vocab_size"], block_size=a["block_size"], n_layer=a["n_layer"],
                                  n_head=a["n_head"], n_embd=a["n_embd"], dropout=0.0, bias=a["bias"]))
    state = {k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items() if not k.endswith(".attn.bias")}
    model.load_state_dict(state)
    return model.eval()


def time_to_reach(history: list[dict], target: float) -> float | None:
    """Training seconds at which the evaluated val loss first reached target, interpolated linearly."""
    for prev, row in zip(history, history[1:]):
        if row["val_loss"] <= target:
            a, b = prev["val_loss"], row["val_loss"]
            frac = (a - target) / (a - b) if a > b else 1.0
            return prev["train_s"] + frac * (row["train_s"] - prev["train_s"])
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nanogpt", required=True, help="a local nanoGPT checkout (train.py, model.py, data/, config/)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for both runs")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="what the equal time counts")
    p.add_argument("--max-iters", type=int, default=2000, help="nanoGPT's iterations (its README: 2000)")
    p.add_argument("--preset", default="cpu-speedrun")
    p.add_argument("--eval-interval", type=int, default=100, help="our run's evaluation interval")
    p.add_argument("--out", default="benchmarks/cpu_speedrun.json")
    args = p.parse_args()
    text = gfs.load_text()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO)}
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="cpu-speedrun-") as tmp:
        work = Path(tmp)
        nano = run_nanogpt(Path(args.nanogpt), work, text, env, args.max_iters)
        budget_s = nano["cpu_s"] if args.clock == "cpu" else nano["wall_s"]
        ours_cmd = [sys.executable, "-m", "gpt_from_scratch", "train", "--preset", args.preset,
                    "--max-minutes", f"{budget_s / 60:.4f}", "--budget-clock", args.clock, "--device", "cpu",
                    "--eval-interval", str(args.eval_interval), "--out-dir", str(work / "out-ours"), "--no-progress"]
        wall, cpu = timed_run(ours_cmd, REPO, env, work / "ours.log")
        ckpt = read_checkpoint(work / "out-ours" / "ckpt.pt")
        ours_model, tok = model_and_tokenizer(ckpt, work / "out-ours" / "ckpt.pt")
        _, val_text = gfs.train_val_split(text)
        val = torch.tensor(tok.encode(val_text), dtype=torch.long)
        nano_val = evaluate_split(nanogpt_into_ours(nano["ckpt"]), val, batch_size=64)
        ours_val = evaluate_split(ours_model.eval(), val, batch_size=64)
        reach = time_to_reach(ckpt["history"], nano_val)
        ours = dict(wall_s=wall, cpu_s=cpu, train_s=ckpt["train_seconds"], iters=ckpt["iter_num"],
                    budget_s=budget_s, command="python -m gpt_from_scratch " + " ".join(ours_cmd[3:-3]),
                    history=[dict(iter=h["iter"], train_s=h["train_s"], val_loss=h["val_loss"]) for h in ckpt["history"]])
    nano.pop("ckpt")
    result = dict(
        date=datetime.datetime.now().isoformat(timespec="minutes"), machine=platform.processor() or platform.machine(),
        cpus=os.cpu_count(), load_average_at_end=os.getloadavg(), torch=torch.__version__, threads=args.threads,
        clock=args.clock, nanogpt=dict(**nano, iters=args.max_iters, val_loss=nano_val),
        ours=dict(**ours, val_loss=ours_val, reached_nanogpt_final_at_s=reach),
    )
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"nanoGPT  {args.max_iters} iters: wall {nano['wall_s']:.0f} s, CPU {nano['cpu_s']:.0f} s, "
          f"whole-val loss {nano_val:.4f}")
    print(f"ours     {ours['iters']} iters in a budget of {budget_s:.0f} s ({args.clock}): wall {wall:.0f} s, "
          f"CPU {cpu:.0f} s, whole-val loss {ours_val:.4f}")
    print(f"difference (ours - nanoGPT): {ours_val - nano_val:+.4f} nats per character")
    if reach is None:
        print("ours did not reach nanoGPT's final loss")
    else:
        print(f"ours reached nanoGPT's final loss after {reach:.0f} s of training ({args.clock}), "
              f"{reach / budget_s:.0%} of nanoGPT's time")


if __name__ == "__main__":
    main()
