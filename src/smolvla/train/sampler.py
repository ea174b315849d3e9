"""A deterministic, resumable batch sampler (single dataset or weighted mixture).

Batches are a pure function of (seed, epoch, batch position): epoch e draws its order from a
generator seeded with `seed + e`, so resuming only needs `(epoch, offset)` and never a saved RNG.
The training loop, not the DataLoader, advances the position (`advance()` after each step), so
prefetching workers do not make the saved position run ahead of what was trained on.

Distributed: every rank walks the same global order; rank r keeps `batch[r::world_size]`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplerState:
    """Where the data stream stands: `offset` batches of epoch `epoch` have been consumed."""

    epoch: int = 0
    offset: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> SamplerState:
        return cls(epoch=int(d["epoch"]), offset=int(d["offset"]))


class ResumableBatchSampler:
    """Yields lists of dataset indices forever (epoch after epoch), starting at a saved position.

    sizes: frames per dataset in the (concatenated) mixture; weights: their sampling weights, or None for
    a plain shuffled pass over every frame. With weights, an epoch draws `sum(sizes)` frames with
    replacement, each dataset taking a share proportional to its weight (frames uniform within it).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        weights: Sequence[float] | None = None,
        rank: int = 0,
        world_size: int = 1,
        state: SamplerState | None = None,
    ) -> None:
        total = sum(sizes)
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of processes ({world_size})")
        if total < batch_size:
            raise ValueError(f"the dataset has {total} frames, fewer than one batch of {batch_size}")
        if weights is not None and len(weights) != len(sizes):
            raise ValueError(f"got {len(weights)} mixture weights for {len(sizes)} datasets")
        self.sizes = list(sizes)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.weights = list(weights) if weights is not None else None
        self.rank = rank
        self.world_size = world_size
        self.state = state or SamplerState()
        self.batches_per_epoch = total // batch_size  # drop_last: every batch has the same shape

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """int64[batches_per_epoch * batch_size]: global frame indices of `epoch`, in visiting order."""
        total = sum(self.sizes)
        g = torch.Generator().manual_seed(self.seed + epoch)
        if self.weights is None:
            order = torch.randperm(total, generator=g) if self.shuffle else torch.arange(total)
        else:
            # Per-frame probability: dataset weight spread evenly over its frames.
            per_frame = torch.cat(
                [torch.full((n,), w / n, dtype=torch.float64) for n, w in zip(self.sizes, self.weights, strict=True)]
            )
            order = torch.multinomial(per_frame, total, replacement=True, generator=g)
        return order[: self.batches_per_epoch * self.batch_size]

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = self.state.epoch, self.state.offset
        while True:
            order = self._epoch_order(epoch).view(self.batches_per_epoch, self.batch_size)
            for b in range(offset, self.batches_per_epoch):
                yield order[b, self.rank :: self.world_size].tolist()
            epoch, offset = epoch + 1, 0

    def advance(self) -> None:
        """Mark one more batch as consumed (call once per optimiser step)."""
        offset = self.state.offset + 1
        if offset >= self.batches_per_epoch:
            self.state = SamplerState(epoch=self.state.epoch + 1, offset=0)
        else:
            self.state = SamplerState(epoch=self.state.epoch, offset=offset)
