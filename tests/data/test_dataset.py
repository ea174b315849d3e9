"""LeRobotDataset parity with what LeRobot's own reader returned on the shared fixtures.

Pixels must match exactly: the spec (lerobot_dataset_format.md, section 7) states that decoding with FFmpeg/dav1d
and converting with swscale defaults (PyAV `to_ndarray("rgb24")`) reproduces LeRobot's frames bit for bit,
so the tolerance is 0 on the uint8 values (the refs store round(value * 255)).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from data_helpers import REF, V21, V30
from safetensors.numpy import load_file

from smolvla.data import LeRobotDataset


def _check_item(item: dict, ref: dict, tensors: dict, idx: str) -> None:
    assert list(item) == list(ref), "keys (and their order) differ from LeRobot's"
    for key, spec in ref.items():
        value = item[key]
        if key == "task":
            assert value == spec["value"]
            continue
        assert value.dtype == getattr(torch, spec["dtype"]), key
        assert list(value.shape) == spec["shape"], key
        if key.startswith("observation.images.") and not key.endswith("_is_pad"):
            as_uint8 = (value * 255).round().to(torch.uint8)
            assert torch.equal(as_uint8.float() / 255, value), f"{key}: not an exact uint8/255 image"
            assert hashlib.sha256(as_uint8.numpy().tobytes()).hexdigest() == spec["sha256_uint8"], key
            if f"{idx}/{key}" in tensors:
                np.testing.assert_array_equal(as_uint8.numpy(), tensors[f"{idx}/{key}"], err_msg=key)
        elif f"{idx}/{key}" in tensors:
            np.testing.assert_array_equal(value.numpy(), tensors[f"{idx}/{key}"], err_msg=key)
        else:
            np.testing.assert_array_equal(value.numpy(), np.array(spec["value"]), err_msg=key)


@pytest.mark.parametrize("version", ["v30", "v21"])
@pytest.mark.parametrize("config", ["none", "action50", "smolvla"])
def test_items_equal_lerobot(fixtures, version, config):
    ref = json.loads((REF / f"{version}__so100_2cam__{config}.json").read_text())
    tensors = load_file(REF / f"{version}__so100_2cam__{config}.safetensors")
    ds = LeRobotDataset(V30 if version == "v30" else V21, delta_timestamps=ref["delta_timestamps"])
    assert len(ds) == ref["len"] and ds.num_episodes == ref["num_episodes"] and ds.fps == ref["fps"]
    assert ds.camera_keys == ref["camera_keys"]
    for idx, expected in ref["items"].items():
        _check_item(ds[int(idx)], expected, tensors, idx)


def test_smolvla_padding_semantics(fixtures):
    ref = json.loads((REF / "v30__so100_2cam__smolvla.json").read_text())
    item = LeRobotDataset(V30, delta_timestamps=ref["delta_timestamps"])[30]  # frame 30 of a 40-frame episode
    assert item["action_is_pad"].tolist() == [False] * 10 + [True] * 40
    assert torch.equal(item["action"][10:], item["action"][9:10].expand(40, -1))  # repeats the last frame
    assert item["observation.images.top"].shape == (3, 96, 128)  # single camera query squeezed


def test_episode_subset_keeps_global_indices(fixtures):
    full = LeRobotDataset(V30, delta_timestamps={"action": [-0.1, 0.0, 0.1]})
    sub = LeRobotDataset(V30, delta_timestamps={"action": [-0.1, 0.0, 0.1]}, episodes=[1])
    assert len(sub) == 40 and sub.num_episodes == 1
    a, b = sub[0], full[40]
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k] if k == "task" else torch.equal(a[k], b[k]), k
    assert a["action_is_pad"].tolist() == [True, False, False]


def test_return_uint8_and_index_errors(fixtures):
    ds = LeRobotDataset(V30, return_uint8=True)
    assert ds[5]["observation.images.top"].dtype == torch.uint8
    with pytest.raises(IndexError, match="index 120 out of range for a dataset of 120 frames"):
        ds[120]
    with pytest.raises(ValueError, match=r"episodes \[7\] out of range: the dataset has 3 episodes"):
        LeRobotDataset(V30, episodes=[7])


def test_delta_timestamps_are_validated(fixtures):
    with pytest.raises(ValueError, match=r"delta_timestamps\['action'\] contains 0.01s, which is not a multiple"):
        LeRobotDataset(V30, delta_timestamps={"action": [0.0, 0.01]})
    with pytest.raises(ValueError, match="delta_timestamps key 'actions' is not a dataset feature"):
        LeRobotDataset(V30, delta_timestamps={"actions": [0.0]})


def test_dataloader_workers_match_single_process(fixtures):
    delta = {"action": [i / 30 for i in range(5)], "observation.images.top": [0.0]}
    ds = LeRobotDataset(V30, delta_timestamps=delta)
    idx = [3, 77, 41, 119, 0, 64, 12, 100]

    def batches(workers: int):
        sampler = torch.utils.data.SequentialSampler(idx)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(ds, idx), batch_size=4, num_workers=workers, sampler=sampler
        )
        return list(loader)

    ds[50]  # open containers in the parent first: forked workers must not reuse them
    for a, b in zip(batches(0), batches(2), strict=True):
        for k in a:
            assert a[k] == b[k] if k == "task" else torch.equal(a[k], b[k]), k


def test_v20_and_v21_stats(fixtures, tmp_path):
    from data_helpers import copy_tree

    v21 = LeRobotDataset(V21)  # v2.1: stats aggregated from episodes_stats.jsonl
    assert v21.meta.stats["action"]["count"].tolist() == [120]
    np.testing.assert_allclose(v21.meta.stats["action"]["mean"], np.arange(6) * 0.125 + 1020.0)
    root = copy_tree(V21, tmp_path / "v20")
    info = json.loads((root / "meta/info.json").read_text())
    (root / "meta/info.json").write_text(json.dumps(info | {"codebase_version": "v2.0"}))
    (root / "meta/episodes_stats.jsonl").unlink()
    (root / "meta/stats.json").write_text((V30 / "meta/stats.json").read_text())  # v2.0 kept one stats.json
    v20 = LeRobotDataset(root)
    assert v20.meta.version == "v2.0" and v20.meta.stats["action"]["count"].tolist() == [120]
    assert torch.equal(v20[77]["observation.images.wrist"], v21[77]["observation.images.wrist"])
