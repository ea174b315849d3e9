"""LeRobot `image` features (PNG inside the data parquet): write -> read round trips, v2.1 layout, padding,
error cases, statistics, DataLoader workers and HF `datasets` compatibility of the written files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from data_helpers import copy_tree, episode_arrays
from PIL import Image

from smolvla.data import DatasetFormatError, DatasetWriter, LeRobotDataset, load_meta
from smolvla.data.restats import compute_dataset_stats, write_dataset_stats
from smolvla.data.tables import read_episode_stats

CAM = "observation.images.top"
H, W = 48, 64
LENGTHS = (12, 10, 14)
DATA = "data/chunk-000/file-000.parquet"


def _frames(length: int, episode: int) -> np.ndarray:
    """uint8[T, H, W, 3] noise: any lossy step would show."""
    return np.random.default_rng(episode).integers(0, 256, (length, H, W, 3), dtype=np.uint8)


def _features(video: str | None = None) -> dict:
    feats = {
        "observation.state": {"dtype": "float32", "shape": [6]},
        CAM: {"dtype": "image", "shape": [H, W, 3]},
        "action": {"dtype": "float32", "shape": [6]},
    }
    return feats | ({video: {"dtype": "video", "shape": [H, W, 3]}} if video else {})


def _episode(ep: int, video: str | None = None) -> dict[str, np.ndarray]:
    arrays = episode_arrays(LENGTHS[ep], ep, cams=(video,) if video else ())
    return arrays | {CAM: _frames(LENGTHS[ep], ep)}


def _write(root: Path, video: str | None = None, **kw) -> Path:
    writer = DatasetWriter.create(root, fps=30, features=_features(video), **kw)
    for ep in range(len(LENGTHS)):
        writer.add_episode(_episode(ep, video), task=["Pick up the cube.", "Stack it."][ep % 2])
    return root


@pytest.fixture(scope="module")
def image_ds(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("img") / "ds")


def _expected(ep: int, frame: int) -> torch.Tensor:
    """uint8[3, H, W] that was written for (episode, frame)."""
    return torch.from_numpy(_frames(LENGTHS[ep], ep)[frame]).permute(2, 0, 1)


def _rewrite_images(root: Path, change) -> None:
    """Replace the image column of the first data file by `change(list of {bytes, path})` -> pa.Array."""
    path = root / DATA
    table = pq.read_table(path)
    i = table.column_names.index(CAM)
    new = change(table.column(CAM).to_pylist())
    pq.write_table(table.set_column(i, table.schema.field(i).with_type(new.type), new), path)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# -- writing + reading ---------------------------------------------------------------------------------------
def test_round_trip_is_pixel_exact(image_ds):
    ds = LeRobotDataset(image_ds, return_uint8=True)
    as_float = LeRobotDataset(image_ds)
    assert ds.camera_keys == [CAM] and ds.meta.image_keys == [CAM] and ds.meta.video_keys == []
    starts = np.cumsum((0,) + LENGTHS)
    for ep, n in enumerate(LENGTHS):
        for f in range(n):
            item = ds[int(starts[ep] + f)]
            assert item[CAM].dtype == torch.uint8 and torch.equal(item[CAM], _expected(ep, f)), (ep, f)
    item = as_float[20]
    assert item[CAM].dtype == torch.float32 and item[CAM].shape == (3, H, W)
    assert torch.equal(item[CAM], _expected(1, 8).float() / 255)
    assert list(item) == [
        "observation.state",
        CAM,
        "action",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
        "task",
    ]  # parquet columns in info.json order, as LeRobot's hf row


def test_written_files_follow_lerobot_layout(image_ds):
    info = json.loads((image_ds / "meta/info.json").read_text())
    assert info["features"][CAM] == {"dtype": "image", "shape": [H, W, 3], "names": ["height", "width", "channels"]}
    assert info["video_path"] is None
    assert not (image_ds / "videos").exists() and not (image_ds / "images").exists()
    pf = pq.ParquetFile(image_ds / DATA)
    assert pf.metadata.num_row_groups == len(LENGTHS)  # one row group per episode
    assert pf.schema_arrow.field(CAM).type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    hf = json.loads(pf.schema_arrow.metadata[b"huggingface"])["info"]["features"]
    assert hf[CAM] == {"_type": "Image"} and list(hf) == list(info["features"])
    first = pf.read_row_group(1).column(CAM).to_pylist()[3]
    assert first["path"] == "frame-000003.png" and first["bytes"].startswith(b"\x89PNG\r\n\x1a\n")


def test_stats_follow_lerobot_image_rules_and_restats_reproduce_them(image_ds, tmp_path):
    stats = load_meta(image_ds).stats[CAM]
    everything = np.concatenate([_frames(n, ep) for ep, n in enumerate(LENGTHS)]).reshape(-1, 3)
    assert stats["mean"].shape == (3, 1, 1) and stats["count"].tolist() == [sum(LENGTHS)]  # < 100 frames: all
    np.testing.assert_allclose(stats["mean"].ravel(), everything.mean(axis=0) / 255, rtol=1e-5)
    np.testing.assert_allclose(stats["std"].ravel(), everything.std(axis=0) / 255, rtol=1e-4)
    np.testing.assert_array_equal(stats["max"].ravel(), everything.max(axis=0) / 255)
    per_ep, dataset = compute_dataset_stats(image_ds)
    stored = read_episode_stats(image_ds)
    for ep in range(len(LENGTHS)):
        for name, value in stored[ep][CAM].items():
            np.testing.assert_array_equal(per_ep[ep][CAM][name], value, err_msg=f"episode {ep} {name}")
    root = copy_tree(image_ds, tmp_path / "restats")
    before = json.loads((root / "meta/stats.json").read_text())
    write_dataset_stats(root)
    assert json.loads((root / "meta/stats.json").read_text())[CAM] == before[CAM]


def test_delta_timestamps_pad_at_episode_edges(image_ds):
    ds = LeRobotDataset(image_ds, delta_timestamps={CAM: [-2 / 30, 0.0, 1 / 30]}, return_uint8=True)
    first = ds[12]  # frame 0 of episode 1
    assert first[CAM].shape == (3, 3, H, W) and first[f"{CAM}_is_pad"].tolist() == [True, False, False]
    assert torch.equal(first[CAM][0], _expected(1, 0)) and torch.equal(first[CAM][2], _expected(1, 1))
    last = ds[21]  # frame 9 (last) of episode 1
    assert last[f"{CAM}_is_pad"].tolist() == [False, False, True]
    assert torch.equal(last[CAM][0], _expected(1, 7)) and torch.equal(last[CAM][2], _expected(1, 9))
    single = LeRobotDataset(image_ds, delta_timestamps={CAM: [0.0]})[5]
    assert single[CAM].shape == (1, 3, H, W)  # LeRobot stacks image rows; only video queries are squeezed


def test_episode_subset_and_image_transforms(image_ds):
    sub = LeRobotDataset(image_ds, episodes=[2], delta_timestamps={CAM: [-1 / 30, 0.0]}, return_uint8=True)
    assert len(sub) == 14 and sub[0]["index"].item() == 22
    assert torch.equal(sub[0][CAM], torch.stack([_expected(2, 0), _expected(2, 0)]))
    seen = []
    flipped = LeRobotDataset(image_ds, image_transforms=lambda x: seen.append(x.shape) or x.flip(-1))
    assert torch.equal(flipped[3][CAM], _expected(0, 3).flip(-1).float() / 255)
    assert seen == [(3, H, W)]  # applied once per camera, on the [3, H, W] frame


def test_mixed_video_and_image_cameras_over_several_files(tmp_path):
    root = _write(tmp_path / "mixed", video="observation.images.wrist", data_files_size_in_mb=0.001)
    assert len(list((root / "data").glob("*/*.parquet"))) == len(LENGTHS)  # every episode rolled to a new file
    ds = LeRobotDataset(root, return_uint8=True)
    assert ds.camera_keys == [CAM, "observation.images.wrist"]
    item = ds[30]  # episode 2, frame 8
    assert list(item)[0] == "observation.images.wrist"  # video frames come first, as in LeRobot
    assert torch.equal(item[CAM], _expected(2, 8)) and item["observation.images.wrist"].shape == (3, H, W)
    resumed = DatasetWriter.resume(root)
    assert resumed.image_keys == [CAM] and resumed.video_keys == ["observation.images.wrist"]
    resumed.add_episode(_episode(0, video="observation.images.wrist"), task="Stack it.")
    again = LeRobotDataset(root, return_uint8=True)
    assert len(again) == sum(LENGTHS) + LENGTHS[0] and torch.equal(again[-1][CAM], _expected(0, LENGTHS[0] - 1))


def _to_v21(src: Path, dst: Path) -> Path:
    """The same dataset in the v2.1 layout: one parquet per episode, jsonl metadata, no stats.json."""
    meta = load_meta(src)
    info = json.loads((src / "meta/info.json").read_text())
    for key in ("data_files_size_in_mb", "video_files_size_in_mb"):
        del info[key]
    info |= {
        "codebase_version": "v2.1",
        "total_chunks": 1,
        "total_videos": 0,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
    }
    (dst / "meta").mkdir(parents=True)
    (dst / "data/chunk-000").mkdir(parents=True)
    (dst / "meta/info.json").write_text(json.dumps(info, indent=4))
    table = pq.read_table(src / DATA)
    ep_col = table.column("episode_index").to_numpy()
    stats = read_episode_stats(src)
    lines, stat_lines = [], []
    for ep in range(meta.total_episodes):
        pq.write_table(table.filter(pa.array(ep_col == ep)), dst / f"data/chunk-000/episode_{ep:06d}.parquet")
        tasks = sorted({meta.tasks[t] for t in table.column("task_index").to_numpy()[ep_col == ep]})
        lines.append(json.dumps({"episode_index": ep, "tasks": tasks, "length": int(meta.episodes["length"][ep])}))
        ep_stats = {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats[ep].items()}
        stat_lines.append(json.dumps({"episode_index": ep, "stats": ep_stats}))
    (dst / "meta/episodes.jsonl").write_text("\n".join(lines) + "\n")
    (dst / "meta/episodes_stats.jsonl").write_text("\n".join(stat_lines) + "\n")
    tasks = [json.dumps({"task_index": i, "task": t}) for i, t in enumerate(meta.tasks)]
    (dst / "meta/tasks.jsonl").write_text("\n".join(tasks) + "\n")
    return dst


def test_v21_layout_reads_the_same(image_ds, tmp_path):
    v21_root = _to_v21(image_ds, tmp_path / "v21")
    delta = {CAM: [-1 / 30, 0.0], "action": [0.0, 1 / 30]}
    v21, v30 = LeRobotDataset(v21_root, delta_timestamps=delta), LeRobotDataset(image_ds, delta_timestamps=delta)
    assert v21.meta.version == "v2.1" and len(v21) == len(v30) == sum(LENGTHS)
    np.testing.assert_allclose(v21.meta.stats[CAM]["mean"], v30.meta.stats[CAM]["mean"], rtol=1e-12)
    for i in (0, 11, 12, 25, 35):
        a, b = v21[i], v30[i]
        assert list(a) == list(b)
        for k in a:
            assert a[k] == b[k] if k == "task" else torch.equal(a[k], b[k]), (i, k)


def test_dataloader_with_a_worker_matches_single_process(image_ds):
    ds = LeRobotDataset(image_ds, delta_timestamps={CAM: [-1 / 30, 0.0]})
    idx = [3, 30, 12, 0, 35, 21]

    def batches(workers: int) -> list[dict]:
        subset = torch.utils.data.Subset(ds, idx)
        return list(torch.utils.data.DataLoader(subset, batch_size=3, num_workers=workers))

    for a, b in zip(batches(0), batches(1), strict=True):
        assert torch.equal(a[CAM], b[CAM]) and torch.equal(a["index"], b["index"])
    assert batches(1)[0][CAM].shape == (3, 2, 3, H, W)


# -- rows that point at files -------------------------------------------------------------------------------------
def test_path_only_rows_resolve_against_the_root(image_ds, tmp_path):
    root = copy_tree(image_ds, tmp_path / "paths")
    (root / "images").mkdir()
    frames = np.concatenate([_frames(n, ep) for ep, n in enumerate(LENGTHS)])
    for i, frame in enumerate(frames):
        (root / f"images/{i:06d}.png").write_bytes(_png(frame))
    _rewrite_images(
        root, lambda rows: pa.array([{"bytes": None, "path": f"images/{i:06d}.png"} for i in range(len(rows))])
    )
    ds = LeRobotDataset(root, return_uint8=True)
    assert torch.equal(ds[17][CAM], _expected(1, 5))
    (root / "images/000017.png").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"row 17: image feature 'observation.images.top' \(episode 1, index 17\)"
        r": the row has no embedded bytes and its image file .*images/000017.png is missing",
    ):
        ds[17]


@pytest.mark.parametrize(
    ("row_path", "match"),
    [
        ("../outside.png", r"path '../outside.png' in .* escapes"),
        ("/tmp/outside.png", r"path '/tmp/outside.png' .*absolute"),
    ],
    ids=["escape", "absolute"],
)
def test_path_only_rows_outside_the_root_are_refused(image_ds, tmp_path, row_path, match):
    root = copy_tree(image_ds, tmp_path / "paths")
    (tmp_path / "outside.png").write_bytes(_png(_frames(1, 0)[0]))
    _rewrite_images(root, lambda rows: pa.array([{"bytes": None, "path": row_path}] * len(rows)))
    with pytest.raises(ValueError, match=match):
        LeRobotDataset(root)[0]


def _flipped_byte_png() -> bytes:
    data = bytearray(_png(_frames(1, 7)[0]))
    data[len(data) // 2] ^= 0xFF  # inside the compressed pixel data
    return bytes(data)


# -- error cases -------------------------------------------------------------------------------------------------------
def _replace_row(row: int, value):
    def change(rows: list) -> pa.Array:
        rows[row] = value
        return pa.array(rows, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))

    return change


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"bytes": b"not a picture at all", "path": "x.png"}, r"cannot decode image \(UnidentifiedImageError"),
        ({"bytes": _flipped_byte_png(), "path": None}, r"cannot decode image \(OSError: broken data stream"),
        (
            {"bytes": _png(np.zeros((24, W, 3), np.uint8)), "path": None},
            r"image is 24x64 \(HxW\), info.json shape is \[48, 64, 3\]",
        ),
        (
            {"bytes": _png(np.zeros((H, W), np.uint8)), "path": None},
            r"decoded image is uint8\[48, 64, 1\] \(Pillow mode 'L'\), expected uint8\[48, 64, 3\] from info.json",
        ),
        ({"bytes": _png(_frames(1, 7)[0])[:2000], "path": None}, r"cannot decode image \(OSError"),
        (None, "null image"),
    ],
    ids=["not-an-image", "flipped-byte", "wrong-size", "grey", "truncated", "null"],
)
def test_bad_pictures_name_file_key_row_and_episode(image_ds, tmp_path, value, match):
    root = copy_tree(image_ds, tmp_path / "bad")
    _rewrite_images(root, _replace_row(14, value))
    ds = LeRobotDataset(root)  # pictures are decoded per item, so opening still works
    ds[13]
    where = r"chunk-000/file-000\.parquet row 14: image feature 'observation.images.top' \(episode 1, index 14\): "
    with pytest.raises(DatasetFormatError, match=where + match):
        ds[14]


def test_bad_image_columns(image_ds, tmp_path):
    root = copy_tree(image_ds, tmp_path / "col")
    _rewrite_images(root, lambda rows: pa.array([r["bytes"] for r in rows], type=pa.binary()))
    with pytest.raises(
        DatasetFormatError,
        match=r"file-000.parquet: image feature 'observation.images.top' must be "
        r"a struct<bytes: binary, path: string> column \(HF Image\), got binary",
    ):
        LeRobotDataset(root)
    table = pq.read_table(root / DATA)
    pq.write_table(table.drop_columns([CAM]), root / DATA)
    with pytest.raises(
        DatasetFormatError,
        match=r"features \['observation.images.top'\] declared in info.json are "
        "missing from the file",
    ):
        LeRobotDataset(root)


def test_writer_refuses_bad_image_input(tmp_path):
    with pytest.raises(ValueError, match=r"image feature 'cam' must have shape \[H, W, 3\], got \[48, 64, 4\]"):
        DatasetWriter.create(tmp_path / "a", fps=30, features={"cam": {"dtype": "image", "shape": [48, 64, 4]}})
    writer = DatasetWriter.create(tmp_path / "b", fps=30, features=_features())
    bad = _episode(0) | {CAM: _frames(12, 0).astype(np.float32)}
    with pytest.raises(ValueError, match=r"observation.images.top: expected uint8\[12, 48, 64, 3\], got float32"):
        writer.add_episode(bad, task="x")


# -- public-format parity -------------------------------------------------------------------------------------------
def test_hf_datasets_loads_the_written_parquet(image_ds, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    hf = datasets.Dataset.from_parquet(str(image_ds / DATA), cache_dir=str(tmp_path / "hf_cache"))
    assert isinstance(hf.features[CAM], datasets.Image)
    assert len(hf) == sum(LENGTHS)
    picture = hf[25][CAM]  # episode 2, frame 3
    assert picture.mode == "RGB" and np.array_equal(np.asarray(picture), _frames(14, 2)[3])


def test_mixture_reads_image_cameras_like_video_ones(image_ds):
    from smolvla.data.dataset import LeRobotDataset
    from smolvla.data.mixture import MixtureSource
    from smolvla.data.mixture_dataset import MixtureSourceDataset

    meta = load_meta(image_ds)
    base = LeRobotDataset(image_ds, delta_timestamps={"action": [k / meta.fps for k in range(4)]})
    mix = MixtureSourceDataset(base, meta, MixtureSource(str(image_ds)), 0, W, 32, 32)
    item = mix[LENGTHS[0] + 3]  # episode 1, frame 3
    view = "observation.images.image1"  # "top" maps to the first standard view
    assert item[view].shape == (3, W, W)  # resized with padding to the policy's square
    expected = _expected(1, 3).float() / 255
    torch.testing.assert_close(item[view][:, W - H :], expected)  # 48 rows at the bottom, zeros above
    assert item["observation.images_is_pad"].tolist() == [False, True, True]


def test_relabel_episode_view_shows_image_cameras(image_ds):
    from smolvla.data.relabel import EpisodeView

    view = EpisodeView(load_meta(image_ds), episode_index=1)
    picks = np.linspace(0, LENGTHS[1] - 1, 3).round().astype(int)  # first, middle, last frame
    np.testing.assert_array_equal(np.stack(view.frames(num=3)), _frames(LENGTHS[1], 1)[picks])
    with pytest.raises(ValueError, match=r"camera 'observation.images.side' is not in dataset .* it has"):
        view.frames(camera="observation.images.side")
