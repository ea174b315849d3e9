"""DatasetWriter.add_episodes: a batch saves exactly what one add_episode call per episode saves (file layout,
parquet tables, info/stats JSON, decoded frames), also across file rollovers; a failing batch saves nothing;
an empty batch is a no-op; resume continues a batched dataset; datagen.write_dataset commits in batches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from data_helpers import episode_arrays, features_for

from smolvla.data import DatasetFormatError, DatasetWriter, LeRobotDataset
from smolvla.data import writer as writer_mod
from smolvla.data.lock import DatasetLock

TOP, WRIST = "observation.images.top", "observation.images.wrist"
LENGTHS = (12, 10, 14, 9, 11, 13, 8)
# Tiny limits: a data / mp4 / episodes file takes 2-3 of these episodes, 2 files per chunk directory.
ROLLOVER = {"chunks_size": 2, "data_files_size_in_mb": 4000 / 2**20, "video_files_size_in_mb": 1500 / 2**20}


def _features(image: bool) -> dict:
    feats = features_for(cams=(TOP,))
    return feats | ({WRIST: {"dtype": "image", "shape": [48, 64, 3]}} if image else {})


def _episode(ep: int, image: bool = False) -> tuple[dict[str, np.ndarray], str | list[str]]:
    n = LENGTHS[ep % len(LENGTHS)]
    frames = episode_arrays(n, ep, cams=(TOP,))
    if image:  # noise: the PNG bytes make the data files roll over
        frames[WRIST] = np.random.default_rng(ep).integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)
    task = ["reach"] * (n // 2) + [f"grasp {ep}"] * (n - n // 2) if ep % 3 == 1 else "Pick up the cube."
    return frames, task


def _write(root: Path, episodes: list, batches: list[int] | None, image: bool = False, **kw) -> Path:
    """Write `episodes` in add_episodes batches of these sizes, or (batches=None) one add_episode call each.

    One by one, every step also checks that the file sizes the writer tracks equal those a writer reopened on
    the files on disk reads (the rollover decisions depend on them).
    """
    writer = DatasetWriter.create(root, fps=30, features=_features(image), **kw)
    if batches is None:
        for frames, task in episodes:
            writer.add_episode(frames, task)
            assert _reread_cursors(writer) == _cursors(writer)
        return root
    assert sum(batches) == len(episodes)
    start = 0
    for size in batches:
        assert writer.add_episodes(episodes[start : start + size]) == list(range(start, start + size))
        start += size
    return root


def _cursors(writer: DatasetWriter) -> tuple:
    """Where the writer puts the next episode (per file series: chunk, file, rows/frames, size)."""
    return writer._data, writer._meta, writer._videos


def _reread_cursors(writer: DatasetWriter) -> tuple:
    """The cursors a writer reopened on the files reads; the live writer steps aside meanwhile (one lock)."""
    writer.close()
    with DatasetWriter.resume(writer.root) as reopened:
        cursors = _cursors(reopened)
    writer._lock = DatasetLock(writer.root)
    return cursors


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _decoded(path: Path) -> tuple[list[int], np.ndarray]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return [f.pts for f in frames], np.stack([f.to_ndarray(format="rgb24") for f in frames])


def _assert_same_dataset(a: Path, b: Path) -> None:
    """Same files; equal JSON text, parquet tables (schema metadata and row groups too) and decoded mp4s."""
    files = sorted(_files(a))
    assert files == sorted(_files(b))
    for rel in files:
        if rel.endswith(".json"):
            assert (a / rel).read_text() == (b / rel).read_text(), rel
        elif rel.endswith(".parquet"):
            assert pq.read_table(a / rel).equals(pq.read_table(b / rel), check_metadata=True), rel
            assert pq.ParquetFile(a / rel).num_row_groups == pq.ParquetFile(b / rel).num_row_groups, rel
        else:
            assert rel.endswith(".mp4"), rel
            (pts_a, px_a), (pts_b, px_b) = _decoded(a / rel), _decoded(b / rel)
            assert pts_a == pts_b and np.array_equal(px_a, px_b), rel
    ds_a, ds_b = LeRobotDataset(a, return_uint8=True), LeRobotDataset(b, return_uint8=True)
    assert len(ds_a) == len(ds_b) and ds_a.num_episodes == ds_b.num_episodes
    for i in range(len(ds_a)):
        item_a, item_b = ds_a[i], ds_b[i]
        assert list(item_a) == list(item_b)
        for key, value in item_a.items():
            same = torch.equal(value, item_b[key]) if isinstance(value, torch.Tensor) else value == item_b[key]
            assert same, (i, key)


def _episode_rows(root: Path) -> list[dict]:
    return [r for f in sorted((root / "meta/episodes").glob("*/*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.mark.parametrize(
    ("image", "batches", "limits"),
    [
        (False, [1, 4, 2], ROLLOVER),
        (True, [2, 5], {"data_files_size_in_mb": 0.25}),
    ],
    ids=["video-rollover", "image-data-rollover"],
)
def test_batches_equal_one_by_one(tmp_path, image, batches, limits):
    episodes = [_episode(ep, image) for ep in range(len(LENGTHS))]
    batched = _write(tmp_path / "batched", episodes, batches, image, **limits)
    _assert_same_dataset(batched, _write(tmp_path / "single", episodes, None, image, **limits))
    rows = _episode_rows(batched)
    data = [(r["data/chunk_index"], r["data/file_index"]) for r in rows]
    # the 5-episode batch both appends to files it started and starts new ones midway
    assert len(set(data[2:])) > 1 and len(set(data[2:])) < len(data[2:])
    if not image:
        video = [(r[f"videos/{TOP}/chunk_index"], r[f"videos/{TOP}/file_index"]) for r in rows]
        meta = [(r["meta/episodes/chunk_index"], r["meta/episodes/file_index"]) for r in rows]
        for where in (data, video, meta):
            assert 1 < len(set(where[1:5])) < 4 and where[-1][0] >= 1  # rolled inside the batch; chunk-001 used
        starts = [r[f"videos/{TOP}/from_timestamp"] for r in rows]
        assert any(s > 0 for s in starts[1:5])  # some episodes of the batch were appended to an mp4


def _dataset_with(tmp_path: Path, n: int, **kw) -> Path:
    return _write(tmp_path / "ds", [_episode(ep) for ep in range(n)], [n] if n else [], **kw)


def test_failing_episode_in_a_batch_saves_nothing(tmp_path, monkeypatch):
    root = _dataset_with(tmp_path, 2)
    before = _files(root)
    writer = DatasetWriter.resume(root)
    encoded = []
    real_encode = writer_mod.encode_video
    monkeypatch.setattr(writer_mod, "encode_video", lambda *a, **k: encoded.append(1) or real_encode(*a, **k))
    frames, task = _episode(3)
    bad = frames | {"observation.state": frames["observation.state"][:, :5]}
    with pytest.raises(ValueError, match=r"episode 3 \(batch item 1\): observation.state: expected shape \[9, 6\]"):
        writer.add_episodes([_episode(2), (bad, task), _episode(4)])
    assert encoded == [] and _files(root) == before  # every episode is checked before anything is encoded

    def encoder_crash(*args, **kwargs):
        if len(encoded) == 2:
            raise RuntimeError("encoder crashed")
        return real_encode(*args, **kwargs) or encoded.append(1)

    monkeypatch.setattr(writer_mod, "encode_video", encoder_crash)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        writer.add_episodes([_episode(ep) for ep in (2, 3, 4)])
    assert len(encoded) == 2 and _files(root) == before and not (root / ".staging").exists()
    monkeypatch.undo()
    assert writer.add_episodes([_episode(ep) for ep in (2, 3, 4)]) == [2, 3, 4]  # the same writer carries on
    _assert_same_dataset(root, _write(tmp_path / "ref", [_episode(ep) for ep in range(5)], None))


def test_batch_input_errors_name_the_episode(tmp_path):
    root = _dataset_with(tmp_path, 1)
    writer, before = DatasetWriter.resume(root), _files(root)
    frames, _ = _episode(1)
    with pytest.raises(ValueError, match=r"episode 2 \(batch item 1\): task must be a str or a list of 10 str"):
        writer.add_episodes([_episode(0), (frames, ["reach", "grasp"])])
    with pytest.raises(
        ValueError, match=r"episode 1 \(batch item 0\): expected a \(frames dict, task\) pair, got dict"
    ):
        writer.add_episodes([frames])
    with pytest.raises(ValueError, match=r"episode 2 \(batch item 1\): episode frames: missing keys \['action'\]"):
        writer.add_episodes([_episode(1), ({k: v for k, v in frames.items() if k != "action"}, "t")])
    assert _files(root) == before


def test_empty_batch_is_a_no_op(tmp_path):
    root = tmp_path / "ds"
    writer = DatasetWriter.create(root, fps=30, features=_features(False))
    before = _files(root)
    assert writer.add_episodes([]) == [] and _files(root) == before  # nothing staged, nothing committed
    assert writer.add_episodes(iter([_episode(0)])) == [0]
    before = _files(root)
    assert writer.add_episodes(iter([])) == [] and _files(root) == before
    assert json.loads((root / "meta/info.json").read_text())["total_episodes"] == 1


def test_resume_after_batches_continues_like_one_writer(tmp_path):
    episodes = [_episode(ep) for ep in range(len(LENGTHS))]
    root = _write(tmp_path / "ds", episodes[:3], [3], **ROLLOVER)
    writer = DatasetWriter.create(tmp_path / "other", fps=30, features=_features(False), **ROLLOVER)
    writer.add_episodes(episodes[:3])
    resumed = DatasetWriter.resume(root)
    # file sizes re-read from disk equal the ones the writer tracked while saving
    assert _cursors(resumed) == _cursors(writer)
    assert resumed.add_episodes(episodes[3:]) == [3, 4, 5, 6]
    _assert_same_dataset(root, _write(tmp_path / "ref", episodes, None, **ROLLOVER))


def test_crash_while_applying_a_batch_is_completed_on_resume(tmp_path, monkeypatch):
    episodes = [_episode(ep) for ep in range(len(LENGTHS))]
    root = _write(tmp_path / "ds", episodes[:2], [2], **ROLLOVER)
    writer = DatasetWriter.resume(root)
    real_replace, moved = os.replace, []

    def die_after_three_moves(src, dst):
        if "COMMIT" not in str(dst) and ".staging" in str(src) and "_scratch" not in str(src):
            if len(moved) == 3:
                raise KeyboardInterrupt  # the process dies half-way through moving the batch's files in
            moved.append(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_after_three_moves)
    with pytest.raises(KeyboardInterrupt):
        writer.add_episodes(episodes[2:])
    monkeypatch.undo()
    writer.close()  # the dead process's lock dies with it
    with pytest.raises(DatasetFormatError, match="interrupted write"):
        LeRobotDataset(root)
    DatasetWriter.resume(root)
    _assert_same_dataset(root, _write(tmp_path / "ref", episodes, None, **ROLLOVER))


def _sim_episode(seed: int, fps: int = 30):
    from smolvla.envs.rollout import Episode

    frames, task = _episode(seed)
    n = len(frames["action"])
    rewards = np.linspace(0, 1, n, dtype=np.float32)
    return Episode("fake/reach", "reach the goal", seed, fps, frames, rewards, success=True)


def test_write_dataset_commits_in_batches(tmp_path, monkeypatch):
    from smolvla.envs import datagen

    monkeypatch.setattr(datagen, "WRITE_BATCH_EPISODES", 2)
    episodes = [_sim_episode(seed) for seed in range(5)]
    ticks = []
    assert datagen.write_dataset(iter(episodes), tmp_path / "ds", robot_type="fake", progress=ticks.append) == 5
    assert ticks == [2, 2, 1]
    ref = DatasetWriter.create(
        tmp_path / "ref", fps=30, features=datagen.episode_features(episodes[0]), robot_type="fake"
    )
    for e in episodes:
        ref.add_episode({**e.frames, datagen.REWARD_KEY: e.rewards}, e.task)
    _assert_same_dataset(tmp_path / "ds", tmp_path / "ref")


def test_write_dataset_keeps_the_episodes_before_an_fps_mismatch(tmp_path, monkeypatch):
    from smolvla.envs import datagen

    monkeypatch.setattr(datagen, "WRITE_BATCH_EPISODES", 4)
    episodes = [_sim_episode(0), _sim_episode(1), _sim_episode(2, fps=10)]
    ticks = []
    with pytest.raises(ValueError, match=r"episode 2 \(fake/reach, seed 2\) has fps 10, dataset has 30"):
        datagen.write_dataset(episodes, tmp_path / "ds", progress=ticks.append)
    assert ticks == [2] and LeRobotDataset(tmp_path / "ds").num_episodes == 2
