"""`python -m gpt_from_scratch sample|train|eval|export`.

Most cases call the entry point in this process, `cli.main(argv)`, with stdin,
stdout and stderr replaced and the working folder changed: the same code path as
`python -m gpt_from_scratch ARGS` without the cost of starting Python and
importing torch for each case. A few run as real processes, where only a process
shows the behaviour: exit codes (and that they equal the in-process ones),
Ctrl-C during `train` and `sample --output`, and torchrun (tests/test_ddp.py).
"""

import contextlib
import functools
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import gpt_from_scratch as gfs
from gpt_from_scratch import cli
from gpt_from_scratch.generate import generate_text
from gpt_from_scratch.model import GPT, GPTConfig
from gpt_from_scratch.train import TrainConfig, evaluate_split, train
from helpers import sharpen


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               MPLBACKEND="Agg", PYTHONIOENCODING="utf-8")
    env.pop("GPT_FROM_SCRATCH_CHECKPOINT", None)
    return env


def run_cli(args, cwd, stdin=None, timeout=120) -> Result:
    """A fresh `python -m gpt_from_scratch ARGS`, in its own process."""
    r = subprocess.run([sys.executable, "-m", "gpt_from_scratch", *args], input=stdin, cwd=cwd,
                       capture_output=True, text=True, encoding="utf-8", env=cli_env(), timeout=timeout)
    return Result(r.returncode, r.stdout, r.stderr)


def run_main(args, cwd, stdin=None) -> Result:
    """`cli.main(args)` in this process, as `python -m gpt_from_scratch ARGS` would run it."""
    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_stdin, threads = os.getcwd(), sys.stdin, torch.get_num_threads()
    os.chdir(cwd)
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as e:  # argparse's own exits
                code = e.code
    finally:
        os.chdir(old_cwd)
        sys.stdin = old_stdin
        torch.set_num_threads(threads)
    return Result(code, out.getvalue(), err.getvalue())


def run_cli_batch(jobs: dict, cwd: Path) -> dict:
    """{name: (args, stdin)} -> {name: Result}, each case through cli.main in this process."""
    return {name: run_main(args, cwd, stdin) for name, (args, stdin) in jobs.items()}


def notes(r: Result) -> list[str]:
    """stderr without the line that names the loaded checkpoint."""
    return [line for line in r.stderr.splitlines() if not line.startswith("loaded ")]


def assert_one_error_line(r: Result) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


# --- fixtures: small data, a random checkpoint for sampling, a trained run -------------

SHAPE = ["--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--block-size", "16", "--batch-size", "4"]
TRAIN = ["train", "--preset", "cpu-tiny", "--device", "cpu", "--no-progress", "--eval-iters", "2", *SHAPE]
LONG_PROMPT = "First Citizen:\nBefore we proceed any further, hear me speak."  # 60 characters > 32
INTERACTIVE_PROMPTS = ("ROMEO:", "", "JULIET: O")




@pytest.fixture(scope="module")
def work(tmp_path_factory, text):
    """A folder with small text files, a random GPT checkpoint and a 6-step training run."""
    d = tmp_path_factory.mktemp("cli")
    (d / "small.txt").write_text(text[:20_000], encoding="utf-8")
    (d / "ten.txt").write_text(text[:10], encoding="utf-8")
    (d / "forty.txt").write_text(text[:40], encoding="utf-8")  # val split: 4 characters
    (d / "euro.txt").write_text(text[:2000] + "€uro", encoding="utf-8")
    (d / "corrupt.pt").write_bytes(b"\x00not a checkpoint\xff" * 64)
    (d / "empty.txt").write_bytes(b"")
    (d / "latin1.txt").write_bytes("Ça va très bien, merci.".encode("latin-1") * 100)
    (d / "binary.dat").write_bytes(bytes(range(128)) * 100)  # valid UTF-8, but with NUL bytes
    (d / "mine.txt").write_text(text[:3000], encoding="utf-8")  # a small text of one's own
    # a random GPT, sharper than at init, with Tiny Shakespeare's vocabulary: block_size 32
    tok = gfs.CharTokenizer.from_text(text)
    torch.manual_seed(0)
    model = sharpen(GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32,
                                  dropout=0.0)))
    gfs.save_checkpoint(d / "random.pt", model, tok)
    # a short real training run (python API) for eval and the mismatched --resume
    cfg = TrainConfig(model=GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, dropout=0.0), batch_size=4,
                      max_iters=6, eval_interval=3, eval_iters=2, warmup_iters=2, device="cpu", progress=False,
                      data=str(d / "small.txt"), out_dir=str(d / "trained"))
    train(cfg)
    return d


@pytest.fixture(scope="module")
def runs(work):
    """Every forked CLI case, run at once."""
    d = str(work)
    ckpt = ["--checkpoint", f"{d}/random.pt", "--device", "cpu"]
    jobs = {
        # sample: bad input
        "s-unknown-chars": (["sample", *ckpt, "--prompt", "Hello wörld€"], None),
        "s-negative-temperature": (["sample", *ckpt, "--temperature", "-1"], None),
        "s-temperature-not-a-number": (["sample", *ckpt, "--temperature", "warm"], None),
        "s-nan-temperature": (["sample", *ckpt, "--temperature", "nan"], None),
        "s-top-k-0": (["sample", *ckpt, "--top-k", "0"], None),
        "s-top-k-negative": (["sample", *ckpt, "--top-k", "-3"], None),
        "s-top-p-0": (["sample", *ckpt, "--top-p", "0"], None),
        "s-top-p-above-1": (["sample", *ckpt, "--top-p", "1.5"], None),
        "s-negative-max-new-tokens": (["sample", *ckpt, "--max-new-tokens", "-1"], None),
        "s-num-samples-0": (["sample", *ckpt, "--num-samples", "0"], None),
        "s-missing-checkpoint": (["sample", "--checkpoint", f"{d}/nope.pt"], None),
        "s-corrupt-checkpoint": (["sample", "--checkpoint", f"{d}/corrupt.pt"], None),
        # sample: good input
        "s-empty-prompt-a": (["sample", *ckpt, "--prompt", "", "--max-new-tokens", "60", "--seed", "123"], None),
        "s-empty-prompt-b": (["sample", *ckpt, "--prompt", "", "--max-new-tokens", "60", "--seed", "123"], None),
        "s-other-seed": (["sample", *ckpt, "--prompt", "", "--max-new-tokens", "60", "--seed", "124"], None),
        "s-no-kv-cache": (["sample", *ckpt, "--prompt", "", "--max-new-tokens", "60", "--seed", "123",
                           "--no-kv-cache"], None),
        "s-long-prompt": (["sample", *ckpt, "--prompt", LONG_PROMPT, "--max-new-tokens", "40", "--seed", "2"], None),
        "s-num-samples": (["sample", *ckpt, "--prompt", "KING:", "--max-new-tokens", "30", "--num-samples", "3",
                           "--seed", "4"], None),
        "s-interactive": (["sample", *ckpt, "--interactive", "--max-new-tokens", "20", "--seed", "9"],
                          "".join(p + "\n" for p in INTERACTIVE_PROMPTS)),
        # train and eval: bad input
        "t-n-embd-not-divisible": ([*TRAIN, "--n-head", "3", "--out-dir", "o1", "--data", "small.txt"], None),
        "t-block-longer-than-data": ([*TRAIN, "--data", "ten.txt", "--out-dir", "o2"], None),
        "t-split-smaller-than-a-batch": ([*TRAIN, "--data", "forty.txt", "--out-dir", "o3"], None),
        "t-unknown-preset": (["train", "--preset", "huge", "--out-dir", "o4"], None),
        "t-missing-resume-checkpoint": ([*TRAIN, "--data", "small.txt", "--resume", "--out-dir", "o5"], None),
        "t-mismatched-resume": ([*TRAIN, "--data", "small.txt", "--resume", "--out-dir", "trained",
                                 "--n-embd", "64", "--max-iters", "8"], None),
        "t-missing-data": ([*TRAIN, "--data", "nope.txt", "--out-dir", "o6"], None),
        "t-negative-max-iters": ([*TRAIN, "--max-iters", "-1"], None),
        "t-empty-file": ([*TRAIN, "--data", "empty.txt", "--out-dir", "o7"], None),
        "t-not-utf8": ([*TRAIN, "--data", "latin1.txt", "--out-dir", "o8"], None),
        "t-binary-file": ([*TRAIN, "--data", "binary.dat", "--out-dir", "o9"], None),
        "t-init-from-unknown-chars": (["train", "--init-from", "trained/best.pt", "--data", "euro.txt",
                                       "--out-dir", "o10", "--device", "cpu"], None),
        "t-init-from-with-a-shape-preset": (["train", "--init-from", "trained/best.pt", "--preset", "cpu-tiny",
                                             "--data", "small.txt", "--out-dir", "o11"], None),
        "t-fine-tune": (["train", "--init-from", "trained/best.pt", "--data", "mine.txt", "--out-dir", "ft",
                         "--max-iters", "4", "--eval-interval", "2", "--eval-iters", "2", "--batch-size", "4",
                         "--device", "cpu", "--no-progress"], None),
        "s-output": (["sample", *ckpt, "--prompt", "KING:", "--max-new-tokens", "50", "--seed", "5",
                      "--output", "written/sample.txt"], None),
        "s-output-bad-folder": (["sample", *ckpt, "--output", "corrupt.pt/x.txt"], None),
        "e-missing-checkpoint": (["eval", "--checkpoint", "nope.pt", "--data", "small.txt"], None),
        "e-unknown-characters": (["eval", "--checkpoint", "trained/ckpt.pt", "--data", "euro.txt"], None),
        # eval: good input
        "e-val": (["eval", "--checkpoint", "trained/ckpt.pt", "--data", "small.txt", "--device", "cpu"], None),
        "e-train": (["eval", "--checkpoint", "trained/best.pt", "--data", "small.txt", "--split", "train"], None),
        "no-command": ([], None),
    }
    return run_cli_batch(jobs, work)


BAD = {
    "s-unknown-chars": ["ö", "€"],
    "s-negative-temperature": ["--temperature"],
    "s-temperature-not-a-number": ["--temperature", "warm"],
    "s-nan-temperature": ["--temperature"],
    "s-top-k-0": ["--top-k"],
    "s-top-k-negative": ["--top-k"],
    "s-top-p-0": ["--top-p"],
    "s-top-p-above-1": ["--top-p"],
    "s-negative-max-new-tokens": ["--max-new-tokens"],
    "s-num-samples-0": ["--num-samples"],
    "s-missing-checkpoint": ["not found", "nope.pt"],
    "s-corrupt-checkpoint": ["corrupt", "corrupt.pt"],
    "t-n-embd-not-divisible": ["divisible"],
    "t-block-longer-than-data": ["--block-size (16)", "longer than the data"],
    "t-split-smaller-than-a-batch": ["validation split", "fewer than one window"],
    "t-unknown-preset": ["--preset", "huge", "cpu-tiny"],
    "t-missing-resume-checkpoint": ["cannot resume", "ckpt.pt"],
    "t-mismatched-resume": ["does not match", "--n-embd=32", "--n-embd=64"],
    "t-missing-data": ["does not exist", "nope.txt"],
    "t-negative-max-iters": ["--max-iters"],
    "e-missing-checkpoint": ["not found", "nope.pt"],
    "t-empty-file": ["empty.txt", "is empty"],
    "t-not-utf8": ["latin1.txt", "not UTF-8", "convert it"],
    "t-binary-file": ["binary.dat", "binary file"],
    "t-init-from-unknown-chars": ["'€'", "--init-from", "train from scratch", "drop or replace"],
    "t-init-from-with-a-shape-preset": ["--init-from", "--preset finetune"],
    "s-output-bad-folder": ["cannot write", "corrupt.pt/x.txt"],
    "e-unknown-characters": ["€"],
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_error_line(runs, case):
    r = runs[case]
    line = assert_one_error_line(r)
    for word in BAD[case]:
        assert word in line, line
    if case.startswith("s-"):
        assert r.stdout == "", r.stdout
    # the flag the user typed, never the Python parameter behind it
    assert not re.search(r"\b(top_k|top_p|max_new_tokens|num_samples|max_iters|block_size|n_embd|n_head)\b", line), line


def test_bad_training_input_writes_no_checkpoint(runs, work):
    for folder in ("o1", "o2", "o3", "o5", "o6", "o7", "o8", "o9", "o10", "o11"):
        assert not (work / folder / "ckpt.pt").exists()
    ckpt = torch.load(work / "trained" / "ckpt.pt", weights_only=True)
    assert ckpt["config"]["n_embd"] == 32 and ckpt["iter_num"] == 6  # the refused resume left it alone


@pytest.mark.parametrize("case", ["s-unknown-chars", "t-unknown-preset", "s-empty-prompt-a"])
def test_real_processes_equal_the_in_process_runs(runs, work, case):
    """Exit codes and output of a fresh `python -m gpt_from_scratch` equal cli.main's."""
    args = {"s-unknown-chars": ["sample", "--checkpoint", str(work / "random.pt"), "--device", "cpu",
                                "--prompt", "Hello wörld€"],
            "t-unknown-preset": ["train", "--preset", "huge", "--out-dir", "o4"],
            "s-empty-prompt-a": ["sample", "--checkpoint", str(work / "random.pt"), "--device", "cpu",
                                 "--prompt", "", "--max-new-tokens", "60", "--seed", "123"]}[case]
    fresh, inproc = run_cli(args, work), runs[case]
    assert (fresh.returncode, fresh.stdout, fresh.stderr) == (inproc.returncode, inproc.stdout, inproc.stderr)


# --- sample -----------------------------------------------------------------------------


def test_sample_empty_prompt_starts_from_a_newline(runs):
    r = runs["s-empty-prompt-a"]
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("\n") and len(r.stdout) == 1 + 60 + 1
    assert r.stderr == f"loaded {Path(r.stderr.split()[1])} (0.0M parameters, context 32)\n"
    assert r.stderr.split()[1].endswith("random.pt")


def test_sample_seed_is_reproducible_and_matches_the_python_api(runs, work):
    a, b, c = runs["s-empty-prompt-a"], runs["s-empty-prompt-b"], runs["s-other-seed"]
    assert a.returncode == b.returncode == c.returncode == 0
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout
    assert runs["s-no-kv-cache"].stdout == a.stdout  # the KV cache changes nothing
    model, tok = gfs.load_checkpoint(work / "random.pt")
    expected = generate_text(model, tok, "", 60, temperature=0.8,  # the CLI's default temperature
                             generator=torch.Generator().manual_seed(123))[0]
    assert a.stdout == expected + "\n"


def test_sample_long_prompt_prints_a_note(runs):
    r = runs["s-long-prompt"]
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(LONG_PROMPT) and len(r.stdout) == len(LONG_PROMPT) + 40 + 1
    lines = notes(r)
    assert len(lines) == 1 and lines[0].startswith("note:") and "32" in lines[0], r.stderr


def test_sample_num_samples_are_separated(runs):
    r = runs["s-num-samples"]
    assert r.returncode == 0, r.stderr
    parts = re.split(r"^-{3,} sample (\d) of 3 -{3,}\n", r.stdout, flags=re.M)
    assert parts[0] == ""
    assert parts[1::2] == ["1", "2", "3"]
    samples = parts[2::2]
    assert all(s.startswith("KING:") and len(s) == 5 + 30 + 1 for s in samples), samples
    assert len(set(samples)) == 3


def test_sample_interactive_reads_prompts_until_eof(runs):
    r = runs["s-interactive"]
    assert r.returncode == 0, r.stderr
    out, pos = r.stdout, 0
    for prompt in INTERACTIVE_PROMPTS:  # each continuation starts with its prompt ("" means a newline)
        prompt = prompt or "\n"
        assert out[pos:].startswith(prompt), (prompt, out[pos:])
        pos += len(prompt) + 20
        assert out[pos] == "\n"
        pos += 1
    assert pos == len(out)
    assert notes(r) == []


# --- eval ---------------------------------------------------------------------------------


def test_eval_prints_the_loss_over_the_whole_split(runs, work):
    model, tok = gfs.load_checkpoint(work / "trained" / "ckpt.pt")
    data = torch.tensor(tok.encode((work / "small.txt").read_text(encoding="utf-8")), dtype=torch.long)
    train_data, val_data = gfs.train_val_split(data, 0.9)
    for name, split, ckpt in (("e-val", val_data, "ckpt.pt"), ("e-train", train_data, "best.pt")):
        r = runs[name]
        assert r.returncode == 0, r.stderr
        m = re.fullmatch(r"(val|train)_loss (\d+\.\d{4})\n(val|train)_loss_per_char (\d+\.\d{4}) "
                         r"\(([\d,]+) characters, ([\d,]+) tokens\)\n", r.stdout)
        assert m, r.stdout
        assert m.group(1) == m.group(3) == name[2:]
        assert m.group(2) == m.group(4) and m.group(5) == m.group(6) == f"{len(split):,}"  # characters are tokens
        model, _ = gfs.load_checkpoint(work / "trained" / ckpt)
        assert abs(float(m.group(2)) - evaluate_split(model, split)) < 1e-4
        assert "Traceback" not in r.stderr


# --- Ctrl-C and resume (fresh interpreters) -------------------------------------------------------


def sigint_as_in_a_terminal():
    """In the child before Python starts: Ctrl-C's default action, even when this test runs in a background
    job (which starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(work):
    out_dir = work / "interrupted"
    args = [*TRAIN, "--data", "small.txt", "--max-iters", "100000", "--eval-interval", "1000",
            "--out-dir", str(out_dir)]
    proc = subprocess.Popen([sys.executable, "-m", "gpt_from_scratch", *args], cwd=work, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_in_a_terminal)
    lines, started = [], threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("iter 0:"):  # the first evaluation is done: training starts now
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(90), "training did not start: " + "".join(lines) + proc.stderr.read()
        deadline = time.time() + 60
        while not (out_dir / "loss.png").exists() and time.time() < deadline:  # the first save is done:
            time.sleep(0.05)  # the loop is in its training steps from now on
        time.sleep(1.5)
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    stderr = proc.stderr.read()
    assert code == 130, (code, "".join(lines), stderr)
    assert took < 15, f"took {took:.1f} s to stop after Ctrl-C"
    assert "Traceback" not in stderr
    stopped = [line for line in lines if line.startswith("stopped at iteration")]
    assert len(stopped) == 1, lines
    ckpt = torch.load(out_dir / "ckpt.pt", weights_only=True)
    n = int(ckpt["iter_num"])
    assert n > 0  # saved by Ctrl-C: the only evaluation-time save was at iteration 0
    assert stopped[0].startswith(f"stopped at iteration {n};")
    assert (out_dir / "log.csv").is_file()

    r = run_cli([*TRAIN, "--data", "small.txt", "--max-iters", str(n + 5), "--eval-interval", "1000",
                 "--out-dir", str(out_dir), "--resume"], work)
    assert r.returncode == 0, r.stderr
    assert f"resumed from {out_dir / 'ckpt.pt'} at iteration {n}" in r.stdout
    assert f"iter {n + 5}:" in r.stdout
    assert int(torch.load(out_dir / "ckpt.pt", weights_only=True)["iter_num"]) == n + 5


def test_no_command_prints_help_and_exits_2(runs):
    r = runs["no-command"]
    assert r.returncode == 2 and "usage" in r.stderr and r.stdout == ""



# --- your own text: fine-tuning and keeping what the model writes ----------------------------------


def test_fine_tuning_starts_from_the_checkpoint_and_reports_the_split(runs, work):
    r = runs["t-fine-tune"]
    assert r.returncode == 0, r.stderr
    assert "data: the first 90% train (2,700 tokens), the last 10% validate (300 tokens)" in r.stdout
    assert "warning: the validation split has only 300 tokens" in r.stdout
    start = torch.load(work / "trained" / "best.pt", weights_only=True)
    tuned = torch.load(work / "ft" / "best.pt", weights_only=True)
    assert tuned["tokenizer"] == start["tokenizer"] and tuned["config"] == start["config"]
    assert tuned["train_config"]["learning_rate"] == 2e-4  # the finetune preset's: a tenth of cpu-tiny's
    first_eval = [line for line in r.stdout.splitlines() if line.startswith("iter 0:")][0]
    # iteration 0 scores the checkpoint's own weights, not a fresh model's ln(65) = 4.17
    assert float(first_eval.split("val ")[1]) < 4.1


def test_sample_output_writes_the_streamed_text_to_a_file(runs, work):
    r = runs["s-output"]
    assert r.returncode == 0, r.stderr
    assert (work / "written" / "sample.txt").read_text(encoding="utf-8") == r.stdout  # the folder is made
    assert r.stdout.startswith("KING:") and len(r.stdout) == 5 + 50 + 1
    assert r.stderr.splitlines()[-1] == "wrote written/sample.txt"


def test_ctrl_c_during_a_long_sample_keeps_what_was_written(work):
    out = work / "long.txt"
    proc = subprocess.Popen([sys.executable, "-m", "gpt_from_scratch", "sample", "--checkpoint",
                             str(work / "random.pt"), "--device", "cpu", "--max-new-tokens", "1000000",
                             "--output", str(out)], cwd=work, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_as_in_a_terminal)
    try:
        deadline = time.time() + 60
        while (not out.exists() or out.stat().st_size < 200) and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and f"what was written so far is in {out}" in stderr
    kept = out.read_text(encoding="utf-8")
    assert len(kept) >= 200 and stdout.startswith(kept.rstrip("\n"))  # the file holds what was streamed


def test_more_bad_input_is_one_error_line(work):
    (work / "a_file").write_text("not a folder", encoding="utf-8")
    (work / "hello.pt").write_text("hello world", encoding="utf-8")  # torch's legacy path would raise KeyError
    cases = {
        "out-dir is a file": ([*TRAIN, "--data", "small.txt", "--out-dir", "a_file", "--max-iters", "1"],
                              ["a_file", "is a file"]),
        "text as a checkpoint": (["sample", "--checkpoint", "hello.pt"], ["hello.pt", "corrupt"]),
        "shape flags with --init-from": (["train", "--init-from", "trained/best.pt", "--data", "small.txt",
                                          "--n-layer", "2"], ["--init-from", "--n-layer"]),
        "a tokenizer with --init-from": (["train", "--init-from", "trained/best.pt", "--data", "small.txt",
                                          "--tokenizer", "bpe"], ["--init-from", "drop --tokenizer"]),
        "a vocabulary size with --init-from": (["train", "--init-from", "trained/best.pt", "--data", "small.txt",
                                                "--vocab-size", "300"], ["--init-from", "drop --vocab-size"]),
        "a training folder as a checkpoint": (["sample", "--checkpoint", "trained", "--device", "cpu"],
                                              ["trained", "best.pt"]),
        "a window longer than the checkpoint's context": (
            ["train", "--init-from", "trained/best.pt", "--data", "small.txt", "--block-size", "64", "--device", "cpu",
             "--out-dir", "o12"], ["--block-size (64)", "longer than the model's context (16)"]),
    }
    for what, (args, words) in cases.items():
        line = assert_one_error_line(run_main(args, work))
        assert all(w in line for w in words), (what, line)


def test_sample_and_eval_with_a_bpe_checkpoint(work, text):
    """A checkpoint records its tokenizer: sample streams BPE tokens as text (characters split across tokens
    included) and eval reports the loss per character next to the loss per token."""
    tok = gfs.BPETokenizer.train(text[:20_000], 300)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    gfs.save_checkpoint(work / "bpe.pt", model, tok)
    r = run_main(["sample", "--checkpoint", "bpe.pt", "--prompt", "ROMEO:", "--max-new-tokens", "40",
                  "--seed", "3", "--device", "cpu"], work)
    assert r.returncode == 0, r.stderr
    loaded, loaded_tok = gfs.load_checkpoint(work / "bpe.pt")
    assert isinstance(loaded_tok, gfs.BPETokenizer) and loaded_tok.merges == tok.merges
    expected = generate_text(loaded, loaded_tok, "ROMEO:", 40, temperature=0.8,
                             generator=torch.Generator().manual_seed(3))[0]
    assert r.stdout == expected + "\n"
    r = run_main(["eval", "--checkpoint", "bpe.pt", "--data", "small.txt", "--device", "cpu"], work)
    per_token, per_char = (float(line.split()[1]) for line in r.stdout.splitlines())
    assert per_char < per_token  # a BPE token holds more than one character


# --- a CLI that explains itself -----------------------------------------------------------------


def _subparsers(parser):
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_flag_of_every_command_has_help():
    parser = cli.build_parser()
    commands = _subparsers(parser)
    assert set(commands) == {"sample", "train", "eval", "chat", "export"}
    for name, sub in [("", parser), *commands.items()]:
        for action in sub._actions:
            if action.option_strings:
                assert action.help and action.help.strip(), f"{name} {action.option_strings[0]} has no help"
        if name:
            assert "examples:" in sub.epilog and f"python -m gpt_from_scratch {name}" in sub.epilog


def test_version_and_help_print_to_stdout_and_exit_0(tmp_path):
    r = run_main(["--version"], tmp_path)
    assert (r.returncode, r.stdout) == (0, f"gpt_from_scratch {gfs.__version__}\n")
    r = run_main(["train", "--help"], tmp_path)
    assert r.returncode == 0 and "--n-kv-head" in r.stdout and "examples:" in r.stdout
    for name in gfs.PRESETS:  # --preset lists the package's presets
        assert name in r.stdout


def test_device_names(tmp_path):
    """cuda:N is a device name; a name that is no device is refused by argparse, naming --device; a device this
    machine lacks is one error line too."""
    line = assert_one_error_line(run_main(["sample", "--device", "gpu"], tmp_path))
    assert "--device" in line and "cuda:N" in line
    if not torch.cuda.is_available():
        line = assert_one_error_line(run_main(["sample", "--device", "cuda:1", "--max-new-tokens", "1"], tmp_path))
        assert "cuda:1" in line and "not available" in line


def test_only_the_package_errors_are_one_error_line(monkeypatch, tmp_path):
    """A known bad input (the package's own error classes) is one `error:` line with exit code 2; any other
    exception is a bug and keeps its traceback."""
    def fails_with(error):
        def load(checkpoint, device):
            raise error
        return load

    for error in (gfs.CheckpointError("bad checkpoint"), gfs.DataError("bad data"), gfs.ConfigError("bad settings"),
                  cli.TokenizerError("bad tokenizer file")):
        monkeypatch.setattr(cli, "load_for_cli", fails_with(error))
        assert assert_one_error_line(run_main(["sample", "--device", "cpu"], tmp_path)) == f"error: {error}"
    monkeypatch.setattr(cli, "load_for_cli", fails_with(ValueError("an internal bug")))
    with pytest.raises(ValueError, match="an internal bug"):
        run_main(["sample", "--device", "cpu"], tmp_path)


# --- paths no other test runs ----------------------------------------------------------------------


def test_train_compile_on_cpu_compiles_or_falls_back_in_one_line(work, monkeypatch):
    """torch.compile wraps the model for training, evaluation and checkpoints. Inductor's C++ code generation
    takes minutes on a 2-core CPU, so the test compiles with the eager backend: TorchDynamo still captures every
    graph of the training step and the evaluation, and the run must give the same losses as without it."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    args = [*TRAIN, "--data", "small.txt", "--max-iters", "2", "--eval-interval", "2", "--seed", "7"]
    plain = run_main([*args, "--out-dir", "plain"], work)
    compiled = run_main([*args, "--out-dir", "compiled", "--compile"], work)
    assert plain.returncode == 0 and compiled.returncode == 0, compiled.stderr
    assert "Traceback" not in compiled.stderr
    fallback = [line for line in compiled.stdout.splitlines() if "training without it" in line]
    assert len(fallback) <= 1
    # compiled or not, the same model takes the same steps
    last = [float(next(ln for ln in r.stdout.splitlines() if ln.startswith("iter 2:")).split("val ")[1])
            for r in (plain, compiled)]
    assert last[0] == pytest.approx(last[1], abs=1e-3)


def test_train_gradient_checkpointing_flag_gives_the_same_losses(work, monkeypatch):
    import csv
    import torch.utils.checkpoint

    calls, real = [], torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = [*TRAIN, "--data", "small.txt", "--max-iters", "3", "--eval-interval", "3", "--seed", "5"]
    logs = {}
    for flag in ([], ["--gradient-checkpointing"]):
        calls.clear()
        out = "gc-on" if flag else "gc-off"
        r = run_main([*args, *flag, "--out-dir", out], work)
        assert r.returncode == 0, r.stderr
        assert bool(calls) == bool(flag)  # the flag reaches the model
        with open(work / out / "log.csv", encoding="utf-8") as f:
            logs[out] = [(row["iter"], float(row["train_loss"]), float(row["val_loss"])) for row in csv.DictReader(f)]
    assert len(logs["gc-on"]) == 2
    for on, off in zip(logs["gc-on"], logs["gc-off"]):
        assert on[0] == off[0] and on[1:] == pytest.approx(off[1:], abs=1e-5)


def test_train_bpe_end_to_end_and_resume_reuses_its_tokenizer(work, monkeypatch):
    args = [*TRAIN, "--data", "small.txt", "--tokenizer", "bpe", "--vocab-size", "300", "--eval-interval", "2",
            "--out-dir", "bpe-run"]
    r = run_main([*args, "--max-iters", "2"], work)
    assert r.returncode == 0, r.stderr
    first = torch.load(work / "bpe-run" / "ckpt.pt", weights_only=True)
    _, tok = gfs.load_checkpoint(work / "bpe-run" / "ckpt.pt")
    assert isinstance(tok, gfs.BPETokenizer) and tok.vocab_size == 300

    def no_training(*a, **k):
        raise AssertionError("--resume trained the BPE tokenizer again")

    monkeypatch.setattr(gfs.BPETokenizer, "train", classmethod(no_training))
    r = run_main([*args, "--max-iters", "4", "--resume"], work)
    assert r.returncode == 0, r.stderr
    resumed = torch.load(work / "bpe-run" / "ckpt.pt", weights_only=True)
    assert resumed["iter_num"] == 4 and resumed["tokenizer"] == first["tokenizer"]
    r = run_main(["sample", "--checkpoint", "bpe-run/ckpt.pt", "--device", "cpu", "--prompt", "KING:",
                  "--max-new-tokens", "10", "--seed", "1"], work)
    assert r.returncode == 0 and r.stdout.startswith("KING:"), r.stderr


def _gpt2_folder(folder: Path, text: str) -> Path:
    """A tiny random GPT-2 in Hugging Face's layout, with a GPT-2-format tokenizer trained on `text`."""
    import json

    import transformers  # declared in the test extra: its absence fails, never skips
    from gpt_from_scratch.bpe import gpt2_bytes_to_unicode

    tok = gfs.BPETokenizer.train(text, 300)
    to_char = gpt2_bytes_to_unicode()
    name = {i: "".join(to_char[b] for b in tok.vocab[i]) for i in range(tok.vocab_size)}
    assert len(set(name.values())) == tok.vocab_size
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in name.items()}), encoding="utf-8")
    merges = [f"{name[a]} {name[b]}" for (a, b) in tok.merges]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=tok.vocab_size, n_positions=32, n_embd=32, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def test_sample_and_eval_read_a_local_gpt2_folder(work, text):
    folder = _gpt2_folder(work / "gpt2-tiny", text[:20_000])
    r = run_main(["sample", "--checkpoint", str(folder), "--device", "cpu", "--prompt", "ROMEO:",
                  "--max-new-tokens", "20", "--seed", "3"], work)
    assert r.returncode == 0, r.stderr
    model, tok = GPT.from_pretrained(folder), gfs.BPETokenizer.from_pretrained(folder)
    expected = generate_text(model, tok, "ROMEO:", 20, temperature=0.8, generator=torch.Generator().manual_seed(3))
    assert r.stdout == expected[0] + "\n"
    r = run_main(["eval", "--checkpoint", str(folder), "--data", "small.txt", "--device", "cpu"], work)
    assert r.returncode == 0, r.stderr
    val = gfs.train_val_split(text[:20_000], 0.9)[1]
    want = gfs.evaluate_text(model, tok, val, batch_size=32, device=torch.device("cpu"), progress=False)
    assert r.stdout.splitlines()[0] == f"val_loss {want['loss_per_token']:.4f}"


def test_flag_names_use_the_on_spelling_of_on_off_flags():
    """--qk-norm/--no-qk-norm: a message about qk_norm names --qk-norm, the flag that sets it."""
    train = cli._subcommand(cli.build_parser(), "train")
    said = cli.flag_names("qk_norm and tie_weights conflict with max_iters", train)
    assert said == "--qk-norm and --tie-weights conflict with --max-iters"
