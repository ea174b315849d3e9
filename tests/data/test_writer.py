"""DatasetWriter: round trips through our reader, LeRobot's layout, rollover, stats, resume, atomicity."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from data_helpers import CAMS, V30, episode_arrays, features_for, write_dataset

from smolvla.data import DatasetFormatError, DatasetWriter, LeRobotDataset, VideoEncoding
from smolvla.data import writer as writer_mod
from smolvla.data.stats import aggregate_stats, compute_episode_stats
from smolvla.data.tables import read_episode_stats

TASKS = ["Pick up the cube.", "Put the red cube in the bowl.", "Pick up the cube."]


def _assert_round_trip(root, lengths, tasks=TASKS, max_pixel_err=6):
    ds = LeRobotDataset(root, delta_timestamps={"action": [0.0, 1 / 30]})
    assert len(ds) == sum(lengths) and ds.num_episodes == len(lengths)
    start = 0
    for ep, n in enumerate(lengths):
        src = episode_arrays(n, ep)
        for f in range(n):
            item = ds[start + f]
            assert (item["episode_index"].item(), item["frame_index"].item(), item["index"].item()) == (
                ep,
                f,
                start + f,
            )
            assert item["timestamp"].item() == np.float32(f / 30) and item["task"] == tasks[ep % len(tasks)]
            np.testing.assert_array_equal(item["observation.state"].numpy(), src["observation.state"][f])
            np.testing.assert_array_equal(item["action"][0].numpy(), src["action"][f])
            assert item["action_is_pad"].tolist() == [False, f == n - 1]
            for cam in CAMS:  # lossy AV1: close to the source pixels, per channel mean error
                decoded = (item[cam] * 255).permute(1, 2, 0).numpy()
                assert np.abs(decoded - src[cam][f]).mean() < max_pixel_err, (ep, f, cam)
        start += n


def test_round_trip(written):
    _assert_round_trip(written, (12, 10, 14))


def test_layout_matches_lerobot(fixtures, written):
    info = json.loads((written / "meta" / "info.json").read_text())
    ref_info = json.loads((V30 / "meta" / "info.json").read_text())
    assert list(info) == list(ref_info)
    assert list(info["features"]) == list(ref_info["features"])
    assert (
        info["features"]["observation.images.top"]["info"].keys()
        == ref_info["features"]["observation.images.top"]["info"].keys()
    )
    assert info["features"]["observation.images.top"]["info"]["video.codec"] == "av1"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 36, 2)
    assert info["splits"] == {"train": "0:3"} and info["data_path"] == ref_info["data_path"]
    ours = pq.read_table(written / "meta/episodes/chunk-000/file-000.parquet")
    ref = pq.read_table(V30 / "meta/episodes/chunk-000/file-000.parquet")
    assert ours.column_names == ref.column_names
    assert ours.schema.equals(ref.schema, check_metadata=False)
    data = pq.ParquetFile(written / "data/chunk-000/file-000.parquet")
    assert data.schema_arrow.equals(pq.read_schema(V30 / "data/chunk-000/file-000.parquet"), check_metadata=False)
    assert data.num_row_groups == 3  # one per episode
    tasks = pq.read_table(written / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    assert tasks.column("task").to_pylist() == TASKS[:2]
    eps = ours.to_pylist()
    assert [e["videos/observation.images.top/from_timestamp"] for e in eps] == [0.0, 12 / 30, 22 / 30]
    assert eps[2]["tasks"] == [TASKS[0]] and not (written / ".staging").exists()


def test_stats_written_like_lerobot(written):
    per_ep = read_episode_stats(written)
    expected = []
    for ep, n in enumerate((12, 10, 14)):
        cols = episode_arrays(n, ep) | {
            "timestamp": np.arange(n) / 30,
            "frame_index": np.arange(n),
            "episode_index": np.full(n, ep),
            "index": sum((12, 10, 14)[:ep]) + np.arange(n),
            "task_index": np.full(n, [0, 1, 0][ep]),
        }
        expected.append(compute_episode_stats(cols, CAMS))
        for key, stats in expected[-1].items():
            for name, value in stats.items():
                np.testing.assert_array_equal(per_ep[ep][key][name], value, err_msg=f"{ep} {key} {name}")
    running = aggregate_stats([aggregate_stats([expected[0], expected[1]]), expected[2]])
    stored = json.loads((written / "meta/stats.json").read_text())
    for key, stats in running.items():
        for name, value in stats.items():
            np.testing.assert_array_equal(np.array(stored[key][name]), value, err_msg=f"{key} {name}")


def test_rollover_of_videos_data_and_chunks(tmp_path):
    root = write_dataset(
        tmp_path / "roll", lengths=(8, 9, 10), chunks_size=2, video_files_size_in_mb=0.001, data_files_size_in_mb=0.001
    )
    eps = [row for f in sorted((root / "meta/episodes").glob("*/*.parquet")) for row in pq.read_table(f).to_pylist()]
    assert len(eps) == 3 and (root / "meta/episodes/chunk-000/file-001.parquet").is_file()  # metadata rolled too
    where = [(e["data/chunk_index"], e["data/file_index"]) for e in eps]
    assert where == [(0, 0), (0, 1), (1, 0)]
    assert [
        (e["videos/observation.images.top/chunk_index"], e["videos/observation.images.top/file_index"]) for e in eps
    ] == where
    assert all(e["videos/observation.images.top/from_timestamp"] == 0.0 for e in eps)
    assert (root / "videos/observation.images.wrist/chunk-001/file-000.mp4").is_file()
    _assert_round_trip(root, (8, 9, 10))


def test_resume_appends(tmp_path):
    root = write_dataset(tmp_path / "r", lengths=(12, 10))
    writer = DatasetWriter.resume(root)
    assert writer.add_episode(episode_arrays(14, 2), task=TASKS[2]) == 2
    _assert_round_trip(root, (12, 10, 14))
    assert json.loads((root / "meta/info.json").read_text())["total_tasks"] == 2


def test_h264_option(tmp_path):
    root = write_dataset(tmp_path / "h264", lengths=(12, 10), video=VideoEncoding.h264())
    info = json.loads((root / "meta/info.json").read_text())
    assert info["features"]["observation.images.top"]["info"]["video.codec"] == "h264"
    _assert_round_trip(root, (12, 10), max_pixel_err=4)


def test_failure_before_commit_keeps_previous_episodes(tmp_path, monkeypatch):
    root = write_dataset(tmp_path / "a", lengths=(12, 10))
    writer = DatasetWriter.resume(root)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(writer_mod, "write_tasks", boom)
    with pytest.raises(OSError, match="disk full"):
        writer.add_episode(episode_arrays(14, 2), task="new task")
    assert not (root / ".staging").exists()
    _assert_round_trip(root, (12, 10))


def test_crash_after_commit_point_is_completed_on_resume(tmp_path, monkeypatch):
    root = write_dataset(tmp_path / "b", lengths=(12, 10))
    writer = DatasetWriter.resume(root)
    calls = {"n": 0}
    real_replace = writer_mod.os.replace

    def crash_on_third_move(src, dst):
        if str(src).endswith("COMMIT.tmp") or calls["n"] < 2:
            calls["n"] += not str(src).endswith("COMMIT.tmp")
            return real_replace(src, dst)
        raise KeyboardInterrupt  # the process dies half-way through moving the files in

    monkeypatch.setattr("smolvla.data.commit.os.replace", crash_on_third_move)
    with pytest.raises(KeyboardInterrupt):
        writer.add_episode(episode_arrays(14, 2), task=TASKS[2])
    monkeypatch.undo()
    writer.close()  # the dead process's lock dies with it
    with pytest.raises(DatasetFormatError, match="interrupted write"):
        LeRobotDataset(root)
    DatasetWriter.resume(root)
    _assert_round_trip(root, (12, 10, 14))


def test_uncommitted_staging_is_discarded_on_resume(tmp_path):
    root = write_dataset(tmp_path / "c", lengths=(12,))
    junk = root / ".staging" / "episode-000001" / "data" / "chunk-000"
    junk.mkdir(parents=True)
    (junk / "file-000.parquet").write_bytes(b"half written")
    LeRobotDataset(root)  # no COMMIT: readers ignore it
    DatasetWriter.resume(root)
    assert not (root / ".staging").exists()
    _assert_round_trip(root, (12,))


def test_input_validation(tmp_path, written):
    w = DatasetWriter.resume(written)
    good = episode_arrays(5, 3)
    with pytest.raises(ValueError, match=r"missing keys \['action'\], unexpected keys \[\]"):
        w.add_episode({k: v for k, v in good.items() if k != "action"}, task="t")
    with pytest.raises(ValueError, match=r"observation.images.top: expected uint8\[5, 48, 64, 3\], got float32"):
        w.add_episode(good | {"observation.images.top": good["observation.images.top"].astype(np.float32)}, task="t")
    with pytest.raises(ValueError, match="same non-zero length T"):
        w.add_episode(good | {"action": good["action"][:4]}, task="t")
    with pytest.raises(ValueError, match="task must be a str or a list of 5 str"):
        w.add_episode(good, task=["a", "b"])
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        DatasetWriter.create(written, fps=30, features=features_for())
    with pytest.raises(ValueError, match=r"video feature 'cam' must have shape \[H, W, 3\]"):
        DatasetWriter.create(tmp_path / "x", fps=30, features={"cam": {"dtype": "video", "shape": [3, 48, 64]}})
    with pytest.raises(ValueError, match="video codec 'libaom-av1' is not supported"):
        VideoEncoding(codec="libaom-av1")
    assert LeRobotDataset(written).num_episodes == 3  # nothing was half-saved


def test_per_frame_tasks(tmp_path):
    w = DatasetWriter.create(tmp_path / "t", fps=30, features=features_for())
    w.add_episode(episode_arrays(6, 0), task=["reach"] * 3 + ["grasp the cube"] * 3)
    ds = LeRobotDataset(tmp_path / "t")
    assert [ds[i]["task"] for i in range(6)] == ["reach"] * 3 + ["grasp the cube"] * 3
    assert torch.equal(torch.stack([ds[i]["task_index"] for i in range(6)]), torch.tensor([0, 0, 0, 1, 1, 1]))
