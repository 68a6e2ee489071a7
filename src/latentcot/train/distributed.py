"""Process-group set-up for one process or many under ``torchrun``, in one helper.

The same entry point runs both ways (nanoGPT / nanochat style)::

    latentcot train cfg.yaml                                    # one process
    torchrun --nproc_per_node 4 -m latentcot.cli train cfg.yaml # four processes

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
without them we run as a single process and create no process group at all.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class DistContext:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 on a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the device this process trains on.
        owns_group: True when :func:`init_distributed` created the process group (and
            :meth:`close` should destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs, shows progress and writes checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (a no-op on one process)."""
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group if we created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_group = False

    def __enter__(self) -> DistContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def init_distributed(seed: int | None = None) -> DistContext:
    """Detect torchrun, create the process group (nccl on CUDA, gloo on CPU) and seed.

    Calling it again (or after someone else created the group) returns the context of the
    existing group without re-initialising it.

    Args:
        seed: if given, seed python/numpy/torch with ``seed + rank`` so ranks draw different
            dropout masks while the run stays reproducible.

    Returns:
        The :class:`DistContext` of this process; use it as a context manager (or call
        ``close()``) to tear the group down at the end.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    owns_group = False
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    elif world_size > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        owns_group = True
    device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if seed is not None:
        seed_everything(seed + rank)
    return DistContext(rank, world_size, local_rank, device, owns_group)
