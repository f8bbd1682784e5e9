"""`python -m gpt_from_scratch train|sample|eval|chat|export`.

Bad arguments and bad input end with exit code 2 and one line on stderr that
starts with `error:`, never a traceback. Only the package's own error classes
(and argparse's) count as bad input: any other exception is a bug and shows
its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from . import __version__
from .bpe import TokenizerError
from .chat import ChatError
from .checkpoint import TOKENIZER_KINDS, CheckpointError
from .data import DataError
from .hub import GPT2_REPOS
from .loading import is_pretrained_source, load_pretrained
from .model import ACTIVATIONS, NORMS, POSITIONS, GPTConfig
from .train import PRESETS, ConfigError, TrainConfig
from .weight_maps import WeightMapError

PROG = "gpt_from_scratch"
DTYPES = ("auto", "float32", "bfloat16", "float16")  # train.resolve_dtype's names (it keeps no list of them)
TOKENIZERS = tuple(TOKENIZER_KINDS)  # "char", "bpe"
GPT2_NAMES = tuple(GPT2_REPOS)
DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
# The errors that mean "the user's input is wrong": one `error:` line and exit code 2.
USER_ERRORS = (CheckpointError, ChatError, ConfigError, DataError, TokenizerError, WeightMapError)


class CLIError(Exception):
    """A problem with the user's input: printed as one `error:` line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors, as one line
        # self.prog is "gpt_from_scratch" or "gpt_from_scratch sample": name the subcommand once
        command = " ".join(self.prog.split()[1:])
        hint = f"python -m {PROG} {command} --help".replace("  ", " ")
        sys.stderr.write(f"error: {message} (see `{hint}`)\n")
        raise SystemExit(2)


# --- argument types: argparse prefixes their messages with the flag ("argument --top-k: ...") -----


def _whole(minimum: int = 1):
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {s!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v

    return parse


def _number(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {s!r}") from None


def _device(s: str) -> str:
    if not DEVICE_RE.fullmatch(s.strip().lower()):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda, cuda:N or mps, got {s!r}")
    return s.strip().lower()


def _epilog(*examples: str) -> str:
    return "examples:\n" + "\n".join(f"  python -m {PROG} {e}" for e in examples)


def _subparser(sub, name: str, help: str, examples: tuple[str, ...]) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                          epilog=_epilog(*examples), formatter_class=argparse.RawDescriptionHelpFormatter)


SOURCES_HELP = (f"a .pt file, a GPT-2 name ({', '.join(GPT2_NAMES)}), a Hub name (HuggingFaceTB/SmolLM2-135M-Instruct), "
                "a Hugging Face folder (config.json, model.safetensors, tokenizer files) or a .gguf file")
CHECKPOINT_HELP = SOURCES_HELP + "; default: the shipped checkpoint"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per command, every flag with its help."""
    p = _Parser(prog=PROG, description="Train, sample and evaluate the gpt-from-scratch models.",
                epilog=_epilog("sample --prompt 'ROMEO:'", "train --preset cpu-tiny", "eval"),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}",
                   help="print the package's version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    _add_sample(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_chat(sub)
    _add_export(sub)
    return p


def _add_sample(sub) -> None:
    s = _subparser(sub, "sample", "generate text from a checkpoint (the shipped one by default)", (
        "sample --prompt 'ROMEO:' --max-new-tokens 200 --seed 1",
        "sample --checkpoint out-cpu-tiny/best.pt --temperature 0.6 --top-k 20",
        "sample --checkpoint gpt2 --prompt 'Hello, my name is' --top-p 0.9",
        "sample --interactive < prompts.txt",
        "sample --max-new-tokens 10000 --output long.txt"))
    s.add_argument("--checkpoint", metavar="PATH_OR_NAME", help=CHECKPOINT_HELP)
    s.add_argument("--device", type=_device, default="auto", metavar="NAME", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    g = s.add_argument_group("what to generate")
    g.add_argument("--prompt", default="", metavar="TEXT", help="text to continue; empty starts from a newline")
    g.add_argument("--max-new-tokens", type=_whole(0), default=500, metavar="N", help="tokens to generate (default %(default)s)")
    g.add_argument("--num-samples", type=_whole(1), default=1, metavar="N",
                   help="independent continuations of the prompt, printed one after another (default 1)")
    g.add_argument("--interactive", action="store_true", help="read prompts line by line from stdin until its end")
    g.add_argument("--output", metavar="FILE", help="also write the text to this file (a long run shows progress; Ctrl-C keeps it)")
    g = s.add_argument_group("how to sample")
    g.add_argument("--temperature", type=_number, default=0.8, metavar="T",
                   help="0 is greedy; higher is more adventurous (default %(default)s)")
    g.add_argument("--top-k", type=int, default=None, metavar="K", help="sample only from the k most likely tokens")
    g.add_argument("--top-p", type=_number, default=None, metavar="P",
                   help="sample only from the smallest set of tokens holding this much probability")
    g.add_argument("--seed", type=int, default=None, metavar="N", help="make the output reproducible (default: a random seed)")
    g.add_argument("--no-kv-cache", action="store_true",
                   help="recompute the whole context at every step (slower; the same tokens)")
    g.add_argument("--threads", type=_whole(1), metavar="N",
                   help="CPU threads (default 1: the fastest for one token at a time, up to GPT-2's size at least; "
                        "see benchmarks/README.md)")


# `train` flags, by group: (flag, TrainConfig or GPTConfig field, argparse keywords, help).
# A flag left out keeps the preset's value; a model field changes the preset's GPTConfig.
_TRAIN_GROUPS = {
    "what to train": [
        ("--data", "data", {"metavar": "FILE"}, "a UTF-8 text file to train on (default: Tiny Shakespeare)"),
        ("--out-dir", "out_dir", {"metavar": "DIR"}, "where to write ckpt.pt, best.pt, log.csv and loss.png (default: out-PRESET)"),
        ("--init-from", "init_from", {"metavar": "CHECKPOINT"}, "fine-tune: start from this checkpoint's weights and tokenizer"),
    ],
    "the model (default: the preset's; with --init-from, the checkpoint's)": [
        ("--n-layer", "n_layer", {"type": _whole(1), "metavar": "N"}, "transformer blocks"),
        ("--n-head", "n_head", {"type": _whole(1), "metavar": "N"}, "attention heads per block (n-embd must divide by it)"),
        ("--n-embd", "n_embd", {"type": _whole(1), "metavar": "N"}, "width of the residual stream"),
        ("--n-kv-head", "n_kv_head", {"type": _whole(1), "metavar": "N"},
         "key/value heads, a divisor of n-head: fewer than n-head is grouped-query attention"),
        ("--mlp-hidden", "mlp_hidden", {"type": _whole(1), "metavar": "N"}, "the MLP's hidden width (default 4 x n-embd)"),
        ("--norm", "norm", {"choices": NORMS}, "the normalisation layers"),
        ("--activation", "activation", {"choices": ACTIVATIONS}, "the MLP's activation"),
        ("--pos", "pos", {"choices": POSITIONS}, "position information: learned embeddings or rotary (RoPE)"),
        ("--qk-norm", "qk_norm", {"action": argparse.BooleanOptionalAction, "default": None},
         "RMS-normalise each head's queries and keys before attention"),
        ("--logit-softcap", "logit_softcap", {"type": _number, "metavar": "C"},
         "cap the logits smoothly at +-C: C * tanh(logits / C)"),
        ("--zero-init-proj", "zero_init_proj", {"action": argparse.BooleanOptionalAction, "default": None},
         "start the residual projections (c_proj) at zero"),
        ("--tie-weights", "tie_weights", {"action": argparse.BooleanOptionalAction, "default": None},
         "share the token embedding with the output layer (--no-tie-weights: an untied head)"),
        ("--dropout", "dropout", {"type": _number, "metavar": "X"}, "dropout probability in [0, 1); may change with --init-from"),
        ("--block-size", "block_size", {"type": _whole(1), "metavar": "N"},
         "context length in tokens; with --init-from, the training window (at most the model's context)"),
        ("--tokenizer", "tokenizer", {"choices": TOKENIZERS},
         "characters (default) or byte-level BPE trained on the training split; not with --init-from"),
        ("--vocab-size", "bpe_vocab_size", {"type": _whole(257), "metavar": "N"}, "the BPE vocabulary size (default 512)"),
    ],
    "optimisation": [
        ("--max-iters", "max_iters", {"type": _whole(0), "metavar": "N"}, "optimizer steps"),
        ("--batch-size", "batch_size", {"type": _whole(1), "metavar": "N"}, "sequences per micro-step"),
        ("--grad-accum", "grad_accum", {"type": _whole(1), "metavar": "N"}, "micro-steps per optimizer step"),
        ("--learning-rate", "learning_rate", {"type": _number, "metavar": "X"}, "the peak learning rate, after warm-up"),
        ("--min-lr", "min_lr", {"type": _number, "metavar": "X"}, "the learning rate at the end of the cosine decay"),
        ("--warmup-iters", "warmup_iters", {"type": _whole(0), "metavar": "N"}, "steps of linear warm-up"),
        ("--lr-decay-iters", "lr_decay_iters", {"type": _whole(1), "metavar": "N"}, "steps of cosine decay (default: max-iters)"),
        ("--weight-decay", "weight_decay", {"type": _number, "metavar": "X"}, "AdamW's weight decay, on matrices only"),
        ("--optimizer", "optimizer", {"choices": ("adamw", "muon")},
         "adamw (default), or muon for the blocks' matrices (AdamW for the rest)"),
        ("--muon-lr", "muon_lr", {"type": _number, "metavar": "X"}, "Muon's peak learning rate (default 0.02)"),
        ("--max-minutes", "max_minutes", {"type": _number, "metavar": "M"},
         "stop after M minutes of training (evaluation excluded); the schedule stretches to fit"),
        ("--budget-clock", "budget_clock", {"choices": ("wall", "cpu")},
         "what --max-minutes counts: wall clock (default), or this process's CPU time (fairer on a busy machine)"),
        ("--gradient-checkpointing", "gradient_checkpointing", {"action": "store_true", "default": None},
         "recompute activations in the backward pass: less memory, slower"),
    ],
    "evaluation": [
        ("--eval-interval", "eval_interval", {"type": _whole(1), "metavar": "N"},
         "steps between evaluations (and checkpoints)"),
        ("--eval-iters", "eval_iters", {"type": _whole(1), "metavar": "N"}, "batches averaged per loss estimate"),
    ],
    "system": [
        ("--device", "device", {"type": _device, "metavar": "NAME"}, "auto, cpu, cuda, cuda:N or mps (default auto)"),
        ("--dtype", "dtype", {"choices": DTYPES},
         "auto is bfloat16 on recent GPUs, float16 on older ones, float32 on CPU and MPS"),
        ("--compile", "compile", {"action": argparse.BooleanOptionalAction, "default": None},
         "torch.compile the model (off by default; one line says so where it cannot)"),
        ("--seed", "seed", {"type": int, "metavar": "N"}, "seed of the weights' initialisation and the batches"),
    ],
}
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} | {f.name for f in dataclasses.fields(GPTConfig)}
_TRAIN_FLAGS = {field: flag for flags in _TRAIN_GROUPS.values() for flag, field, _, _ in flags}  # bpe_vocab_size: --vocab-size
_TRAIN_FIELDS = tuple(_TRAIN_FLAGS)
# Flags that set the model's shape, which a fine-tuned checkpoint decides: GPTConfig's fields, but not
# dropout, and not block_size, which with --init-from sets the training window (TrainConfig.train_window).
_MODEL_FLAGS = {f.name for f in dataclasses.fields(GPTConfig)} - {"dropout", "block_size"}
assert set(_TRAIN_FIELDS) <= _CONFIG_FIELDS, set(_TRAIN_FIELDS) - _CONFIG_FIELDS


def _add_train(sub) -> None:
    t = _subparser(sub, "train", "train a model; writes ckpt.pt, best.pt, log.csv and loss.png", (
        "train --preset cpu-tiny",
        "train --preset cpu-tiny --norm rmsnorm --activation swiglu --pos rope --n-kv-head 2",
        "train --preset cpu-tiny --tokenizer bpe --vocab-size 512",
        "train --preset cpu-tiny --resume",
        "train --init-from checkpoints/cpu-tiny.pt --data my_text.txt --out-dir out-mine",
        "train --preset shakespeare-char --device cuda:1 --compile"))
    t.add_argument("--preset", choices=tuple(PRESETS),
                   help="a named recipe: model, optimiser and evaluation settings that the flags below change "
                        "(default shakespeare-char; finetune with --init-from)")
    t.add_argument("--resume", action="store_true", help="continue from DIR/ckpt.pt (DIR: --out-dir)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    for title, flags in _TRAIN_GROUPS.items():
        g = t.add_argument_group(title)
        for flag, field, kwargs, help in flags:
            g.add_argument(flag, dest=field, help=help, **kwargs)


def _add_eval(sub) -> None:
    e = _subparser(sub, "eval", "mean loss over a whole split, in non-overlapping windows", (
        "eval", "eval --checkpoint out-cpu-tiny/best.pt --split train", "eval --checkpoint gpt2 --data my_text.txt"))
    e.add_argument("--checkpoint", metavar="PATH_OR_NAME", help=CHECKPOINT_HELP)
    e.add_argument("--data", metavar="FILE", help="a UTF-8 text file (default: Tiny Shakespeare)")
    e.add_argument("--split", choices=("val", "train"), default="val",
                   help="which part of the text: the checkpoint's own split fraction (default val)")
    e.add_argument("--device", type=_device, default="auto", metavar="NAME", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    e.add_argument("--batch-size", type=_whole(1), default=32, metavar="N", help="windows per forward pass (default 32)")


def _add_export(sub) -> None:
    x = _subparser(sub, "export", "write a small, weights-only copy of a checkpoint for sharing", (
        "export --checkpoint out-cpu-tiny/best.pt --out cpu-tiny.pt --half",))
    x.add_argument("--checkpoint", required=True, metavar="PATH", help="a training checkpoint, e.g. out-cpu-tiny/best.pt")
    x.add_argument("--out", required=True, metavar="FILE", help="the file to write (with --format hf: the folder)")
    x.add_argument("--half", action="store_true", help="store the weights in float16 (half the size)")
    x.add_argument("--format", choices=("pt", "hf"), default="pt",
                   help="pt: our own format (default); hf: a Hugging Face folder that transformers loads")


def _add_chat(sub) -> None:
    c = _subparser(sub, "chat", "chat with a chat model (e.g. SmolLM2-Instruct), one user turn per line of input", (
        "chat --checkpoint HuggingFaceTB/SmolLM2-135M-Instruct",
        "chat --checkpoint SmolLM2-135M-Instruct.Q4_1.gguf --temperature 0 < questions.txt"))
    c.add_argument("--checkpoint", required=True, metavar="PATH_OR_NAME", help=SOURCES_HELP)
    c.add_argument("--device", type=_device, default="auto", metavar="NAME", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    c.add_argument("--system", metavar="TEXT", help="the system prompt (default: the model's own, if its template has one)")
    c.add_argument("--max-new-tokens", type=_whole(1), default=256, metavar="N", help="the longest reply, in tokens (default 256)")
    c.add_argument("--temperature", type=_number, default=0.7, metavar="T", help="0 is greedy (default 0.7)")
    c.add_argument("--top-k", type=_whole(1), default=None, metavar="K", help="sample only from the k most likely tokens")
    c.add_argument("--top-p", type=_number, default=None, metavar="P",
                   help="sample only from the smallest set of tokens holding this much probability")
    c.add_argument("--seed", type=int, default=None, metavar="N", help="make the replies reproducible")


# --- loading a model --------------------------------------------------------------


def load_for_cli(checkpoint: str | None, device) -> tuple:
    """(model, tokenizer, description): a .pt file, the shipped checkpoint, or a pretrained model (loading.py)."""
    folder = Path(checkpoint or "").expanduser()
    if checkpoint and (folder / "best.pt").is_file() and not (folder / "config.json").is_file():
        raise CLIError(f"--checkpoint {checkpoint} is a training run's folder; pass a file in it, "
                       f"such as {folder / 'best.pt'}")
    if checkpoint is not None and is_pretrained_source(checkpoint):
        model, tokenizer = load_pretrained(checkpoint, device)
        where = f"OpenAI's {checkpoint}" if checkpoint in GPT2_NAMES else checkpoint
        return model, tokenizer, where
    from .checkpoint import load_checkpoint, shipped_checkpoint_path

    path = checkpoint or shipped_checkpoint_path()
    model, tokenizer = load_checkpoint(path, device=device)
    return model, tokenizer, str(path)


def _get_device(name: str):
    from .device import get_device

    try:
        return get_device(name, verbose=False)  # stderr holds only notes and errors
    except ValueError as e:  # a device this machine does not have
        raise CLIError(str(e)) from None


# --- sample ---------------------------------------------------------------------


# One CPU thread unless --threads says otherwise, at every model size. Measured with
# benchmarks/sample_threads.py (benchmarks/README.md) on the 2-core machine that builds the course: one
# token at a time is a chain of small operations, and 2 threads were never faster than 1, from cpu-tiny
# (0.8M) to GPT-2 124M's shape (28 against 21 tokens/s at best); when anything else ran on the machine,
# 2 threads were 5-9x slower (they wait for each other).
SAMPLE_THREADS = 1


def _check_sampling(args) -> None:
    from .generate import check_sampling_args

    try:
        check_sampling_args(args.temperature, args.top_k, args.top_p, args.max_new_tokens)
    except ValueError as e:
        raise CLIError(str(e)) from None


def _encode_prompt(tokenizer, prompt: str, block_size: int) -> list[int]:
    try:
        ids = tokenizer.encode(prompt or "\n")
    except ValueError as e:  # characters outside a character-level vocabulary
        raise CLIError(f"--prompt: {e}") from None
    if len(ids) > block_size:
        print(f"note: the prompt has {len(ids)} tokens; the model sees only the last {block_size}",
              file=sys.stderr)
    return ids


def _token_text(tokenizer):
    """A function from one token id to its text, for streaming. BPE tokens can end in the middle of a
    character's UTF-8 bytes, so bytes are decoded incrementally and a character appears once complete."""
    vocab = getattr(tokenizer, "vocab", None)
    if vocab is None:
        return lambda i: "" if i is None else tokenizer.decode([i])
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def text(i: int | None) -> str:
        if i is None:  # the end: what is left
            return decoder.decode(b"", final=True)
        piece = vocab.get(i)
        return decoder.decode(piece) if piece is not None else tokenizer.decode([i])

    return text


def _stream(model, tokenizer, idx, prompt: str, args, opts, outputs) -> int:
    """Write the prompt, then each new token as it is made, to every output. Returns characters written."""
    from .generate import iter_generate

    to_text = _token_text(tokenizer)
    written = 0
    bar = None
    if args.output and not sys.stdout.isatty():  # the text is not on screen: show progress instead
        from tqdm import tqdm

        bar = tqdm(total=args.max_new_tokens, desc="sample", unit="tok", file=sys.stderr)
    for out in outputs:
        out.write(prompt)
    try:
        for n, next_id in enumerate(iter_generate(model, idx, args.max_new_tokens, **opts), 1):
            piece = to_text(int(next_id[0]))
            written += len(piece)
            for out in outputs:
                out.write(piece)
                out.flush()
            if bar is not None:
                bar.update(1)
    finally:
        rest = to_text(None)  # the bytes of a character that the last token left unfinished
        for out in outputs:
            out.write(rest + "\n")
            out.flush()
        if bar is not None:
            bar.close()
    return written


def _open_outputs(args) -> list:
    outputs = [sys.stdout]
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            outputs.append(open(args.output, "w", encoding="utf-8"))
        except OSError as e:
            raise CLIError(f"--output: cannot write {args.output} ({e.strerror or e}); check the path") from None
    return outputs


def cmd_sample(args) -> int:
    import torch

    from .generate import generate

    _check_sampling(args)
    device = _get_device(args.device)
    model, tokenizer, where = load_for_cli(args.checkpoint, device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads or SAMPLE_THREADS)
    loaded = f"loaded {where} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, " \
             f"context {model.block_size})"
    seed = args.seed if args.seed is not None else int(torch.randint(0, 2**31 - 1, (1,)).item())
    generator = torch.Generator().manual_seed(seed)
    opts = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                use_kv_cache=not args.no_kv_cache, generator=generator)
    outputs = _open_outputs(args)
    announced = False

    def run(prompt: str) -> None:
        nonlocal announced
        prompt = prompt or "\n"
        ids = _encode_prompt(tokenizer, prompt, model.block_size)
        if not announced:  # once, and only when there is something to generate
            print(loaded, file=sys.stderr)
            announced = True
        idx = torch.tensor([ids] * args.num_samples, dtype=torch.long, device=device)
        if args.num_samples == 1:  # stream each token as it is made
            _stream(model, tokenizer, idx, prompt, args, opts, outputs)
            return
        rows = generate(model, idx, args.max_new_tokens, **opts)
        for i, row in enumerate(rows):
            for out in outputs:
                out.write(f"---------- sample {i + 1} of {args.num_samples} ----------\n")
                out.write(tokenizer.decode(row.tolist()) + "\n")
                out.flush()

    try:
        status = _sample_loop(run, args)
    except KeyboardInterrupt:
        if args.output:
            print(f"\nstopped: what was written so far is in {args.output}", file=sys.stderr)
        raise
    finally:
        for out in outputs[1:]:
            out.close()
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return status


def _sample_loop(run, args) -> int:
    if not args.interactive:
        run(args.prompt)
        return 0
    status = 0
    tty = sys.stdin.isatty()
    while True:
        if tty:
            print("prompt> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        try:
            run(line.rstrip("\r\n"))
        except CLIError as e:  # one bad prompt does not end the session
            print(f"error: {e}", file=sys.stderr)
            status = 2
    return status


# --- train ------------------------------------------------------------------------


def _is_gpu_recipe(cfg: TrainConfig) -> bool:
    """More than about 2M weights in the blocks: hours of training on a CPU (cpu-tiny has 0.8M)."""
    m = cfg.model
    return m is not None and 12 * m.n_layer * m.n_embd**2 > 2e6


def cmd_train(args) -> int:
    import torch

    from .data import load_text
    from .device import mps_available
    from .train import get_preset, train

    preset = args.preset or ("finetune" if args.init_from else "shakespeare-char")
    cfg = get_preset(preset)
    if args.init_from and cfg.model is not None:
        raise CLIError(f"--init-from takes the model from the checkpoint; use --preset finetune "
                       f"(the default), not --preset {preset}")
    changes = {name: getattr(args, name) for name in _TRAIN_FIELDS if getattr(args, name) is not None}
    for kept, what in ((_MODEL_FLAGS, "takes the model's shape"), ({"tokenizer", "bpe_vocab_size"}, "uses the tokenizer")):
        clash = sorted(set(changes) & kept) if args.init_from else []
        if clash:  # fine-tuning keeps the checkpoint's model and tokenizer
            raise CLIError(f"--init-from {what} from the checkpoint; drop {_TRAIN_FLAGS[clash[0]]}")
    if args.init_from and "block_size" in changes:  # the checkpoint's context stays; train on shorter windows
        changes["train_window"] = changes.pop("block_size")
    changes.setdefault("out_dir", f"out-{preset}")
    cfg = cfg.replace(**changes, resume=args.resume, progress=not args.no_progress)
    text = load_text(cfg.data)  # bad files end here, with one error line, before anything is printed
    gpu = torch.cuda.is_available() or mps_available()
    short = args.max_iters is not None or cfg.max_minutes is not None
    if _is_gpu_recipe(cfg) and cfg.device in ("auto", "cpu") and not gpu and not short:
        print(f"note: --preset {preset} is a GPU recipe and takes many hours on a CPU; "
              "--preset cpu-tiny trains in minutes", file=sys.stderr)
    result = train(cfg, text=text)
    if result.interrupted:
        return 130
    return 0


# --- eval -------------------------------------------------------------------------


def cmd_eval(args) -> int:
    from .checkpoint import model_and_tokenizer, read_checkpoint, shipped_checkpoint_path
    from .data import load_text, train_val_split
    from .train import evaluate_text

    device = _get_device(args.device)
    train_frac = 0.9
    if args.checkpoint is not None and is_pretrained_source(args.checkpoint):
        model, tokenizer, _ = load_for_cli(args.checkpoint, device)
    else:  # read once: the weights, and the split the model was trained on
        path = args.checkpoint or shipped_checkpoint_path()
        ckpt = read_checkpoint(path)
        model, tokenizer = model_and_tokenizer(ckpt, path)
        model.to(device).eval()
        train_frac = float(ckpt.get("train_config", {}).get("train_frac", 0.9))
    train_text, val_text = train_val_split(load_text(args.data), train_frac)
    text = val_text if args.split == "val" else train_text
    try:  # each distinct character once: cheap, and a character vocabulary names what it lacks
        tokenizer.encode("".join(sorted(set(text))))
    except ValueError as e:
        raise CLIError(f"--data: {e}; evaluate on a text this checkpoint's tokenizer can read") from None
    # a long context times a large vocabulary (SmolLM2: 8192 x 49152) makes huge logits: fewer windows at once
    batch_size = max(1, min(args.batch_size, 2**28 // (model.config.block_size * model.config.vocab_size)))
    r = evaluate_text(model, tokenizer, text, batch_size=batch_size, device=device,
                      progress=sys.stderr.isatty())
    print(f"{args.split}_loss {r['loss_per_token']:.4f}")
    print(f"{args.split}_loss_per_char {r['loss_per_char']:.4f} ({r['chars']:,} characters, {r['tokens']:,} tokens)")
    return 0


def cmd_export(args) -> int:
    from .checkpoint import export_checkpoint

    if args.format == "hf":
        from .export_hf import export_hf

        if args.half:
            raise CLIError("--half is for our own format; a Hugging Face folder is written in float32")
        folder, notes = export_hf(args.checkpoint, args.out)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {folder} (load it with transformers.AutoModelForCausalLM.from_pretrained)")
        return 0
    path = export_checkpoint(args.checkpoint, args.out, half=args.half)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


# --- chat ------------------------------------------------------------------------------


def cmd_chat(args) -> int:
    """One user turn per line of stdin, each reply streamed to stdout; /reset starts over (chat.py)."""
    from .chat import ChatSession

    _check_sampling(args)
    model, tokenizer, _ = load_for_cli(args.checkpoint, _get_device(args.device))
    session = ChatSession(model, tokenizer, system=args.system, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                          on_note=lambda note: print(note, file=sys.stderr, flush=True))
    interactive = sys.stdin.isatty()
    if interactive:
        print("type a message and press Enter; /reset starts over, Ctrl-D ends", file=sys.stderr)
    while True:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:  # end of input
            return 0
        text = line.rstrip("\r\n")
        if text.strip() == "/reset":
            session.reset()
            print("(a new conversation)", file=sys.stderr, flush=True)
            continue
        if not text.strip():
            continue
        for piece in session.send(text):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()


# --- the entry point ---------------------------------------------------------------


def flag_names(message: str, parser: argparse.ArgumentParser) -> str:
    """The package's messages name Python parameters (max_iters, top_k); the user typed flags (--max-iters).
    A name with an underscore is a parameter wherever it stands (not inside a path such as out_dir/x.pt);
    a plain word (temperature, dropout) only where it is the subject of "must"."""
    flags = {}
    for a in parser._actions:  # the long spelling, and the "on" one of --x/--no-x pairs
        long = [s for s in a.option_strings if s.startswith("--") and not s.startswith("--no-")]
        if long and a.dest != "help":
            flags[a.dest] = long[-1]
    if "block_size" in flags:  # with --init-from, --block-size sets TrainConfig.train_window
        flags["train_window"] = flags["block_size"]
    if not flags:
        return message
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    pattern = rf"(?<![\w\-/.])({names})\b(?![/.]\w)(?=(\s+must\b)?)"

    def flag(m: re.Match) -> str:
        name = m.group(1)
        return flags[name] if "_" in name or m.group(2) else name

    return re.sub(pattern, flag, message)


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    commands = {"sample": cmd_sample, "train": cmd_train, "eval": cmd_eval, "export": cmd_export, "chat": cmd_chat}
    try:
        return commands[args.command](args)
    except (CLIError, *USER_ERRORS) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {flag_names(msg, _subcommand(parser, args.command))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `... sample | head`
        try:
            sys.stdout = None
        except Exception:
            pass
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
