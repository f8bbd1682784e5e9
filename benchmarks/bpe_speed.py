"""BPE tokenizer speed: our incremental trainer and cached encoder against minbpe's textbook ones.

In one run, on the same text:

* training at --vocab-size (512) on the first --chars (200,000) characters:
  ours vs minbpe's RegexTokenizer (same GPT-4 split pattern), and whether the
  two learn exactly the same merges (a strong correctness check: both break
  ties the same way, by the pair seen first);
* our training on the whole text;
* encoding: ours on the whole text and on the first --chars, minbpe's on the
  first --chars (and whether the ids agree).

minbpe is never downloaded or copied: point --minbpe at a local folder that
holds the `minbpe` package. Without it only our own numbers are printed.

    python benchmarks/bpe_speed.py
    python benchmarks/bpe_speed.py --minbpe /path/to/minbpe-checkout
    python benchmarks/bpe_speed.py --pattern gpt2 --vocab-size 1024

Targets (chapter 06): vocab 512 on all of Tiny Shakespeare in <= 10 s, the
whole text encoded in <= 3 s, training >= 20x faster than minbpe's.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import torch  # noqa: E402

import gpt_from_scratch as gfs  # noqa: E402
from gpt_from_scratch.bpe import BPETokenizer  # noqa: E402

PATTERNS = {"gpt4": gfs.GPT4_SPLIT_PATTERN, "gpt2": gfs.GPT2_SPLIT_PATTERN}


def import_minbpe(folder: str):
    """minbpe's RegexTokenizer class, from the folder that holds the `minbpe` package.

    minbpe's own __init__ also imports its GPT4Tokenizer, which needs tiktoken; we only
    need regex.py and base.py, so the package is registered by hand without running __init__.
    """
    package_dir = Path(folder).expanduser().resolve() / "minbpe"
    if not (package_dir / "regex.py").is_file():
        sys.exit(f"error: {package_dir} has no regex.py; "
                 "pass --minbpe the folder that holds the minbpe package")
    package = types.ModuleType("minbpe")
    package.__path__ = [str(package_dir)]
    sys.modules["minbpe"] = package
    from minbpe.regex import RegexTokenizer

    return RegexTokenizer


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def first_difference(a: dict, b: dict) -> str:
    for k, (x, y) in enumerate(zip(a.items(), b.items())):
        if x != y:
            return f"merge {k}: ours {x}, minbpe's {y}"
    return f"ours has {len(a)} merges, minbpe's {len(b)}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minbpe", help="folder holding the minbpe package (a local clone of karpathy/minbpe)")
    p.add_argument("--data", help="text file (default: Tiny Shakespeare via gfs.load_text())")
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--chars", type=int, default=200_000, help="characters for the comparison with minbpe")
    p.add_argument("--pattern", choices=sorted(PATTERNS), default="gpt4",
                   help="split pattern (minbpe's RegexTokenizer gets the same one)")
    args = p.parse_args()

    RegexTokenizer = import_minbpe(args.minbpe) if args.minbpe else None  # fail early on a wrong path
    text = gfs.load_text(args.data)
    part = text[: args.chars]
    pattern = PATTERNS[args.pattern]
    print(f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, "
          f"{len(text):,} characters, {args.pattern} pattern, vocab {args.vocab_size}")

    ours_part, t_train_part = timed(BPETokenizer.train, part, args.vocab_size, pattern)
    ours_all, t_train_all = timed(BPETokenizer.train, text, args.vocab_size, pattern)
    print(f"train ours, {len(part):,} chars: {t_train_part:8.2f} s")
    print(f"train ours, {len(text):,} chars: {t_train_all:8.2f} s")

    fresh = BPETokenizer.from_dict(ours_part.to_dict())  # empty encode cache
    ids_part, t_enc_part = timed(fresh.encode, part)
    fresh = BPETokenizer.from_dict(ours_all.to_dict())
    ids_all, t_enc_all = timed(fresh.encode, text)
    _, t_enc_warm = timed(fresh.encode, text)
    assert fresh.decode(ids_all) == text
    print(f"encode ours, {len(part):,} chars: {t_enc_part:8.2f} s")
    print(f"encode ours, {len(text):,} chars: {t_enc_all:8.2f} s ({len(ids_all):,} tokens, "
          f"{len(text) / len(ids_all):.2f} chars/token; {t_enc_warm:.2f} s again with a warm cache)")

    if RegexTokenizer is None:
        print("(pass --minbpe PATH to compare with minbpe)")
        return
    theirs = RegexTokenizer(pattern)
    _, t_theirs_train = timed(theirs.train, part, args.vocab_size)
    their_ids, t_theirs_enc = timed(theirs.encode_ordinary, part)
    print(f"train minbpe, {len(part):,} chars: {t_theirs_train:8.2f} s")
    print(f"encode minbpe, {len(part):,} chars: {t_theirs_enc:8.2f} s")
    print(f"training: ours {t_theirs_train / t_train_part:.1f}x faster than minbpe on the same text")
    print(f"encoding: ours {t_theirs_enc / t_enc_part:.1f}x faster than minbpe on the same text")
    same = ours_part.merges == theirs.merges
    if same:
        print("merges: identical to minbpe's")
    else:
        print(f"merges DIFFER: {first_difference(ours_part.merges, theirs.merges)}")
    print("ids: identical to minbpe's" if ids_part == their_ids else "ids DIFFER from minbpe's")


if __name__ == "__main__":
    main()
