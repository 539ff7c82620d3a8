"""torchrun: one process per GPU (or CPU process under gloo), the process group and this rank's device."""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dehrnet_cli.pose.backends import resolve_device


@dataclass(frozen=True)
class DistContext:
    rank: int
    world: int
    local_rank: int
    device: str
    owns_group: bool = False  # this run started the process group (and ends it)
    ddp: bool = False  # the model trains wrapped in DistributedDataParallel over the process group

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_flag: str) -> DistContext:
    """Read torchrun's environment; start the process group (NCCL on GPU, gloo on CPU) when WORLD_SIZE > 1, or
    join the one the caller started (then even a single process trains through DDP)."""
    device = resolve_device(device_flag)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if dist.is_initialized():  # the caller started the group (of any size, one process included): DDP over it
        world, rank = dist.get_world_size(), dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", rank))
    elif world <= 1:
        return DistContext(0, 1, 0, device)
    else:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    owns_group = not dist.is_initialized()
    if owns_group:  # validation runs on rank 0 alone while the others wait: a long timeout
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=_dt.timedelta(minutes=60))
    return DistContext(rank, world, local, device, owns_group, ddp=True)
