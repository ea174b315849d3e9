"""Pretraining mixtures: standard views + masks, zero padding, per-source normalisation, weighted sampler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from data_helpers import V30, write_dataset

from smolvla.data.mixture import MixtureConfig, MixtureDataset, MixtureSampler, MixtureSource, resize_with_pad

VIEWS = ("observation.images.image1", "observation.images.image2", "observation.images.image3")


@pytest.fixture
def side_only(tmp_path):
    return write_dataset(tmp_path / "side", lengths=(12, 10), cams=("observation.images.side",), dim=3)


def _mixture(side_only, **kw) -> MixtureDataset:
    sources = (MixtureSource(str(V30), weight=3.0), MixtureSource(str(side_only), weight=1.0))
    return MixtureDataset(MixtureConfig(sources=sources, **kw))


def test_views_masks_and_padding(fixtures, side_only):
    mix = _mixture(side_only)
    assert len(mix) == 120 + 22
    a, b = mix[30], mix[120 + 5]
    assert [a[f"{v}_is_pad"].item() for v in VIEWS] == [False, False, True]  # top, wrist present; no side
    assert [b[f"{v}_is_pad"].item() for v in VIEWS] == [True, True, False]  # only side
    assert torch.count_nonzero(a[VIEWS[2]]) == 0 and torch.count_nonzero(b[VIEWS[0]]) == 0
    assert a[VIEWS[0]].shape == (3, 96, 128) and b[VIEWS[2]].shape == (3, 48, 64)
    raw = mix.datasets[0][30]
    assert torch.equal(a[VIEWS[0]], raw["observation.images.top"]) and torch.equal(
        a[VIEWS[1]], raw["observation.images.wrist"]
    )
    assert a["observation.state"].shape == (32,) and a["action"].shape == (50, 32)
    assert (a["state_dim"].item(), a["action_dim"].item(), b["state_dim"].item(), b["action_dim"].item()) == (
        6,
        6,
        3,
        3,
    )
    assert torch.count_nonzero(a["observation.state"][6:]) == 0 and torch.count_nonzero(b["action"][:, 3:]) == 0
    assert a["action_is_pad"].tolist() == [False] * 10 + [True] * 40
    assert (a["source_index"].item(), b["source_index"].item()) == (0, 1)
    assert a["task"] == raw["task"] and a["index"].item() == 30


def test_per_source_normalisation(fixtures, side_only):
    mix = _mixture(side_only)
    stats = json.loads((V30 / "meta" / "stats.json").read_text())["observation.state"]
    raw = mix.datasets[0][7]["observation.state"][0]
    expected = (raw - torch.tensor(stats["mean"], dtype=torch.float32)) / (
        torch.tensor(stats["std"], dtype=torch.float32) + 1e-8
    )
    torch.testing.assert_close(mix[7]["observation.state"][:6], expected)
    raw_mix = _mixture(side_only, normalize=False)
    assert torch.equal(raw_mix[7]["observation.state"][:6], raw)


def test_resize_and_collate(fixtures, side_only):
    mix = _mixture(side_only, image_size=(64, 64))
    batch = next(iter(torch.utils.data.DataLoader(mix, batch_size=4, sampler=[0, 125, 50, 140])))
    assert batch[VIEWS[0]].shape == (4, 3, 64, 64)
    assert batch[f"{VIEWS[2]}_is_pad"].squeeze(1).tolist() == [True, False, True, False]
    img = torch.ones(3, 96, 128)
    out = resize_with_pad(img, 64, 64)  # 96x128 -> 48x64, padded on top with 16 rows of zeros
    assert (
        out.shape == (3, 64, 64) and out[:, :16].abs().sum() == 0 and torch.allclose(out[:, 16:], torch.ones(3, 48, 64))
    )


def test_camera_mapping_rules(fixtures, tmp_path):
    front = write_dataset(tmp_path / "front", lengths=(6,), cams=("observation.images.front",), dim=3)
    with pytest.raises(
        ValueError, match=r"camera 'observation.images.front' has no default view; add it to camera_mapping"
    ):
        MixtureDataset(MixtureConfig(sources=(MixtureSource(str(front)),)))
    mapped = MixtureSource(str(front), camera_mapping={"observation.images.front": "observation.images.image3"})
    item = MixtureDataset(MixtureConfig(sources=(mapped,)))[0]
    assert item[f"{VIEWS[2]}_is_pad"].item() is False and item[f"{VIEWS[0]}_is_pad"].item() is True
    with pytest.raises(ValueError, match=r"mapped to 'image9'; expected one of"):
        MixtureSource(str(front), camera_mapping={"observation.images.front": "image9"})
    with pytest.raises(ValueError, match="two cameras map to observation.images.image1"):
        MixtureDataset(
            MixtureConfig(
                sources=(
                    MixtureSource(
                        str(V30),
                        camera_mapping={"observation.images.top": VIEWS[0], "observation.images.wrist": VIEWS[0]},
                    ),
                )
            )
        )
    with pytest.raises(ValueError, match="weight must be > 0"):
        MixtureSource(str(front), weight=0)


def test_config_json_round_trip(tmp_path):
    cfg = MixtureConfig(
        sources=(MixtureSource("/a", 2.0, {"observation.images.cam": VIEWS[1]}, (0, 3)), MixtureSource("/b")),
        image_size=(512, 512),
    )
    path = tmp_path / "mix.json"
    path.write_text(cfg.to_json())
    assert MixtureConfig.from_json(path) == cfg
    with pytest.raises(ValueError, match=r"unknown mixture config keys \['sourcez'\]"):
        MixtureConfig.from_dict({"sources": [], "sourcez": 1})


def test_sampler_is_weighted_and_deterministic():
    sampler = MixtureSampler([100, 1000], [3.0, 1.0], num_samples=4000, seed=7)
    first = list(sampler)
    assert first == list(sampler) and len(first) == 4000
    sampler.set_epoch(1)
    assert list(sampler) != first
    idx = np.array(first)
    assert abs((idx < 100).mean() - 0.75) < 0.03  # source 0 drawn with probability 3/4 despite being 10x smaller
    assert idx.min() >= 0 and idx.max() < 1100
    with pytest.raises(ValueError, match="need one weight per source"):
        MixtureSampler([10], [1.0, 2.0], 5)
