"""The resumable sampler: deterministic, resumable at any position, sharded, weighted mixtures."""

from __future__ import annotations

import itertools

import pytest

from smolvla.train.sampler import ResumableBatchSampler, SamplerState


def _take(sampler: ResumableBatchSampler, n: int) -> list[list[int]]:
    out = []
    for batch in itertools.islice(iter(sampler), n):
        out.append(batch)
        sampler.advance()
    return out


def test_epoch_is_a_permutation_and_seed_decides_order() -> None:
    s = ResumableBatchSampler([10, 6], batch_size=4, seed=3)
    epoch = _take(s, s.batches_per_epoch)
    flat = sorted(i for b in epoch for i in b)
    assert len(flat) == 16 and flat == list(range(16))
    again = _take(ResumableBatchSampler([10, 6], batch_size=4, seed=3), 4)
    other = _take(ResumableBatchSampler([10, 6], batch_size=4, seed=4), 4)
    assert again == epoch and other != epoch


def test_resume_continues_exactly() -> None:
    full = _take(ResumableBatchSampler([11], batch_size=3, seed=0), 9)  # 3 batches/epoch: crosses 2 epochs
    s = ResumableBatchSampler([11], batch_size=3, seed=0)
    first = _take(s, 4)
    assert s.state == SamplerState(epoch=1, offset=1)
    resumed = ResumableBatchSampler([11], batch_size=3, seed=0, state=SamplerState.from_dict(s.state.to_dict()))
    assert first + _take(resumed, 5) == full


def test_ranks_split_each_global_batch() -> None:
    whole = _take(ResumableBatchSampler([12], batch_size=4, seed=1), 3)
    r0 = _take(ResumableBatchSampler([12], batch_size=4, seed=1, rank=0, world_size=2), 3)
    r1 = _take(ResumableBatchSampler([12], batch_size=4, seed=1, rank=1, world_size=2), 3)
    assert [sorted(a + b) for a, b in zip(r0, r1, strict=True)] == [sorted(b) for b in whole]


def test_mixture_weights_set_the_share() -> None:
    s = ResumableBatchSampler([100, 100], batch_size=50, seed=0, weights=[3.0, 1.0])
    drawn = [i for b in _take(s, 40) for i in b]
    share_first = sum(i < 100 for i in drawn) / len(drawn)
    assert share_first == pytest.approx(0.75, abs=0.03)


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"batch_size \(5\) must be divisible by the number of processes \(2\)"):
        ResumableBatchSampler([10], batch_size=5, seed=0, world_size=2)
    with pytest.raises(ValueError, match="the dataset has 3 frames, fewer than one batch of 4"):
        ResumableBatchSampler([3], batch_size=4, seed=0)
    with pytest.raises(ValueError, match="got 1 mixture weights for 2 datasets"):
        ResumableBatchSampler([3, 3], batch_size=2, seed=0, weights=[1.0])
