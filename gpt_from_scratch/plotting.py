"""Figures the notebooks, the trainer and the notes share."""

from __future__ import annotations

import math
import os
import sys
from typing import Sequence


def char_label(ch: str) -> str:
    """A readable tick label for one character: space as '␣', newline as '\\n'."""
    return "␣" if ch == " " else repr(ch)[1:-1]


def _plt():
    import matplotlib

    if not os.environ.get("MPLBACKEND") and "ipykernel" not in sys.modules:
        matplotlib.use("Agg")  # no display needed when writing files from the CLI
    import matplotlib.pyplot as plt

    return plt


def plot_losses(
    history: Sequence[dict],
    path: str | os.PathLike | None = None,
    ax=None,
    title: str = "Training and validation loss",
    step_losses: Sequence[float] | None = None,
    baseline: float | None = None,
    mark_overfitting: bool = True,
    unit: str = "character",
):
    """Loss curves from a trainer history (dicts with iter, train_loss, val_loss).

    unit is what one loss is the mean over: "character", or "token" for BPE
    (a tokenizer's `unit`).

    With mark_overfitting, a dotted line marks the iteration of the best val
    loss: after it the model memorises the training text instead of learning.
    """
    plt = _plt()
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(7, 4))
    if step_losses:
        ax.plot(range(len(step_losses)), step_losses, color="0.8", lw=0.8, label="train (each step)")
    iters = [h["iter"] for h in history]
    ax.plot(iters, [h["train_loss"] for h in history], "o-", ms=3, label="train")
    ax.plot(iters, [h["val_loss"] for h in history], "o-", ms=3, label="val")
    if baseline is not None:
        ax.axhline(baseline, color="k", ls="--", lw=0.8, label=f"reference {baseline:.2f}")
    if mark_overfitting and len(history) > 2:
        best = min(history, key=lambda h: h["val_loss"])
        if best is not history[-1]:
            ax.axvline(best["iter"], color="tab:red", ls=":", lw=1,
                       label=f"best val {best['val_loss']:.3f} @ {best['iter']}")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"cross-entropy loss (nats per {unit})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if own:
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=100)
            plt.close(fig)
    return ax


def plot_loss_ladder(
    rungs: Sequence[tuple[str, float]], ax=None, title: str = "The loss ladder", reference: float | None = None,
    unit: str = "character",
):
    """Horizontal bars: one val loss per model, so each step's gain is visible."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(rungs) + 1.5))
    names = [r[0] for r in rungs]
    losses = [r[1] for r in rungs]
    bars = ax.barh(names, losses, color="tab:blue")
    ax.invert_yaxis()
    for b, v in zip(bars, losses):
        ax.text(v + 0.02, b.get_y() + b.get_height() / 2, f"{v:.3f}", va="center")
    if reference is not None:
        ax.axvline(reference, color="k", ls="--", lw=0.8, label=f"uniform guess ln 65 = {reference:.2f}")
        ax.legend(loc="lower right")
    ax.set_xlim(0, max(losses + ([reference] if reference else [])) * 1.15)
    ax.set_xlabel(f"validation loss (nats per {unit})")
    ax.set_title(title)
    return ax


def plot_attention(weights, tokens: Sequence[str], ax=None, title: str = "Attention weights"):
    """Heat map of a (T, T) attention matrix: row = query position, column = key position."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    w = weights.detach().cpu().numpy() if hasattr(weights, "detach") else weights
    im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0)
    labels = [char_label(t) for t in tokens]
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("key position (attended to)")
    ax.set_ylabel("query position (attending)")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label="attention weight")
    return ax


def plot_distribution(
    probs, tokenizer, ax=None, top: int = 20, title: str = "Next-character distribution", kept=None
):
    """Bar chart of the `top` most likely next characters; greyed bars were cut."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    p = probs.detach().float().cpu()
    order = p.argsort(descending=True)[:top]
    labels = [char_label(tokenizer.decode([int(i)])) for i in order]
    colors = ["tab:blue" if kept is None or bool(kept[int(i)]) else "0.75" for i in order]
    ax.bar(range(len(order)), p[order].numpy(), color=colors)
    ax.set_xticks(range(len(order)), labels)
    ax.set_xlabel("next character")
    ax.set_ylabel("probability")
    ax.set_title(title)
    return ax


def entropy_bits(probs) -> float:
    p = [float(x) for x in probs if float(x) > 0]
    return -sum(x * math.log2(x) for x in p)
