"""Every documented error case of the reader, each with its message (file and episode named)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_helpers import V21, copy_tree

from smolvla.data import DatasetFormatError, LeRobotDataset, load_meta

DATA = "data/chunk-000/file-000.parquet"
TOP = "videos/observation.images.top/chunk-000/file-000.mp4"


def _edit_info(root, **changes):
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    info.update(changes)
    path.write_text(json.dumps(info))
    return info


def test_missing_root_and_info(tmp_path, v30_copy):
    with pytest.raises(FileNotFoundError, match="dataset root .*nowhere does not exist"):
        load_meta(tmp_path / "nowhere")
    (v30_copy / "meta" / "info.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing dataset file .*meta/info.json"):
        LeRobotDataset(v30_copy)


def test_missing_video_names_file_and_episode(v30_copy):
    (v30_copy / TOP).unlink()
    with pytest.raises(FileNotFoundError, match=r"missing dataset file .*file-000.mp4 \(needed by episode 0\)"):
        LeRobotDataset(v30_copy)


def test_missing_v21_episodes_file(fixtures, tmp_path):
    root = copy_tree(V21, tmp_path / "v21")
    (root / "meta" / "episodes.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing dataset file .*episodes.jsonl"):
        LeRobotDataset(root)


def test_unknown_codebase_version(v30_copy):
    _edit_info(v30_copy, codebase_version="v9.9")
    with pytest.raises(DatasetFormatError, match=r"info.json: unknown codebase_version 'v9.9'; expected one of"):
        LeRobotDataset(v30_copy)


def test_total_frames_mismatch(v30_copy):
    _edit_info(v30_copy, total_frames=121)
    with pytest.raises(DatasetFormatError, match=r"info.json: total_frames=121 but episodes sum to 120 frames"):
        LeRobotDataset(v30_copy)


def test_total_episodes_mismatch(v30_copy):
    _edit_info(v30_copy, total_episodes=4)
    with pytest.raises(DatasetFormatError, match="total_episodes=4 but episode metadata has 3 rows"):
        LeRobotDataset(v30_copy)


def test_feature_missing_in_parquet(v30_copy):
    info = json.loads((v30_copy / "meta" / "info.json").read_text())
    features = {"observation.extra": {"dtype": "float32", "shape": [2], "names": None}} | info["features"]
    _edit_info(v30_copy, features=features)
    with pytest.raises(DatasetFormatError, match=r"file-000.parquet: features \['observation.extra'\] declared in"):
        LeRobotDataset(v30_copy)


def test_feature_shape_mismatch(v30_copy):
    info = json.loads((v30_copy / "meta" / "info.json").read_text())
    info["features"]["action"]["shape"] = [7]
    _edit_info(v30_copy, features=info["features"])
    with pytest.raises(DatasetFormatError, match=r"feature 'action' has shape \[7\] in info.json but the data has"):
        LeRobotDataset(v30_copy)


def test_corrupt_parquet(v30_copy):
    (v30_copy / DATA).write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(DatasetFormatError, match=r"data/chunk-000/file-000.parquet: cannot read parquet"):
        LeRobotDataset(v30_copy)


def test_corrupt_video(v30_copy):
    (v30_copy / TOP).write_bytes(b"\x00" * 4096)
    ds = LeRobotDataset(v30_copy)
    with pytest.raises(DatasetFormatError, match=r"observation.images.top/chunk-000/file-000.mp4: cannot open video"):
        ds[0]


def test_timestamps_outside_tolerance(v30_copy):
    table = pq.read_table(v30_copy / DATA)
    ts = table.column("timestamp").to_numpy().copy()
    ep = table.column("episode_index").to_numpy()
    ts[ep == 1] += np.float32(0.01)  # 10 ms off: between two frames
    table = table.set_column(table.column_names.index("timestamp"), "timestamp", pa.array(ts))
    pq.write_table(table, v30_copy / DATA)
    ds = LeRobotDataset(v30_copy)
    ds[0]  # episode 0 untouched
    with pytest.raises(DatasetFormatError, match=r"file-000.mp4 \(episode 1\): no frame within tolerance 0.0001s"):
        ds[40]


def test_episode_rows_inconsistent(v30_copy):
    table = pq.read_table(v30_copy / DATA).slice(0, 119)  # drop the last frame of episode 2
    pq.write_table(table, v30_copy / DATA)
    with pytest.raises(DatasetFormatError, match=r"file-000.parquet: episode 2 should hold global indices \[80, 120\)"):
        LeRobotDataset(v30_copy)


def test_pending_write_is_refused(v30_copy):
    pending = v30_copy / ".staging" / "episode-000003"
    pending.mkdir(parents=True)
    (pending / "COMMIT").write_text("[]")
    with pytest.raises(DatasetFormatError, match=r"interrupted write of \['episode-000003'\] must be completed"):
        LeRobotDataset(v30_copy)
