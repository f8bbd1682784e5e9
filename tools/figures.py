"""The figures of notes/ and README.md, drawn from the package itself.

    python tools/figures.py            # writes notes/figures/*.png
    python tools/figures.py --list     # what it would write
    python tools/figures.py --only lr_schedule --out /tmp/figs

Every figure is deterministic: fixed seeds, no network, no training. The
numbers come from the package where they can (the LR schedule from
train.get_lr and the shakespeare-char preset, sampling from
generate.filter_probs, the sliding window from generate.window_start, the
parameter count from model.GPT), so a figure changes when the code does.
The attention heat map reads checkpoints/cpu-tiny.pt and is skipped when that
file is absent.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Callable

import torch

DPI = 90
# The first line of Tiny Shakespeare, so no figure needs the data file.
FIRST_LINES = "First Citizen:\nBefore we proceed any further, hear me speak."
TRAIN_CHARS, VAL_CHARS = 1_003_854, 111_540

BLUE, ORANGE, GREEN, RED, PURPLE, GREY = "#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#8C8C8C"


def _plt():
    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "figure.dpi": DPI})
    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.1)
    _plt().close(fig)
    return path


def _show(ch: str) -> str:
    return {"\n": "\\n", " ": "␣"}.get(ch, ch)


def _box(ax, x, y, w, h, text, color, fontsize=9, text_color="black", alpha=1.0, bold=False):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=color, ec="black", lw=0.8, alpha=alpha))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color=text_color,
            fontweight="bold" if bold else "normal")


def _arrow(ax, x0, y0, x1, y1, color="black", lw=1.2, style="-|>"):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=10, color=color, lw=lw,
                                 shrinkA=0, shrinkB=0))


# --- notes/01: training windows and the contiguous split -------------------------------------------


def training_windows(path: Path) -> Path:
    plt = _plt()
    from matplotlib.patches import Rectangle

    text = FIRST_LINES[:24]
    block, start = 8, 3
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9.5, 5.2), gridspec_kw={"height_ratios": [3.2, 1]})
    ax.set_xlim(-2.3, len(text) + 0.2)
    ax.set_ylim(-9.2, 3.7)
    ax.axis("off")
    ax.set_title(f"One training window: block_size = {block}, the targets are the inputs shifted by one")
    for i, ch in enumerate(text):
        in_x = start <= i < start + block
        in_y = start + 1 <= i < start + block + 1
        fc = BLUE if in_x and not in_y else (GREEN if in_y and not in_x else ("#7FA8A0" if in_x else "white"))
        ax.add_patch(Rectangle((i, 1.2), 0.95, 0.95, fc=fc, ec="0.4", lw=0.6, alpha=0.9 if (in_x or in_y) else 1))
        ax.text(i + 0.47, 1.67, _show(ch), ha="center", va="center", fontsize=9,
                color="white" if (in_x or in_y) else "black", family="monospace")
        ax.text(i + 0.47, 2.5, str(i), ha="center", va="center", fontsize=7, color="0.45")
    ax.text(-0.2, 1.67, "text", ha="right", va="center", fontsize=9)
    ax.text(-0.2, 2.5, "index", ha="right", va="center", fontsize=7, color="0.45")
    ax.annotate("", xy=(start, 1.0), xytext=(start + block, 1.0),
                arrowprops=dict(arrowstyle="<->", color=BLUE, lw=1.2))
    ax.text(start + block + 0.3, 0.95, f"x = data[i : i+{block}]   (here i = {start})", ha="left", va="center",
            color=BLUE, fontsize=9)
    ax.annotate("", xy=(start + 1, 3.05), xytext=(start + block + 1, 3.05),
                arrowprops=dict(arrowstyle="<->", color=GREEN, lw=1.2))
    ax.text(start + block + 1.3, 3.05, f"y = data[i+1 : i+{block + 1}]", ha="left", va="center", color=GREEN,
            fontsize=9)
    # the eight examples inside one window
    for t in range(block):
        yrow = -0.4 - t * 1.08
        ctx = text[start : start + t + 1]
        tgt = text[start + t + 1]
        ax.text(-0.2, yrow, f"t={t}", ha="right", va="center", fontsize=8, color="0.4")
        for j, ch in enumerate(ctx):
            ax.add_patch(Rectangle((j, yrow - 0.42), 0.95, 0.84, fc=BLUE, ec="0.4", lw=0.5, alpha=0.85))
            ax.text(j + 0.47, yrow, _show(ch), ha="center", va="center", fontsize=8, color="white",
                    family="monospace")
        _arrow(ax, len(ctx) + 0.15, yrow, len(ctx) + 1.0, yrow, color="0.3", lw=0.9)
        ax.add_patch(Rectangle((len(ctx) + 1.1, yrow - 0.42), 0.95, 0.84, fc=GREEN, ec="0.4", lw=0.5))
        ax.text(len(ctx) + 1.57, yrow, _show(tgt), ha="center", va="center", fontsize=8, color="white",
                family="monospace")
    ax.text(block + 3.5, -4.2, "one window = 8 examples:\ncontext of length 1..8 → next character\n"
            "(the causal mask lets every position\ntrain at once)", fontsize=9, va="center")

    total = TRAIN_CHARS + VAL_CHARS
    ax2.barh([0], [TRAIN_CHARS], color=BLUE)
    ax2.barh([0], [VAL_CHARS], left=[TRAIN_CHARS], color=ORANGE)
    ax2.text(TRAIN_CHARS / 2, 0, f"train: first 90 % ({TRAIN_CHARS:,} characters)", ha="center", va="center",
             color="white", fontsize=9)
    ax2.text(TRAIN_CHARS + VAL_CHARS / 2, 0, "val:\nlast 10 %", ha="center", va="center", color="white",
             fontsize=8)
    ax2.set_xlim(0, total)
    ax2.xaxis.set_major_formatter(lambda v, _: f"{v / 1e3:,.0f}k")
    ax2.set_yticks([])
    ax2.set_xlabel("position in Tiny Shakespeare (characters)")
    ax2.set_title("The split is contiguous: val is text the model never saw, not shuffled neighbours of train",
                  fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# --- notes/02: the causal mask and the sqrt(d) scaling ----------------------------------------------


def causal_mask(path: Path) -> Path:
    plt = _plt()
    from gpt_from_scratch.teaching import causal_mask as make_mask

    T = 6
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(T, T, generator=g)
    mask = make_mask(T)
    masked = scores.masked_fill(~mask, float("-inf"))
    weights = masked.softmax(dim=-1)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    panels = [
        (mask.float(), "1. causal_mask(T): who may look at whom", "Blues", lambda v, r, c: "✓" if v else ""),
        (torch.where(mask, scores, torch.full_like(scores, float("nan"))), "2. scores, future set to -inf",
         "RdBu_r", lambda v, r, c: f"{scores[r, c]:.1f}" if mask[r, c] else "-∞"),
        (weights, "3. softmax over each row = weights", "viridis", lambda v, r, c: f"{v:.2f}"),
    ]
    for ax, (mat, title, cmap, label) in zip(axes, panels):
        m = mat.numpy()
        import numpy as np

        ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=0 if cmap != "RdBu_r" else -2.5,
                  vmax=1 if cmap != "RdBu_r" else 2.5)
        for r in range(T):
            for c in range(T):
                v = mat[r, c].item()
                txt = label(v, r, c)
                color = "white" if (cmap == "viridis" and v < 0.5) or (cmap == "Blues" and v > 0.5) else "black"
                if cmap == "RdBu_r" and not mask[r, c]:
                    color = "0.5"
                ax.text(c, r, txt, ha="center", va="center", fontsize=8, color=color)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(T))
        ax.set_yticks(range(T))
        ax.set_xlabel("key position (looked at)")
        ax.set_ylabel("query position (looking)")
    fig.suptitle("The causal mask: each row sums to 1 over the current and earlier positions only", y=1.02)
    fig.tight_layout()
    return _save(fig, path)


def sqrt_d_scaling(path: Path) -> Path:
    plt = _plt()
    g = torch.Generator().manual_seed(1337)
    dims = [2, 4, 8, 16, 32, 64, 128, 256]
    raw_std, scaled_std = [], []
    for d in dims:
        q = torch.randn(4096, d, generator=g)
        k = torch.randn(4096, d, generator=g)
        s = (q * k).sum(-1)
        raw_std.append(s.std().item())
        scaled_std.append((s * d**-0.5).std().item())
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(dims, raw_std, "o-", color=RED, label="q · k")
    a1.plot(dims, scaled_std, "o-", color=BLUE, label="q · k / √d")
    a1.plot(dims, [math.sqrt(d) for d in dims], ":", color="0.4", label="√d")
    a1.set_xscale("log", base=2)
    a1.set_xlabel("head size d")
    a1.set_ylabel("standard deviation of a score")
    a1.set_title("Unit-variance q and k: the dot product grows like √d")
    a1.legend()
    a1.grid(alpha=0.3)

    # A typical example, not a lucky one: of many random (query, 8 keys) draws, show the one whose
    # largest unscaled weight is the median.
    d, T, draws = 64, 8, 4001
    q = torch.randn(draws, 1, d, generator=g)
    k = torch.randn(draws, T, d, generator=g)
    scores = (q * k).sum(-1)  # (draws, T)
    top = torch.softmax(scores, -1).max(-1).values
    s = scores[top.argsort()[draws // 2]]
    x = torch.arange(T)
    raw, scaled = torch.softmax(s, -1), torch.softmax(s / math.sqrt(d), -1)
    a2.bar(x - 0.2, raw.numpy(), 0.4, color=RED, label="softmax(q · k)")
    a2.bar(x + 0.2, scaled.numpy(), 0.4, color=BLUE, label="softmax(q · k / √d)")
    a2.set_ylim(0, 1.12)
    a2.set_xlabel("key position")
    a2.set_ylabel("attention weight")
    a2.set_title(f"One query, {T} keys, d = {d} (the median of {draws - 1:,} draws):\n"
                 f"unscaled puts {raw.max():.2f} on one key, scaled at most {scaled.max():.2f}")
    a2.set_xticks(range(T))
    a2.legend()
    fig.tight_layout()
    return _save(fig, path)


def attention_heatmap(path: Path) -> Path | None:
    """Layer 1's heads of the CPU-trained checkpoint on a line of the play."""
    ckpt = Path(__file__).resolve().parent.parent / "checkpoints" / "cpu-tiny.pt"
    if not ckpt.is_file():
        return None
    plt = _plt()
    from gpt_from_scratch.checkpoint import load_checkpoint

    model, tok = load_checkpoint(ckpt)
    prompt = "ROMEO:\nWhat light is this?"
    idx = torch.tensor([tok.encode(prompt)])
    cfg = model.config
    hs = cfg.n_embd // cfg.n_head
    with torch.no_grad():
        pos = torch.arange(idx.size(1))
        x = model.transformer.wte(idx) + model.transformer.wpe(pos)
        layer = min(1, cfg.n_layer - 1)
        for block in model.transformer.h[:layer]:
            x = block(x)
        blk = model.transformer.h[layer]
        q, k, _ = blk.attn.c_attn(blk.ln_1(x)).split(cfg.n_embd, dim=2)
        T = idx.size(1)
        q = q.view(1, T, cfg.n_head, hs).transpose(1, 2)
        k = k.view(1, T, cfg.n_head, hs).transpose(1, 2)
        wei = (q @ k.transpose(-2, -1)) * hs**-0.5
        wei = wei.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")).softmax(-1)[0]
    n = min(2, cfg.n_head)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 5))
    labels = [_show(c) for c in prompt]
    for h, ax in enumerate(axes if n > 1 else [axes]):
        im = ax.imshow(wei[h].numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(T), labels, fontsize=7, family="monospace")
        ax.set_yticks(range(T), labels, fontsize=7, family="monospace")
        ax.set_xlabel("key position (attended to)")
        ax.set_ylabel("query position (attending)")
        ax.set_title(f"layer {layer}, head {h}")
    fig.colorbar(im, ax=axes, shrink=0.8, label="attention weight")
    fig.suptitle(f"What two heads of the shipped cpu-tiny model look at ({ckpt.name})")
    return _save(fig, path)


# --- notes/03: the transformer block -------------------------------------------------------------


def transformer_block(path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.6, 7.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 13)
    ax.axis("off")
    ax.set_title("One transformer block (pre-norm), as in teaching.Block and model.GPTBlock")
    # the residual stream
    sx = 2.2
    ax.plot([sx, sx], [0.6, 12.4], color=GREY, lw=5, alpha=0.45, solid_capstyle="round", zorder=0)
    ax.text(sx, 0.25, "x  (B, T, n_embd)", ha="center", fontsize=9)
    ax.text(sx, 12.65, "x  (B, T, n_embd): to the next block", ha="center", fontsize=9)
    ax.text(0.25, 6.5, "residual stream", rotation=90, va="center", fontsize=9, color="0.35")

    def branch(y0, ln, name, sub, color, y_plus):
        bx, bw = 3.6, 3.8
        _arrow(ax, sx, y0, bx, y0, color="0.3")
        _box(ax, bx, y0 - 0.45, bw, 0.9, ln, "#EEEEEE")
        _arrow(ax, bx + bw / 2, y0 + 0.45, bx + bw / 2, y0 + 1.05, color="0.3")
        _box(ax, bx, y0 + 1.05, bw, 1.5, f"{name}\n{sub}", color, fontsize=9)
        ax.plot([bx + bw / 2, bx + bw / 2], [y0 + 2.55, y_plus], color="0.3", lw=1.2)
        _arrow(ax, bx + bw / 2, y_plus, sx + 0.28, y_plus, color="0.3")
        ax.add_patch(plt.Circle((sx, y_plus), 0.28, fc="white", ec="black", lw=1, zorder=3))
        ax.text(sx, y_plus, "+", ha="center", va="center", fontsize=13, zorder=4)

    branch(1.6, "LayerNorm  ln_1", "causal self-attention",
           "n_head heads side by side\nconcat → proj → dropout", "#C6D8F0", 5.3)
    ax.text(7.6, 3.4, "communication:\ntokens look at\nearlier tokens", fontsize=8, color=BLUE, va="center")
    branch(7.0, "LayerNorm  ln_2", "feed-forward (MLP)",
           "Linear n→4n, ReLU/GELU,\nLinear 4n→n, dropout", "#F4D6BC", 10.7)
    ax.text(7.6, 8.8, "computation:\neach position\non its own", fontsize=8, color=ORANGE, va="center")
    ax.text(3.6, 5.5, "x = x + sa(ln1(x))", fontsize=9, family="monospace")
    ax.text(3.6, 10.9, "x = x + ffwd(ln2(x))", fontsize=9, family="monospace")
    return _save(fig, path)


def architecture(path: Path) -> Path:
    plt = _plt()
    from gpt_from_scratch.model import GPT, GPTConfig

    cfg = GPTConfig()
    with torch.random.fork_rng():
        n_params = GPT(cfg).num_params()
    fig, ax = plt.subplots(figsize=(8.6, 8.2))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 16)
    ax.axis("off")
    ax.set_title(f"The GPT you will build: {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} wide, "
                 f"context {cfg.block_size}, {n_params / 1e6:.1f}M parameters", fontsize=11)
    cx, w = 6.0, 6.4
    x0 = cx - w / 2
    _box(ax, x0, 0.3, w, 0.8, '"ROMEO:"  →  CharTokenizer.encode  →  ids  (B, T)', "#EEEEEE")
    _arrow(ax, cx - 1.6, 1.1, cx - 1.6, 1.6)
    _arrow(ax, cx + 1.6, 1.1, cx + 1.6, 1.6)
    _box(ax, x0, 1.6, 3.05, 1.1, f"token embedding wte\n{cfg.vocab_size} × {cfg.n_embd}", "#D5E8D4")
    _box(ax, x0 + 3.35, 1.6, 3.05, 1.1, f"position embedding wpe\n{cfg.block_size} × {cfg.n_embd}", "#D5E8D4")
    ax.add_patch(plt.Circle((cx, 3.3), 0.28, fc="white", ec="black"))
    ax.text(cx, 3.3, "+", ha="center", va="center", fontsize=13)
    _arrow(ax, cx - 1.6, 2.7, cx - 0.25, 3.15)
    _arrow(ax, cx + 1.6, 2.7, cx + 0.25, 3.15)
    _arrow(ax, cx, 3.58, cx, 4.0)
    _box(ax, x0, 4.0, w, 0.6, f"dropout ({cfg.dropout})", "#EEEEEE")
    _arrow(ax, cx, 4.6, cx, 5.1)
    # the stack of blocks
    from matplotlib.patches import FancyBboxPatch

    for i in (2, 1):
        ax.add_patch(FancyBboxPatch((x0 + 0.12 * i, 5.1 + 0.12 * i), w, 4.6, boxstyle="round,pad=0.05",
                                    fc="#F7F7F7", ec="0.5", lw=0.8))
    ax.add_patch(FancyBboxPatch((x0, 5.1), w, 4.6, boxstyle="round,pad=0.05", fc="white", ec="black", lw=1.2))
    ax.text(x0 + w + 0.55, 7.4, f"× {cfg.n_layer}\nblocks", fontsize=11, va="center", fontweight="bold")
    _box(ax, x0 + 0.3, 5.4, w - 0.6, 0.55, "LayerNorm ln_1", "#EEEEEE", fontsize=8)
    _box(ax, x0 + 0.3, 6.1, w - 0.6, 1.15,
         f"causal self-attention: {cfg.n_head} heads × {cfg.n_embd // cfg.n_head}\n"
         "q, k, v = c_attn(x);  softmax(q kᵀ/√d + mask) v;  c_proj", "#C6D8F0", fontsize=8)
    ax.text(x0 + w - 0.1, 7.4, "+ residual", fontsize=8, ha="right", color="0.35")
    _box(ax, x0 + 0.3, 7.65, w - 0.6, 0.55, "LayerNorm ln_2", "#EEEEEE", fontsize=8)
    _box(ax, x0 + 0.3, 8.35, w - 0.6, 1.0,
         f"MLP: {cfg.n_embd} → {4 * cfg.n_embd}, GELU, → {cfg.n_embd}", "#F4D6BC", fontsize=8)
    ax.text(x0 + w - 0.1, 9.48, "+ residual", fontsize=8, ha="right", color="0.35")
    _arrow(ax, cx, 9.95, cx, 10.4)
    _box(ax, x0, 10.4, w, 0.6, "final LayerNorm ln_f", "#EEEEEE")
    _arrow(ax, cx, 11.0, cx, 11.4)
    _box(ax, x0, 11.4, w, 0.9, f"lm_head: {cfg.n_embd} → {cfg.vocab_size}  (tied to wte)", "#E1D5E7")
    _arrow(ax, cx, 12.3, cx, 12.7)
    _box(ax, x0, 12.7, w, 0.8, f"logits (B, T, {cfg.vocab_size})  →  cross-entropy while training", "#EEEEEE")
    _arrow(ax, cx, 13.5, cx, 13.9)
    _box(ax, x0, 13.9, w, 0.9, "softmax · temperature · top-k · top-p  →  next character", "#FFF2CC")
    ax.annotate("", xy=(x0 - 0.3, 0.7), xytext=(x0 - 0.3, 14.35),
                arrowprops=dict(arrowstyle="-|>", color=RED, lw=1.2, connectionstyle="arc3,rad=0.25"))
    ax.text(0.05, 7.5, "append and\nrepeat\n(KV cache)", color=RED, fontsize=9, va="center")
    ax.text(11.95, 15.2, "built in notebook", fontsize=8, ha="right", color=PURPLE, style="italic")
    side = [("01 bigram", 1.6), ("02 one head", 6.3), ("03 multi-head", 6.9), ("04 blocks, GPT", 9.0),
            ("05 generation", 14.3)]
    for label, y in side:
        ax.text(11.95, y, label, fontsize=8, ha="right", va="center", color=PURPLE)
    return _save(fig, path)


# --- notes/04: training ----------------------------------------------------------------------------


def lr_schedule(path: Path) -> Path:
    plt = _plt()
    from gpt_from_scratch.train import get_lr, get_preset

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    for name, color in (("shakespeare-char", BLUE), ("cpu-tiny", ORANGE)):
        cfg = get_preset(name)
        its = list(range(cfg.max_iters + 1))
        lrs = [get_lr(i, cfg) for i in its]
        a1.plot(its, lrs, color=color, label=f"{name}: {cfg.learning_rate:g} → {cfg.min_lr:g}, "
                f"warmup {cfg.warmup_iters}, {cfg.max_iters} iters")
        zoom = its[: 3 * cfg.warmup_iters]
        a2.plot(zoom, [lrs[i] for i in zoom], color=color)
        a2.axvline(cfg.warmup_iters, color=color, ls=":", lw=0.8)
    a1.set_xlabel("iteration")
    a1.set_ylabel("learning rate")
    a1.set_title("train.get_lr: linear warmup, then cosine decay to min_lr")
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    a2.set_xlabel("iteration")
    a2.set_ylabel("learning rate")
    a2.set_title("the first 300 iterations (warmup)")
    a2.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def precision_formats(path: Path) -> Path:
    plt = _plt()
    from matplotlib.patches import Rectangle

    formats = [
        ("float32", 8, 23, "max ≈ 3.4e38, ~7 digits"),
        ("bfloat16", 8, 7, "max ≈ 3.4e38, ~2-3 digits: same range as float32"),
        ("float16", 5, 10, "max = 65504, ~3 digits: overflows, small gradients underflow: GradScaler"),
    ]
    fig, ax = plt.subplots(figsize=(10, 2.7))
    unit = 0.3
    for row, (name, e, m, note) in enumerate(formats):
        y = 2 - row
        x = 0.0
        for width, color, label in ((1, RED, "sign"), (e, GREEN, f"exponent {e}"), (m, BLUE, f"mantissa {m}")):
            ax.add_patch(Rectangle((x, y), width * unit, 0.7, fc=color, ec="white", lw=0.5))
            if width * unit > 0.8:
                ax.text(x + width * unit / 2, y + 0.35, label, ha="center", va="center", color="white", fontsize=8)
            x += width * unit
        ax.text(-0.2, y + 0.35, name, ha="right", va="center", fontsize=10, family="monospace")
        ax.text(x + 0.2, y + 0.35, note, va="center", fontsize=9)
    ax.set_xlim(-2.0, 32 * unit + 7.5)
    ax.set_ylim(-0.2, 3.0)
    ax.axis("off")
    ax.set_title("Bits per number: bfloat16 keeps float32's range; float16 keeps more precision but overflows")
    return _save(fig, path)


# --- notes/05: sampling and the KV cache -----------------------------------------------------------


def sampling(path: Path) -> Path:
    plt = _plt()
    from gpt_from_scratch.generate import filter_probs

    chars = ["e", " ", "a", "o", "i", "t", "h", "s", "n", "r", ",", "u"]
    logits = torch.tensor([[2.6, 2.3, 1.9, 1.6, 1.2, 1.0, 0.7, 0.4, 0.2, -0.1, -0.5, -0.9]])
    x = torch.arange(len(chars))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
    a = axes[0]
    for off, t, color in ((-0.27, 0.5, RED), (0.0, 1.0, BLUE), (0.27, 2.0, GREEN)):
        a.bar(x + off, filter_probs(logits, t)[0].numpy(), 0.27, color=color, label=f"temperature {t}")
    a.set_title("temperature divides the logits")
    a.legend(fontsize=8)
    for a, kw, title in ((axes[1], dict(top_k=4), "top_k = 4: keep the 4 most likely"),
                         (axes[2], dict(top_p=0.8), "top_p = 0.8: smallest set with ≥ 80 %")):
        base = filter_probs(logits, 1.0)[0]
        kept = filter_probs(logits, 1.0, **kw)[0]
        a.bar(x - 0.2, base.numpy(), 0.4, color=GREY, label="before (temperature 1)")
        a.bar(x + 0.2, kept.numpy(), 0.4, color=BLUE, label="after, renormalised")
        a.set_title(title)
        a.legend(fontsize=8)
    for a in axes:
        a.set_xticks(x, [_show(c) for c in chars], family="monospace")
        a.set_xlabel("next character")
    axes[0].set_ylabel("probability")
    fig.suptitle("generate.filter_probs on one fixed next-character distribution", y=1.02)
    fig.tight_layout()
    return _save(fig, path)


def kv_cache_window(path: Path) -> Path:
    plt = _plt()
    from matplotlib.patches import Rectangle

    from gpt_from_scratch.generate import window_start, window_stride

    block, prompt = 8, 3
    steps = list(range(prompt, prompt + 15))  # sequence length when predicting the next token
    n = steps[-1] + 1
    fig, ax = plt.subplots(figsize=(9.5, 6.2))
    prev = None
    for r, length in enumerate(steps):
        y = len(steps) - 1 - r
        start = window_start(length, prompt, block)
        refill = start != prev
        prev = start
        for i in range(length):
            if i < start:
                fc, txt, tc = "#F0F0F0", "", "black"
            else:
                fc = ORANGE if (refill or i == length - 1) else "#C6D8F0"
                txt, tc = str(i - start), "black"
            if i < prompt:
                ec, lw = "black", 1.2
            else:
                ec, lw = "0.6", 0.5
            ax.add_patch(Rectangle((i, y), 0.95, 0.9, fc=fc, ec=ec, lw=lw))
            ax.text(i + 0.47, y + 0.45, txt, ha="center", va="center", fontsize=8, color=tc)
        ax.add_patch(Rectangle((length, y), 0.95, 0.9, fc="white", ec=GREEN, lw=1.2, ls="--"))
        ax.text(length + 0.47, y + 0.45, "?", ha="center", va="center", color=GREEN, fontsize=9)
        ax.text(n + 0.6, y + 0.45, "re-fill cache" if refill else "append 1 token", va="center", fontsize=8,
                color=RED if refill else "0.35")
    ax.set_xlim(-0.3, n + 4.2)
    ax.set_ylim(-0.4, len(steps) + 0.3)
    ax.set_yticks([len(steps) - 1 - r + 0.45 for r in range(len(steps))], [f"step {r}" for r in range(len(steps))],
                  fontsize=8)
    ax.set_xticks([i + 0.47 for i in range(n)], [str(i) for i in range(n)], fontsize=8)
    ax.set_xlabel("token index in the sequence (bold outline: the prompt)")
    ax.set_title(f"The sliding window of generate.py: block_size = {block}, jumps of block_size // 4 = "
                 f"{window_stride(block)}\nnumbers = the position embedding each token is run with; orange = "
                 "computed this step", fontsize=10)
    for s in ("top", "right", "left"):
        ax.spines[s].set_visible(False)
    return _save(fig, path)


# --- the registry --------------------------------------------------------------------------------

FIGURES: dict[str, Callable[[Path], Path | None]] = {
    "architecture": architecture,
    "training_windows": training_windows,
    "causal_mask": causal_mask,
    "sqrt_d_scaling": sqrt_d_scaling,
    "attention_heatmap": attention_heatmap,
    "transformer_block": transformer_block,
    "lr_schedule": lr_schedule,
    "precision_formats": precision_formats,
    "sampling": sampling,
    "kv_cache_window": kv_cache_window,
}


def default_out_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "notes" / "figures"


def make_figures(out_dir: str | os.PathLike | None = None, only: list[str] | None = None) -> list[Path]:
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1337)
    written = []
    for name, fn in FIGURES.items():
        if only and name not in only:
            continue
        result = fn(out / f"{name}.png")
        if result is None:
            print(f"skipped {name}.png (needs checkpoints/cpu-tiny.pt)")
        else:
            print(f"wrote {result.name} ({result.stat().st_size // 1024} KB)")
            written.append(result)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/figures.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", help="output folder (default: notes/figures in this checkout)")
    p.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="make only these figures")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    args = p.parse_args(argv)
    if args.list:
        for name, fn in FIGURES.items():
            print(f"{name}.png: {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else name}")
        return 0
    make_figures(args.out, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
