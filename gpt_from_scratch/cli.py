"""`python -m gpt_from_scratch train|sample|eval`.

Bad arguments and bad input end with exit code 2 and one line on stderr that
starts with `error:`, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

DEVICES = ("auto", "cpu", "cuda", "mps")


class CLIError(Exception):
    """A problem with the user's input: printed as one `error:` line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors, as one line
        sys.stderr.write(f"error: {message} (see `python -m gpt_from_scratch {self.prog.split()[-1]} --help`)\n")
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
    s.add_argument("--checkpoint", help="a .pt file; default: the shipped pretrained checkpoint")
    s.add_argument("--prompt", default="", help="text to continue; empty starts from a newline")
    s.add_argument("--max-new-tokens", type=int, default=500, help="characters to generate (default 500)")
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

    t = sub.add_parser("train", help="train a model; writes ckpt.pt, best.pt, log.csv and loss.png")
    t.add_argument("--preset", default="shakespeare-char", help="shakespeare-char (default), cpu-tiny, small, medium")
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
    t.add_argument("--learning-rate", type=_number("learning-rate"))
    t.add_argument("--min-lr", type=_number("min-lr"))
    t.add_argument("--warmup-iters", type=_positive_int("warmup-iters", 0))
    t.add_argument("--lr-decay-iters", type=_positive_int("lr-decay-iters"))
    t.add_argument("--weight-decay", type=_number("weight-decay"))
    t.add_argument("--device", choices=DEVICES, default=None)
    t.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default=None)
    t.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model (off by default)")
    t.add_argument("--seed", type=int)
    t.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt.pt")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="mean loss over a whole split, in non-overlapping windows")
    e.add_argument("--checkpoint", help="a .pt file; default: the shipped pretrained checkpoint")
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


def _encode_prompt(tokenizer, prompt: str, block_size: int) -> list[int]:
    ids = tokenizer.encode(prompt or "\n")
    if len(ids) > block_size:
        print(f"note: the prompt has {len(ids)} characters; the model sees only the last {block_size}",
              file=sys.stderr)
    return ids


def cmd_sample(args) -> int:
    import torch

    from .checkpoint import load_checkpoint
    from .device import get_device
    from .generate import check_sampling_args, generate, iter_generate

    check_sampling_args(args.temperature, args.top_k, args.top_p, args.max_new_tokens)
    device = get_device(args.device, verbose=False)  # stderr holds only notes and errors
    model, tokenizer = load_checkpoint(args.checkpoint, device=device)
    seed = args.seed if args.seed is not None else int(torch.randint(0, 2**31 - 1, (1,)).item())
    generator = torch.Generator().manual_seed(seed)
    opts = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                use_kv_cache=not args.no_kv_cache, generator=generator)
    out = sys.stdout

    def run(prompt: str) -> None:
        prompt = prompt or "\n"
        ids = _encode_prompt(tokenizer, prompt, model.block_size)
        idx = torch.tensor([ids] * args.num_samples, dtype=torch.long, device=device)
        if args.num_samples == 1:  # stream each character as it is made
            out.write(prompt)
            out.flush()
            for next_id in iter_generate(model, idx, args.max_new_tokens, **opts):
                out.write(tokenizer.decode(next_id[0].tolist()))
                out.flush()
            out.write("\n")
        else:
            rows = generate(model, idx, args.max_new_tokens, **opts)
            for i, row in enumerate(rows):
                out.write(f"---------- sample {i + 1} of {args.num_samples} ----------\n")
                out.write(tokenizer.decode(row.tolist()) + "\n")
        out.flush()

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
    "block_size", "n_layer", "n_head", "n_embd", "dropout", "learning_rate", "min_lr",
    "warmup_iters", "lr_decay_iters", "weight_decay", "device", "dtype", "compile", "seed",
)


def cmd_train(args) -> int:
    from .train import get_preset, train

    cfg = get_preset(args.preset)
    changes = {name: getattr(args, name) for name in _TRAIN_FIELDS if getattr(args, name) is not None}
    changes.setdefault("out_dir", f"out-{args.preset}")
    cfg = cfg.replace(**changes, resume=args.resume, progress=not args.no_progress)
    if cfg.data is not None:
        from pathlib import Path

        if not Path(cfg.data).is_file():
            raise CLIError(f"data file not found: {cfg.data}")
    import torch

    from .device import mps_available

    gpu = torch.cuda.is_available() or mps_available()
    if args.preset != "cpu-tiny" and cfg.device in ("auto", "cpu") and not gpu and args.max_iters is None:
        print(f"note: --preset {args.preset} is a GPU recipe and takes many hours on a CPU; "
              "--preset cpu-tiny trains in minutes", file=sys.stderr)
    result = train(cfg)
    if result.interrupted:
        return 130
    return 0


# --- eval -------------------------------------------------------------------------


def cmd_eval(args) -> int:
    from .checkpoint import model_and_tokenizer, read_checkpoint, shipped_checkpoint_path
    from .data import load_text, prepare_data
    from .device import get_device
    from .train import evaluate_split

    device = get_device(args.device, verbose=False)  # stderr holds only notes and errors
    path = args.checkpoint or shipped_checkpoint_path()
    ckpt = read_checkpoint(path)
    model, tokenizer = model_and_tokenizer(ckpt, path)
    model.to(device).eval()
    train_frac = float(ckpt.get("train_config", {}).get("train_frac", 0.9))
    _, train_data, val_data = prepare_data(load_text(args.data), train_frac, tokenizer=tokenizer)
    split = val_data if args.split == "val" else train_data
    loss = evaluate_split(model, split, batch_size=args.batch_size, device=device, progress=sys.stderr.isatty())
    print(f"{args.split}_loss {loss:.4f}")
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
    from .checkpoint import CheckpointError
    from .data import DataError

    commands = {"sample": cmd_sample, "train": cmd_train, "eval": cmd_eval, "export": cmd_export}
    try:
        return commands[args.command](args)
    except (CLIError, CheckpointError, DataError, ValueError) as e:
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
