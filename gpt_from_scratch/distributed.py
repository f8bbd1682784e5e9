"""DistributedDataParallel for the training loop, in one small place.

Under `torchrun --nproc_per_node=N` every process runs the same loop on its own
batches; DDP averages the gradients. The loop asks this helper four things:
which device to use, whether it is the process that reports (rank 0), what
rank 0 measured (so every process takes the same branch), and whether any
process was asked to stop. Without torchrun all of them are trivial.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.nn as nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module  # DistributedDataParallel
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod  # torch.compile
        else:
            return model


@dataclass
class Distributed:
    enabled: bool = False
    rank: int = 0
    local_rank: int = 0
    world: int = 1
    backend: str | None = None

    @property
    def master(self) -> bool:
        """The process that logs, evaluates for everyone and writes files."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device_pref: str = "auto") -> "Distributed":
        """Join the process group when torchrun started us (it sets RANK); else a single process."""
        rank = int(os.environ.get("RANK", -1))
        if rank == -1:
            return cls()
        import torch.distributed as dist

        gpu = torch.cuda.is_available() and device_pref in ("auto", "cuda")
        backend = "nccl" if gpu else "gloo"
        dist.init_process_group(backend=backend)
        return cls(True, rank, int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), backend)

    def device(self) -> torch.device:
        if self.backend == "nccl":
            device = torch.device(f"cuda:{self.local_rank}")
            torch.cuda.set_device(device)
            return device
        return torch.device("cpu")

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    def no_sync(self, model: nn.Module, last_micro_step: bool):
        """Skip the gradient all-reduce on every micro-step but the last one."""
        if self.enabled and not last_micro_step:
            return model.no_sync()
        return contextlib.nullcontext()

    def from_master(self, values: list[float], device: torch.device) -> list[float]:
        """Rank 0's numbers on every rank."""
        if not self.enabled:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, device=device)
        dist.broadcast(t, src=0)
        return t.tolist()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is True on any rank (e.g. Ctrl-C reached one of them)."""
        if not self.enabled:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self, ok: bool) -> None:
        """Leave the process group. After a good run, wait for all ranks first: tearing gloo down
        while a peer still writes its logs can abort it ("terminate called without an active exception")."""
        if not self.enabled:
            return
        import torch.distributed as dist

        if ok:
            dist.barrier()
        dist.destroy_process_group()
