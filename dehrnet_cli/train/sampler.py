"""Each rank's share of a shuffled epoch, resumable in the middle of an epoch."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler, Sampler


class EpochSampler(Sampler):
    """One rank's share of a shuffled epoch (torch's DistributedSampler: seed + epoch), yielding
    (epoch, index) keys. `set_epoch(epoch, skip)` starts an epoch, skipping its first `skip` samples
    (a run resumed in the middle of an epoch)."""

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 shuffle: bool = True) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for n, index in enumerate(self.inner):
            if n >= self.skip:
                yield self.epoch, int(index)

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)
