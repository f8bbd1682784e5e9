"""`python -m gpt_from_scratch train|sample|eval`.

Bad arguments and bad input end with exit code 2 and one line on stderr that
starts with `error:`, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda", "mps")


class CLIError(Exception):
    """A problem with the user's input: printed as one `error:` line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors, as one line
        # self.prog is "gpt_from_scratch" or "gpt_from_scratch sample": name the subcommand once
        command = " ".join(self.prog.split()[1:])
        hint = f"python -m gpt_from_scratch {command} --help".replace("  ", " ")
        sys.stderr.write(f"error: {message} (see `{hint}`)\n")
        raise SystemExit(2)


def _positive_int(name: str, minimum: int = 1):
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {s!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {v}")
        return v

    return parse


def _number(name: str):
    def parse(s: str) -> float:
        try:
            return float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gpt_from_scratch", description="Train, sample and evaluate the gpt-from-scratch models.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    s = sub.add_parser("sample", help="generate text from a checkpoint (the shipped one by default)")
    s.add_argument("--checkpoint", help="a .pt file, or gpt2 / gpt2-medium / gpt2-large / gpt2-xl; "
                   "default: the shipped pretrained checkpoint")
    s.add_argument("--prompt", default="", help="text to continue; empty starts from a newline")
    s.add_argument("--max-new-tokens", type=int, default=500, help="tokens to generate (default 500)")
    s.add_argument("--temperature", type=_number("temperature"), default=0.8,
                   help="0 is greedy; higher is more adventurous (default 0.8)")
    s.add_argument("--top-k", type=int, default=None, help="sample only from the k most likely characters")
    s.add_argument("--top-p", type=_number("top-p"), default=None,
                   help="sample only from the smallest set of characters holding this much probability")
    s.add_argument("--seed", type=int, default=None, help="make the output reproducible")
    s.add_argument("--num-samples", type=_positive_int("num-samples"), default=1)
    s.add_argument("--device", choices=DEVICES, default="auto")
    s.add_argument("--no-kv-cache", action="store_true", help="recompute the whole context at every step")
    s.add_argument("--interactive", action="store_true", help="read prompts line by line until end of input")
    s.add_argument("--output", help="also write the text to this file (a long run shows progress; Ctrl-C keeps it)")
    s.add_argument("--threads", type=_positive_int("threads"),
                   help="CPU threads (default 1: fastest for one-token steps, see README.md)")

    t = sub.add_parser("train", help="train a model; writes ckpt.pt, best.pt, log.csv and loss.png")
    t.add_argument("--preset", help="shakespeare-char (the default), cpu-tiny, cpu-speedrun, tiny, small, medium, "
                   "large; finetune (the default with --init-from)")
    t.add_argument("--data", help="a text file to train on (default: Tiny Shakespeare)")
    t.add_argument("--out-dir", help="where to write checkpoints and logs (default: out-PRESET)")
    t.add_argument("--max-iters", type=_positive_int("max-iters", 0))
    t.add_argument("--eval-interval", type=_positive_int("eval-interval"))
    t.add_argument("--eval-iters", type=_positive_int("eval-iters"))
    t.add_argument("--batch-size", type=_positive_int("batch-size"))
    t.add_argument("--grad-accum", type=_positive_int("grad-accum"))
    t.add_argument("--block-size", type=_positive_int("block-size"))
    t.add_argument("--n-layer", type=_positive_int("n-layer"))
    t.add_argument("--n-head", type=_positive_int("n-head"))
    t.add_argument("--n-embd", type=_positive_int("n-embd"))
    t.add_argument("--dropout", type=_number("dropout"))
    t.add_argument("--norm", choices=("layernorm", "rmsnorm"))
    t.add_argument("--activation", choices=("gelu", "gelu_tanh", "relu", "relu2", "swiglu"))
    t.add_argument("--qk-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="RMS-normalise each head's queries and keys")
    t.add_argument("--logit-softcap", type=_number("logit-softcap"), help="cap the logits smoothly at +-this")
    t.add_argument("--zero-init-proj", action=argparse.BooleanOptionalAction, default=None,
                   help="start the residual projections (c_proj) at zero")
    t.add_argument("--tie-weights", action=argparse.BooleanOptionalAction, default=None,
                   help="share the token embedding with the output layer (--no-tie-weights: an untied head)")
    t.add_argument("--pos", choices=("learned", "rope"), help="position information: learned embeddings or RoPE")
    t.add_argument("--n-kv-head", type=_positive_int("n-kv-head"), help="key/value heads (grouped-query attention)")
    t.add_argument("--mlp-hidden", type=_positive_int("mlp-hidden"), help="the MLP's hidden width (default 4 x n-embd)")
    t.add_argument("--tokenizer", choices=("char", "bpe"), help="characters (default) or byte-level BPE")
    t.add_argument("--vocab-size", type=_positive_int("vocab-size", 257), help="BPE vocabulary size (default 512)")
    t.add_argument("--init-from", help="fine-tune: start from this checkpoint's weights and tokenizer")
    t.add_argument("--gradient-checkpointing", action="store_true", default=None,
                   help="recompute activations in the backward pass: less memory, slower")
    t.add_argument("--learning-rate", type=_number("learning-rate"))
    t.add_argument("--min-lr", type=_number("min-lr"))
    t.add_argument("--warmup-iters", type=_positive_int("warmup-iters", 0))
    t.add_argument("--lr-decay-iters", type=_positive_int("lr-decay-iters"))
    t.add_argument("--weight-decay", type=_number("weight-decay"))
    t.add_argument("--optimizer", choices=("adamw", "muon"), help="adamw (default), or muon for the blocks' matrices")
    t.add_argument("--muon-lr", type=_number("muon-lr"), help="Muon's peak learning rate (default 0.02)")
    t.add_argument("--max-minutes", type=_number("max-minutes"),
                   help="stop after this many minutes of training (evaluation excluded); the schedule fits itself")
    t.add_argument("--budget-clock", choices=("wall", "cpu"),
                   help="what --max-minutes counts: wall clock (default), or this process's CPU time "
                   "(fairer on a busy machine; use one thread)")
    t.add_argument("--device", choices=DEVICES, default=None)
    t.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default=None)
    t.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model (off by default)")
    t.add_argument("--seed", type=int)
    t.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt.pt")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="mean loss over a whole split, in non-overlapping windows")
    e.add_argument("--checkpoint", help="a .pt file, or gpt2 (and its larger sizes); default: the shipped checkpoint")
    e.add_argument("--data", help="a text file (default: Tiny Shakespeare)")
    e.add_argument("--split", choices=("val", "train"), default="val")
    e.add_argument("--device", choices=DEVICES, default="auto")
    e.add_argument("--batch-size", type=_positive_int("batch-size"), default=32)

    x = sub.add_parser("export", help="write a small, weights-only copy of a checkpoint for sharing")
    x.add_argument("--checkpoint", required=True, help="a training checkpoint, e.g. out-cpu-tiny/best.pt")
    x.add_argument("--out", required=True, help="the file to write")
    x.add_argument("--half", action="store_true", help="store the weights in float16 (half the size)")
    return p


# --- sample ---------------------------------------------------------------------

GPT2_NAMES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")


def load_for_cli(checkpoint: str | None, device) -> tuple:
    """(model, tokenizer, description): a .pt file, the shipped checkpoint, or OpenAI's GPT-2 by name."""
    if checkpoint in GPT2_NAMES:
        from .bpe import BPETokenizer
        from .model import GPT

        model = GPT.from_pretrained(checkpoint).to(device)
        return model, BPETokenizer.from_pretrained(checkpoint), f"OpenAI's {checkpoint}"
    from .checkpoint import load_checkpoint, shipped_checkpoint_path

    path = checkpoint or shipped_checkpoint_path()
    model, tokenizer = load_checkpoint(path, device=device)
    return model, tokenizer, str(path)


def _encode_prompt(tokenizer, prompt: str, block_size: int) -> list[int]:
    ids = tokenizer.encode(prompt or "\n")
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


def cmd_sample(args) -> int:
    import torch

    from .device import get_device
    from .generate import check_sampling_args, generate

    check_sampling_args(args.temperature, args.top_k, args.top_p, args.max_new_tokens)
    device = get_device(args.device, verbose=False)  # stderr holds only notes and errors
    if device.type == "cpu":
        # One token at a time is a chain of small operations: extra threads mostly wait for each
        # other, and on a busy 2-core machine 2 threads were 4-20x slower than 1 (README.md).
        torch.set_num_threads(args.threads or 1)
    model, tokenizer, where = load_for_cli(args.checkpoint, device)
    loaded = f"loaded {where} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, " \
             f"context {model.block_size})"
    seed = args.seed if args.seed is not None else int(torch.randint(0, 2**31 - 1, (1,)).item())
    generator = torch.Generator().manual_seed(seed)
    opts = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                use_kv_cache=not args.no_kv_cache, generator=generator)
    outputs = [sys.stdout]
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            outputs.append(open(args.output, "w", encoding="utf-8"))
        except OSError as e:
            raise CLIError(f"cannot write {args.output} ({e.strerror or e}); check the path") from None

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
        except ValueError as e:  # one bad prompt does not end the session
            print(f"error: {e}", file=sys.stderr)
            status = 2
    return status


# --- train ------------------------------------------------------------------------

# `train` flags that override a preset's TrainConfig field of the same name
_TRAIN_FIELDS = (
    "data", "out_dir", "max_iters", "eval_interval", "eval_iters", "batch_size", "grad_accum",
    "block_size", "n_layer", "n_head", "n_embd", "dropout", "norm", "activation", "pos", "n_kv_head", "mlp_hidden",
    "tokenizer", "vocab_size", "init_from", "gradient_checkpointing", "learning_rate", "min_lr",
    "warmup_iters", "lr_decay_iters", "weight_decay", "device", "dtype", "compile", "seed",
    "qk_norm", "logit_softcap", "zero_init_proj", "tie_weights", "optimizer", "muon_lr", "max_minutes", "budget_clock",
)


# model flags that a fine-tuned checkpoint decides (dropout and the training window may still change)
_MODEL_FLAGS = {"n_layer", "n_head", "n_embd", "norm", "activation", "pos", "n_kv_head", "mlp_hidden",
                "qk_norm", "logit_softcap", "zero_init_proj", "tie_weights"}


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
    shape = sorted(set(changes) & _MODEL_FLAGS)
    if args.init_from and shape:
        raise CLIError(f"--init-from takes the model's shape from the checkpoint; drop --{shape[0].replace('_', '-')}")
    changes.setdefault("out_dir", f"out-{preset}")
    cfg = cfg.replace(**changes, resume=args.resume, progress=not args.no_progress)
    text = load_text(cfg.data)  # bad files end here, with one error line, before anything is printed
    gpu = torch.cuda.is_available() or mps_available()
    short = args.max_iters is not None or cfg.max_minutes is not None
    if preset not in ("cpu-tiny", "cpu-speedrun", "finetune") and cfg.device in ("auto", "cpu") and not gpu and not short:
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
    from .device import get_device
    from .train import evaluate_text

    device = get_device(args.device, verbose=False)  # stderr holds only notes and errors
    train_frac = 0.9
    if args.checkpoint in GPT2_NAMES:
        model, tokenizer, _ = load_for_cli(args.checkpoint, device)
    else:  # read once: the weights, and the split the model was trained on
        path = args.checkpoint or shipped_checkpoint_path()
        ckpt = read_checkpoint(path)
        model, tokenizer = model_and_tokenizer(ckpt, path)
        model.to(device).eval()
        train_frac = float(ckpt.get("train_config", {}).get("train_frac", 0.9))
    train_text, val_text = train_val_split(load_text(args.data), train_frac)
    text = val_text if args.split == "val" else train_text
    r = evaluate_text(model, tokenizer, text, batch_size=args.batch_size, device=device,
                      progress=sys.stderr.isatty())
    print(f"{args.split}_loss {r['loss_per_token']:.4f}")
    print(f"{args.split}_loss_per_char {r['loss_per_char']:.4f} ({r['chars']:,} characters, {r['tokens']:,} tokens)")
    return 0


def cmd_export(args) -> int:
    from .checkpoint import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.out, half=args.half)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from .bpe import TokenizerError
    from .checkpoint import CheckpointError
    from .data import DataError

    commands = {"sample": cmd_sample, "train": cmd_train, "eval": cmd_eval, "export": cmd_export}
    try:
        return commands[args.command](args)
    except (CLIError, CheckpointError, DataError, TokenizerError, ValueError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
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
