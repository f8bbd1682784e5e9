"""`torchrun --nproc_per_node=2 -m gpt_from_scratch train`: DistributedDataParallel on CPU (gloo),
with gradient accumulation, and a resume that continues exactly where an uninterrupted run would be."""

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

pytestmark = [
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo"),
    pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo is not supported on Windows"),
]

# 2 layers of a tiny model, 2 micro-steps per step, a schedule that does not depend on --max-iters
TRAIN = [
    "train", "--preset", "cpu-tiny", "--device", "cpu", "--data", "small.txt", "--eval-interval", "2",
    "--eval-iters", "2", "--no-progress", "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--block-size", "16",
    "--batch-size", "4", "--grad-accum", "2", "--lr-decay-iters", "6", "--warmup-iters", "2",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(cwd, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
        "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}", "--max-restarts=0",
        "-m", "gpt_from_scratch", *TRAIN, *args,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo",
               MASTER_ADDR="127.0.0.1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT"):
        env.pop(var, None)
    if sys.platform == "darwin":
        env["GLOO_SOCKET_IFNAME"] = "lo0"
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return r


def test_two_cpu_processes_train_accumulate_and_resume_exactly(tmp_path, text):
    (tmp_path / "small.txt").write_text(text[:20_000], encoding="utf-8")
    out = torchrun(tmp_path, "--out-dir", "out", "--max-iters", "4").stdout
    assert "DistributedDataParallel: 2 processes, backend gloo" in out
    assert f"| {4 * 16 * 2 * 2:,} tokens per step" in out  # batch * block * grad-accum * processes
    # one set of evaluation lines: rank 0 reports, rank 1 stays quiet
    evals = [line for line in out.splitlines() if line.startswith("iter ")]
    assert [line.split(":")[0] for line in evals] == ["iter 0", "iter 2", "iter 4"], out
    assert out.count("model:") == 1 and out.count("done:") == 1
    ckpt = torch.load(tmp_path / "out" / "ckpt.pt", weights_only=True)
    assert ckpt["iter_num"] == 4 and ckpt["world_size"] == 2
    assert len(ckpt["rng"]["batch"]) == 2  # both ranks' data order, for an exact resume
    assert not torch.equal(ckpt["rng"]["batch"][0], ckpt["rng"]["batch"][1])  # different data per rank
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt["model"])
    assert (tmp_path / "out" / "best.pt").is_file() and (tmp_path / "out" / "log.csv").is_file()

    # resume to 6 steps, and compare with 6 steps in one go
    out = torchrun(tmp_path, "--out-dir", "out", "--max-iters", "6", "--resume").stdout
    assert "resumed from out/ckpt.pt at iteration 4" in out and out.count("resumed") == 1
    torchrun(tmp_path, "--out-dir", "straight", "--max-iters", "6")
    resumed = torch.load(tmp_path / "out" / "ckpt.pt", weights_only=True)
    straight = torch.load(tmp_path / "straight" / "ckpt.pt", weights_only=True)
    assert resumed["iter_num"] == straight["iter_num"] == 6
    for name, tensor in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    assert [h["val_loss"] for h in resumed["history"]] == pytest.approx([h["val_loss"] for h in straight["history"]])
