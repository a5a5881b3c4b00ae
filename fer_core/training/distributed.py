"""Multi-process training under torchrun: this process's rank, the process group, and its share of an epoch."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..models.devices import uses_cuda


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when started directly)."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Distributed:
    """Join the process group torchrun set up: NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    use_cuda = device_name != "cpu" and uses_cuda("auto")  # a GPU job's ranks each take their local GPU
    dist.init_process_group("nccl" if use_cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    return Distributed(dist.get_rank(), world, local_rank)


def shard(order: torch.Tensor, ddp: Distributed) -> torch.Tensor:
    """This rank's share of an epoch, as DistributedSampler does: pad to a multiple, take every world-th."""
    if ddp.world == 1:
        return order
    padded = torch.cat([order, order[:(-len(order)) % ddp.world]])
    return padded[ddp.rank::ddp.world]
