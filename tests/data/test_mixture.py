"""Mixtures: the file format, camera mapping to the standard views, masks, padding, per-dataset normalisation."""

from __future__ import annotations

import json

import pytest
import torch
from data_helpers import write_dataset

from smolvla.data.dataset import LeRobotDataset
from smolvla.data.meta import load_meta
from smolvla.data.mixture import MixtureConfig, MixtureSource, camera_views, load_mixture, view_order
from smolvla.data.mixture_dataset import MixtureSourceDataset, resize_with_pad
from smolvla.types import ACTION, ACTION_DIM_IS_PAD, ACTION_IS_PAD, OBS_IMAGES_IS_PAD, OBS_STATE

VIEWS = ("observation.images.image1", "observation.images.image2", "observation.images.image3")
CHUNK, SIZE = 4, 32


@pytest.fixture
def two_cam(tmp_path):
    return write_dataset(tmp_path / "two_cam", lengths=(12, 10))  # top + wrist, 6 dims, 48x64


@pytest.fixture
def laptop(tmp_path):
    cams = ("observation.images.laptop", "observation.images.phone")
    return write_dataset(tmp_path / "laptop", lengths=(8,), cams=cams, dim=3, tasks=["Hold"])


def _source_dataset(source: MixtureSource, index: int = 0) -> MixtureSourceDataset:
    meta = load_meta(source.root)
    base = LeRobotDataset(source.root, delta_timestamps={ACTION: [k / meta.fps for k in range(CHUNK)]})
    return MixtureSourceDataset(base, meta, source, index, SIZE, 32, 32)


def test_standard_views_masks_and_padding(two_cam, laptop):
    a = _source_dataset(MixtureSource(str(two_cam)))[5]
    b = _source_dataset(MixtureSource(str(laptop), cameras={"laptop": "image3", "phone": None}), 1)[7]
    assert a[OBS_IMAGES_IS_PAD].tolist() == [False, False, True]  # top -> image1, wrist -> image2 by name
    assert b[OBS_IMAGES_IS_PAD].tolist() == [True, True, False]  # laptop -> image3, phone dropped on purpose
    for item in (a, b):
        assert all(item[v].shape == (3, SIZE, SIZE) for v in VIEWS)
    assert torch.count_nonzero(a[VIEWS[2]]) == 0 and torch.count_nonzero(b[VIEWS[0]]) == 0  # absent: zeros
    raw = LeRobotDataset(two_cam)[5]["observation.images.top"]
    torch.testing.assert_close(a[VIEWS[0]], resize_with_pad(raw, SIZE))  # the policy's resize, aspect kept
    assert a[OBS_STATE].shape == (32,) and a[ACTION].shape == (CHUNK, 32)
    assert torch.count_nonzero(b[OBS_STATE][3:]) == 0 and torch.count_nonzero(b[ACTION][:, 3:]) == 0
    assert b[ACTION_DIM_IS_PAD].tolist() == [False] * 3 + [True] * 29
    assert a[ACTION_DIM_IS_PAD].tolist() == [False] * 6 + [True] * 26
    assert b[ACTION_IS_PAD].tolist() == [False, True, True, True]  # last frame of its 8-frame episode
    assert (a["source_index"].item(), b["source_index"].item()) == (0, 1)
    batch = torch.utils.data.default_collate([a, b])  # every dataset has one layout: they collate
    assert batch[OBS_IMAGES_IS_PAD].shape == (2, 3) and batch[ACTION].shape == (2, CHUNK, 32)


def test_each_dataset_is_normalised_with_its_own_statistics(two_cam, laptop):
    for root in (two_cam, laptop):
        src = MixtureSource(str(root), cameras={"laptop": "image1", "phone": "image2"} if root == laptop else {})
        ds = _source_dataset(src)
        stats = json.loads((root / "meta" / "stats.json").read_text())
        raw = LeRobotDataset(root)[3]
        dim = len(stats[OBS_STATE]["mean"])
        for key, got in ((OBS_STATE, ds[3][OBS_STATE][:dim]), (ACTION, ds[3][ACTION][0, :dim])):
            mean, std = (torch.tensor(stats[key][s], dtype=torch.float32) for s in ("mean", "std"))
            torch.testing.assert_close(got, (raw[key] - mean) / (std + 1e-8))
    # Datasets 1000 units apart (episode offsets) both come out near zero mean: one pooled mean could not do that.
    states = torch.stack([_source_dataset(MixtureSource(str(two_cam)))[i][OBS_STATE][:6] for i in range(22)])
    assert states.mean(0).abs().max() < 0.1


def test_unmapped_camera_is_an_error_naming_it_and_the_options(laptop):
    meta = load_meta(laptop)
    with pytest.raises(
        ValueError,
        match=r"camera 'laptop' has no standard view; map it in \"cameras\" to one of \['image1', 'image2', "
        r"'image3'\] \(image1 top, image2 wrist, image3 side\) or to null to drop it",
    ):
        camera_views(MixtureSource(str(laptop)), meta)
    with pytest.raises(ValueError, match=r"camera 'phone' has no standard view"):  # one mapped is not enough
        camera_views(MixtureSource(str(laptop), cameras={"laptop": "image1"}), meta)
    with pytest.raises(ValueError, match=r"\"cameras\" names \['front'\], not cameras of it: \['laptop', 'phone'\]"):
        camera_views(MixtureSource(str(laptop), cameras={"front": "image1", "laptop": "image2"}), meta)
    with pytest.raises(ValueError, match=r"every camera is dropped; keep at least one of \['laptop', 'phone'\]"):
        camera_views(MixtureSource(str(laptop), cameras={"laptop": None, "phone": None}), meta)
    with pytest.raises(ValueError, match=r"camera 'laptop' mapped to 'image4'; expected one of"):
        MixtureSource(str(laptop), cameras={"laptop": "image4"})
    with pytest.raises(ValueError, match="two cameras map to one view"):
        MixtureSource(str(laptop), cameras={"laptop": "image1", "phone": "image1"})
    assert camera_views(MixtureSource(str(laptop), cameras={"laptop": "image1", "phone": "image2"}), meta) == {
        "observation.images.laptop": VIEWS[0],
        "observation.images.phone": VIEWS[1],
    }


def test_relabel_table(laptop):
    src = MixtureSource(str(laptop), cameras={"laptop": "image1", "phone": None}, relabel={"Hold": "pick up the cube"})
    assert _source_dataset(src)[0]["task"] == "pick up the cube"
    with pytest.raises(ValueError, match=r"relabel names tasks \['Grab'\] it does not have: \['Hold'\]"):
        _source_dataset(MixtureSource(str(laptop), cameras={"laptop": "image1", "phone": None}, relabel={"Grab": "x"}))


def test_mixture_file_paths_are_relative_to_it_and_confined(tmp_path, two_cam):
    (tmp_path / "mix.json").write_text(json.dumps({"datasets": [{"root": "two_cam", "weight": 2}]}))
    cfg = load_mixture(tmp_path / "mix.json")
    assert cfg.datasets[0].root == str(two_cam.resolve()) and cfg.datasets[0].weight == 2.0
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "mix.json").write_text(json.dumps({"datasets": [{"root": "../two_cam"}]}))
    with pytest.raises(ValueError, match=r"path '../two_cam' in .*mix.json datasets\[0\].root escapes"):
        load_mixture(sub / "mix.json")
    (sub / "mix.json").write_text(json.dumps({"datasets": [{"root": str(two_cam)}]}))
    with pytest.raises(ValueError, match="is absolute; only paths inside"):
        load_mixture(sub / "mix.json")
    (tmp_path / "bad.json").write_text(json.dumps({"datasets": [{"root": "two_cam", "camera": {}}]}))
    unknown = r"bad.json: unknown MixtureSource keys \['camera'\].*did you mean 'camera' -> 'cameras'"
    with pytest.raises(ValueError, match=unknown):
        load_mixture(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text(json.dumps({"datasets": [{"root": "two_cam", "cameras": {"top": 1}}]}))
    with pytest.raises(ValueError, match=r"datasets\[0\].cameras.top: expected str or null, got 1"):
        load_mixture(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"a mixture needs at least one dataset"):
        MixtureConfig.from_dict({"datasets": []})
    with pytest.raises(FileNotFoundError, match="mixture file .*nope.json does not exist"):
        load_mixture(tmp_path / "nope.json")


def test_resize_is_the_policys():
    from smolvla.policy.transforms import resize_with_pad as policy_resize

    img = torch.rand(3, 48, 64)
    assert torch.equal(resize_with_pad(img, 32), policy_resize(img[None], 32)[0])
    assert torch.equal(resize_with_pad(img[:, :32, :32], 32), img[:, :32, :32])


def test_round_trip_and_view_order():
    cfg = MixtureConfig((MixtureSource("/a", 2.0, {"laptop": "image1", "phone": None}, {"Hold": "hold the cube"}),))
    assert MixtureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    keys = ("observation.images.wrist", "observation.images.front", "observation.images.top")
    assert view_order(keys) == ("observation.images.top", "observation.images.wrist", "observation.images.front")
