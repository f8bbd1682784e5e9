"""The whole GPT in one file: the course's model, training recipe and sampler in plain PyTorch, to be read
top to bottom in the order of the course. tests/test_one_file.py holds it equal to the gpt_from_scratch
package (same weights, logits, training losses and sampled tokens for the same seed), and the package
reads its checkpoint: `python -m gpt_from_scratch sample --checkpoint out/best.pt`.

    python gpt.py                  # the flagship: 6 layers, 6 heads, 384 wide (a GPU run)
    python gpt.py --quick          # a small GPT, under a minute on a CPU
    python gpt.py --quick --max_iters=2000 --top_k=10   # any setting below, as --name=value
"""

from __future__ import annotations  # the type hints below on Python 3.9

import hashlib
import math
import os
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

# --- 1. settings: the package's shakespeare-char preset; override any as --name=value ----------
# the model
n_layer = 6  # transformer blocks
n_head = 6  # attention heads per block
n_embd = 384  # width of the residual stream (C)
block_size = 256  # context length in characters (T)
dropout = 0.2  # probability of zeroing an activation while training
# training
batch_size = 64  # windows per step (B)
max_iters = 5000  # optimizer steps
learning_rate = 1e-3  # the peak, reached after warmup
min_lr = 1e-4  # where the cosine decay ends
warmup_iters = 100
weight_decay = 0.1  # on matrices only
beta1, beta2 = 0.9, 0.99  # AdamW's averaging of the gradient and of its square
grad_clip = 1.0  # the largest gradient norm a step may use
eval_interval = 250  # steps between evaluations
eval_iters = 200  # batches averaged per evaluation
seed = 1337
out_dir = "out"  # where best.pt goes ("" saves nothing)
device = "cuda" if torch.cuda.is_available() else "cpu"
threads = 0  # CPU threads (0: PyTorch's choice)
# sampling at the end
max_new_tokens = 500
temperature = 0.8  # below 1 sharpens the distribution, above 1 flattens it
top_k = 0  # sample only from the k most likely characters (0: from all of them)

SETTINGS = {k: v for k, v in dict(globals()).items() if k[0].islower() and isinstance(v, (int, float, str))}
# --quick: notebook 04's quick mode, a small GPT for a CPU, on one thread (more would wait for each other)
QUICK = dict(n_layer=2, n_head=4, n_embd=64, block_size=32, dropout=0.0, batch_size=32, max_iters=500,
             learning_rate=6e-3, min_lr=6e-4, warmup_iters=20, eval_interval=100, eval_iters=20, max_new_tokens=300,
             threads=1)

DATA_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
DATA_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


# --- 2. the text, the characters, the split ------------------------------------------------------
def load_text() -> str:
    """Tiny Shakespeare: $GPT_FROM_SCRATCH_DATA, else data/tinyshakespeare.txt beside this file, downloaded once."""
    env = os.environ.get("GPT_FROM_SCRATCH_DATA")
    path = Path(env) if env else Path(__file__).resolve().parent / "data" / "tinyshakespeare.txt"
    if env and not path.is_file():
        fail(f"GPT_FROM_SCRATCH_DATA={env} is not a file; point it at tinyshakespeare.txt")
    if not path.is_file():
        print(f"downloading Tiny Shakespeare to {path}", file=sys.stderr)
        try:
            with urllib.request.urlopen(DATA_URL, timeout=10) as response:
                raw = response.read()
        except OSError as e:  # no network, a timeout, an HTTP error
            fail(f"cannot download {DATA_URL} ({e}); connect to the internet, "
                 "or set GPT_FROM_SCRATCH_DATA=/path/to/tinyshakespeare.txt")
        if hashlib.sha256(raw).hexdigest() != DATA_SHA256:
            fail(f"the file downloaded from {DATA_URL} is not Tiny Shakespeare (sha256 differs); try again later")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".part").write_bytes(raw)
        os.replace(path.with_suffix(".part"), path)  # a whole file or none
    return path.read_text(encoding="utf-8")


def prepare(text: str) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The vocabulary (every character of the text, sorted: 65), and the text as ids, split 90/10."""
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)  # (N,)
    n = int(0.9 * len(data))
    return chars, data[:n], data[n:]  # contiguous: the last 10 % is text the model never trains on


def get_batch(data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator, device="cpu"):
    """batch_size random windows x (B, T) and their targets y (B, T): x shifted left by one character."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,) window starts
    x = torch.stack([data[i : i + block_size] for i in ix])  # (B, T)
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])  # (B, T): the next character
    return x.to(device), y.to(device)


# --- 3. the model: GPT-2's layout without biases (nanoGPT's shakespeare-char) ----------------------
class CausalSelfAttention(nn.Module):
    """n_head heads side by side: each position mixes the values of the positions up to itself."""

    def __init__(self, n_embd: int, n_head: int, dropout: float):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)  # queries, keys and values of all heads at once
        self.c_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C): the heads side by side
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        # softmax(q k^T / sqrt(hs)) with the future masked out, times v: one fused kernel computes it
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): the heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Each position on its own: widen to 4C, GELU, back to C."""

    def __init__(self, n_embd: int, dropout: float):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=False)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))  # (B, T, 4C) inside, (B, T, C) out


class Block(nn.Module):
    """Communication (attention), then computation (MLP), each LayerNorm'd and added to the residual stream."""

    def __init__(self, n_embd: int, n_head: int, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=False)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.ln_2 = nn.LayerNorm(n_embd, bias=False)
        self.mlp = MLP(n_embd, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


class GPT(nn.Module):
    """Token and position embeddings, n_layer blocks, a final LayerNorm, and one logit per character."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int, dropout: float):
        super().__init__()
        # the package's GPTConfig fields, saved in the checkpoint so that the package can rebuild this model
        self.config = dict(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                           n_embd=n_embd, dropout=dropout, bias=False)
        self.block_size = block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),  # what each character is
            wpe=nn.Embedding(block_size, n_embd),  # where it is
            drop=nn.Dropout(dropout),
            h=nn.ModuleList([Block(n_embd, n_head, dropout) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd, bias=False),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # one matrix: characters to vectors and back
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: what writes into the residual stream starts smaller,
            if name.endswith("c_proj.weight"):  # so the stream's variance does not grow with depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """N(0, 0.02) weights: the first predictions are nearly uniform, a loss of ln(65) = 4.17."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, C) + (T, C) -> (B, T, C)
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)  # (B, T, C)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, vocab_size)
        loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
        return logits, loss


# --- 4. training: AdamW, warmup then cosine decay, clipping, evaluation ---------------------------
def get_lr(it: int, cfg: SimpleNamespace) -> float:
    """Linear warmup to learning_rate, then half a cosine down to min_lr at max_iters."""
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    if it >= cfg.max_iters:
        return cfg.min_lr
    ratio = (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters)  # 0 -> 1
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.learning_rate - cfg.min_lr)


@torch.no_grad()
def estimate_loss(model: GPT, splits: dict, cfg: SimpleNamespace) -> dict:
    """Mean loss of eval_iters random batches per split, dropout off (its own generator: no effect on training)."""
    model.eval()
    out = {}
    for name, data in splits.items():
        gen = torch.Generator().manual_seed(cfg.seed + 10_000)  # the same batches at every evaluation
        losses = [model(*get_batch(data, cfg.batch_size, cfg.block_size, gen, cfg.device))[1].item()
                  for _ in range(cfg.eval_iters)]
        out[name] = sum(losses) / len(losses)
    model.train()
    return out


def save_checkpoint(path: Path, model: GPT, chars: list[str], **extra) -> None:
    """The package's .pt format: plain tensors and data, so gfs.load_checkpoint can read it safely."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(format="gpt-from-scratch/1", model_type="gpt", config=model.config, model=model.state_dict(),
                    tokenizer=dict(type="char", chars=chars), **extra), path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)  # a whole file or none


def train(model: GPT, train_data: torch.Tensor, val_data: torch.Tensor, cfg: SimpleNamespace,
          chars: list[str] | None = None) -> list[float]:
    """Train for max_iters steps, evaluating every eval_interval (the best to out_dir/best.pt); each step's loss."""
    decay = [p for p in model.parameters() if p.dim() >= 2]  # weight matrices and embeddings
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # LayerNorm gains
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    batch_gen = torch.Generator().manual_seed(cfg.seed)  # the training batches' random numbers
    torch.manual_seed(cfg.seed)  # the dropout masks'
    step_losses, best_val, t0 = [], float("inf"), time.time()
    model.train()
    for it in range(cfg.max_iters + 1):
        if it % cfg.eval_interval == 0 or it == cfg.max_iters:
            losses = estimate_loss(model, {"train": train_data, "val": val_data}, cfg)
            print(f"step {it}: train {losses['train']:.4f}, val {losses['val']:.4f} ({time.time() - t0:.0f} s)")
            if losses["val"] < best_val and cfg.out_dir and chars is not None:
                best_val = losses["val"]
                save_checkpoint(Path(cfg.out_dir) / "best.pt", model, chars, iter_num=it, best_val_loss=best_val)
        if it == cfg.max_iters:
            break
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it, cfg)
        x, y = get_batch(train_data, cfg.batch_size, cfg.block_size, batch_gen, cfg.device)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)  # a rare huge gradient stays tame
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_losses.append(loss.item())
    return step_losses


# --- 5. sampling: temperature and top-k ------------------------------------------------------------
@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """idx (B, T) -> (B, T + max_new_tokens): the prompt, then sampled characters (top_k 0: from all)."""
    was_training = model.training
    model.eval()  # dropout off
    prompt_length, block, stride = idx.size(1), model.block_size, max(1, model.block_size // 4)
    for _ in range(max_new_tokens):
        # The model knows positions 0..block_size-1. Once the text is longer, its window jumps forward a
        # quarter block at a time, as the package's does (so that its KV cache is refilled only then).
        start = max(0, prompt_length - block)
        overflow = idx.size(1) - start - block
        if overflow > 0:
            start += stride * math.ceil(overflow / stride)
        logits = model(idx[:, start:])[0][:, -1, :] / temperature  # (B, vocab_size): the next character's
        if top_k and top_k < logits.size(-1):
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1): the k-th largest logit
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = F.softmax(logits, dim=-1)  # (B, vocab_size)
        # One uniform number per row picks where it falls in the cumulative distribution (the package's way).
        cdf = probs.cumsum(dim=-1)  # (B, vocab_size)
        u = torch.rand((idx.size(0), 1), generator=generator).to(probs.device)  # (B, 1)
        next_id = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)  # (B, 1)
        # never a character of probability 0, even if rounding puts u * cdf at the very top
        last_possible = probs.size(-1) - 1 - (probs.flip(-1) > 0).int().argmax(dim=-1, keepdim=True)
        idx = torch.cat([idx, torch.minimum(next_id, last_possible)], dim=1)  # (B, T + 1)
    model.train(was_training)
    return idx


# --- 6. the run ------------------------------------------------------------------------------------
def fail(message: str) -> None:
    """Known bad input: one line on stderr and exit status 2, no traceback."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_settings(args: list[str]) -> SimpleNamespace:
    """The settings above, with --quick and then every --name=value applied (nanoGPT's style)."""
    cfg = dict(SETTINGS, **(QUICK if "--quick" in args else {}))
    for arg in args:
        if arg == "--quick":
            continue
        name, eq, text = arg[2:].partition("=")
        if not arg.startswith("--") or not eq or name not in SETTINGS:
            fail(f"unknown option {arg!r}; use --quick or --name=value with a name from: {', '.join(SETTINGS)}")
        try:
            cfg[name] = type(SETTINGS[name])(text)  # "6" -> 6, "3e-4" -> 0.0003, "out2" -> "out2"
        except ValueError:
            fail(f"--{name} takes {'a whole number' if type(SETTINGS[name]) is int else 'a number'}, got {text!r}")
    return SimpleNamespace(**cfg)


def main(args: list[str]) -> None:
    cfg = parse_settings(args)
    chars, train_data, val_data = prepare(load_text())
    torch.backends.cuda.matmul.allow_tf32 = True  # faster float32 matrix products on recent GPUs
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = GPT(len(chars), cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.dropout).to(cfg.device)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters on {cfg.device}; "
          f"{len(train_data):,} training and {len(val_data):,} validation characters")
    train(model, train_data, val_data, cfg, chars)
    if cfg.out_dir:
        print(f"saved the best model to {Path(cfg.out_dir) / 'best.pt'}; sampling from the last one:")
    generator = torch.Generator().manual_seed(cfg.seed)
    prompt = torch.tensor([[chars.index("\n") if "\n" in chars else 0]], device=cfg.device)  # (1, 1): a new line
    out = generate(model, prompt, cfg.max_new_tokens, cfg.temperature, cfg.top_k, generator)
    print("".join(chars[i] for i in out[0].tolist()))


if __name__ == "__main__":
    main(sys.argv[1:])
