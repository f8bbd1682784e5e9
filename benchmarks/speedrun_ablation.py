"""The CPU speedrun's ablation: which training tricks help a small GPT at EQUAL WALL-CLOCK TIME?

Chapter 07's ablation (ablation.py) compares blocks at equal steps. A trick that
makes each step better but slower (Muon's orthogonalisation, a wider MLP) can
lose at equal time, which is what a learner with a laptop has. So every run
here trains for the same --minutes of training steps (`TrainConfig.max_minutes`,
evaluation excluded, the schedule stretched to fit), then is scored on the whole
val split in non-overlapping windows of its context (as `eval` does).

Arms are changes on top of a base config (ARMS below). Timing is the point, and
the machine may be shared, so:

- one thread per run, one run at a time, and the budget counts the process's
  CPU seconds (`budget_clock="cpu"`), not the wall clock, which other jobs on
  the machine would stretch;
- interleaved: for each seed, every arm back to back, so a slow spell of the
  machine hits every arm about equally;
- paired: run k of every arm uses seed k (same initial weights where the shapes
  agree, same batches), and the table gives each arm's mean difference from the
  first arm with its standard error over seeds.

    python benchmarks/speedrun_ablation.py --out benchmarks/speedrun_ablation.json   # 5 seeds x arms x minutes
    python benchmarks/speedrun_ablation.py --arms tiny,speedrun --seeds 1 --minutes 0.2 --out /tmp/a.json

The JSON holds every run: its arm, seed, steps, training seconds, whole-val loss,
and its evaluation history (training seconds, val loss on --eval-iters batches)
for a figure of val against minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import gpt_from_scratch as gfs  # noqa: E402
from gpt_from_scratch.train import PRESETS, TrainConfig, evaluate_split, train  # noqa: E402

MODERN = dict(norm="rmsnorm", activation="swiglu", pos="rope", n_kv_head=2, mlp_hidden=392)  # cpu-modern's block

# Each arm: a preset and the changes made to it. "tiny" is cpu-tiny as it ships (the baseline).
ARMS: dict[str, tuple[str, dict]] = {
    "tiny": ("cpu-tiny", {}),
    "modern": ("cpu-tiny", MODERN),
    "modern-muon": ("cpu-tiny", {**MODERN, "optimizer": "muon"}),
    "modern-muon05": ("cpu-tiny", {**MODERN, "optimizer": "muon", "muon_lr": 0.05}),
    "modern-relu2": ("cpu-tiny", {**MODERN, "activation": "relu2", "mlp_hidden": 512}),
    "modern-tricks": ("cpu-tiny", {**MODERN, "qk_norm": True, "logit_softcap": 15.0, "zero_init_proj": True}),
    "modern-b16": ("cpu-tiny", {**MODERN, "batch_size": 16}),
    "modern-lr4": ("cpu-tiny", {**MODERN, "learning_rate": 4e-3, "min_lr": 4e-4}),
}
if "cpu-speedrun" in PRESETS:
    ARMS["speedrun"] = ("cpu-speedrun", {})


def arm_config(arm: str, minutes: float, seed: int, eval_interval: int, eval_iters: int) -> TrainConfig:
    preset, changes = ARMS[arm]
    return PRESETS[preset].replace(
        **changes, max_iters=10**9, max_minutes=minutes, budget_clock="cpu", seed=seed, eval_interval=eval_interval,
        eval_iters=eval_iters, device="cpu", dtype="float32", progress=False, out_dir=None,
    )


def run_one(arm: str, seed: int, minutes: float, text: str, eval_interval: int, eval_iters: int) -> dict:
    """Train one arm for `minutes` of steps; its whole-val loss and evaluation history."""
    cfg = arm_config(arm, minutes, seed, eval_interval, eval_iters)
    with contextlib.redirect_stdout(io.StringIO()):
        result = train(cfg, text=text)
    _, _, val = gfs.prepare_data(text, tokenizer=result.tokenizer)
    val_loss = evaluate_split(result.model, val, batch_size=64)
    return dict(arm=arm, seed=seed, steps=result.iter_num, train_s=result.train_s, wall_s=result.elapsed_s,
                val_loss=val_loss, params=sum(p.numel() for p in result.model.parameters()),
                history=[dict(train_s=h["train_s"], iter=h["iter"], val_loss=h["val_loss"]) for h in result.history])


def summarise(runs: list[dict], arms: list[str]) -> list[dict]:
    """Per arm: mean whole-val loss, and the mean paired difference from the first arm with its standard error."""
    by = {(r["arm"], r["seed"]): r for r in runs}
    base, rows = arms[0], []
    for arm in arms:
        seeds = [s for (a, s) in by if a == arm and (base, s) in by]
        vals = [by[arm, s]["val_loss"] for s in seeds]
        diffs = [by[arm, s]["val_loss"] - by[base, s]["val_loss"] for s in seeds]
        se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
        rows.append(dict(arm=arm, seeds=len(seeds), val_mean=statistics.mean(vals),
                         steps_mean=statistics.mean(by[arm, s]["steps"] for s in seeds),
                         diff_mean=statistics.mean(diffs), diff_se=se))
    return rows


def print_table(rows: list[dict], base: str) -> None:
    print(f"{'arm':<16}{'seeds':>6}{'steps':>8}{'val':>9}   vs {base} (mean +- s.e.)")
    for r in rows:
        print(f"{r['arm']:<16}{r['seeds']:>6}{r['steps_mean']:>8.0f}{r['val_mean']:>9.4f}   "
              f"{r['diff_mean']:+.4f} +- {r['diff_se']:.4f}")


def plot(path: str, out: str) -> None:
    """Val loss (the runs' own evaluations) against training minutes: each seed thin, the arm's mean thick."""
    import matplotlib.pyplot as plt

    d = json.loads(Path(path).read_text())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, arm in enumerate(d["arms"]):
        runs = [r for r in d["runs"] if r["arm"] == arm]
        for r in runs:
            ax.plot([h["train_s"] / 60 for h in r["history"]], [h["val_loss"] for h in r["history"]],
                    color=f"C{i}", alpha=0.3, lw=0.8)
        mean = statistics.mean(r["val_loss"] for r in runs)
        ax.plot([], [], color=f"C{i}", label=f"{arm}: whole-val {mean:.3f} (mean of {len(runs)})")
    ax.set(xlabel=f"training minutes ({'CPU' if d.get('clock', 'cpu') == 'cpu' else 'wall'}, one thread)",
           ylabel="val loss (20 random batches)", ylim=(1.8, 2.6), title="Equal-time ablation, Tiny Shakespeare")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arms", default="tiny,modern,modern-muon,speedrun", help="comma-separated; the first is the base")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--minutes", type=float, default=2.0, help="training minutes per run (evaluation excluded)")
    p.add_argument("--eval-interval", type=int, default=100)
    p.add_argument("--eval-iters", type=int, default=20)
    p.add_argument("--out", default="benchmarks/speedrun_ablation.json")
    p.add_argument("--plot", metavar="PNG", help="only draw val against minutes from --out's results, into PNG")
    args = p.parse_args()
    if args.plot:
        plot(args.out, args.plot)
        return
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"error: unknown arm {unknown[0]!r}; choose from {', '.join(ARMS)}")
    torch.set_num_threads(1)
    text = gfs.load_text()
    runs, t0 = [], time.time()
    for seed in range(args.seeds):  # interleaved: every arm of one seed back to back
        for arm in arms:
            r = run_one(arm, seed, args.minutes, text, args.eval_interval, args.eval_iters)
            runs.append(r)
            print(f"seed {seed} {arm:<16} {r['steps']:>6} steps {r['train_s']:6.1f} s  val {r['val_loss']:.4f}",
                  flush=True)
            out = dict(date=datetime.date.today().isoformat(), machine=platform.processor() or platform.machine(),
                       torch=torch.__version__, threads=1, minutes=args.minutes, arms=arms,
                       arm_configs={a: dict(preset=ARMS[a][0], changes=ARMS[a][1]) for a in arms},
                       seeds=args.seeds, runs=runs, total_wall_s=time.time() - t0)
            Path(args.out).write_text(json.dumps(out, indent=1) + "\n")  # after every run: nothing is lost
    print_table(summarise(runs, arms), arms[0])


if __name__ == "__main__":
    main()
