"""Frame decoding: random access == sequential access, cursor reuse, tolerance errors, file identity."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from data_helpers import V30, episode_arrays, features_for

from smolvla.data import DatasetFormatError, DatasetWriter, LeRobotDataset
from smolvla.data import video as video_mod
from smolvla.data.video import VideoReader, close_readers, decode_frames

TOP = V30 / "videos/observation.images.top/chunk-000/file-000.mp4"


def test_random_access_equals_sequential(fixtures):
    close_readers()
    times = [i / 30 for i in range(120)]  # three 40-frame episodes back to back in one file
    sequential = decode_frames(TOP, times)
    assert sequential.shape == (120, 3, 96, 128) and sequential.dtype == np.uint8
    order = np.random.default_rng(0).permutation(120)
    for i in order[:40]:
        close_readers() if i % 3 == 0 else None  # mix fresh and reused readers
        np.testing.assert_array_equal(decode_frames(TOP, [times[i]])[0], sequential[i])
    # the grey code of the fixture: frame f of every episode has level 4*f+3 in its top half
    top_rows = sequential[:, :, 10, 10].astype(int)
    np.testing.assert_allclose(top_rows[:40, 1], 4 * np.arange(40) + 3, atol=2)


def test_forward_reads_do_not_seek(fixtures, monkeypatch):
    reader = VideoReader(TOP)
    seeks = []
    real_seek = reader._seek
    monkeypatch.setattr(reader, "_seek", lambda t: (seeks.append(t), real_seek(t)))
    for i in range(10):
        reader.frames_at([i / 30])
    assert len(seeks) == 1  # only the first read positions the cursor
    reader.frames_at([100 / 30])  # a jump seeks
    assert len(seeks) == 2
    reader.frames_at([100 / 30, 101 / 30])  # frame 100 comes from the cache, 101 forward
    assert len(seeks) == 2
    reader.close()


def test_tolerance_error_names_file_and_episode(fixtures):
    with pytest.raises(DatasetFormatError, match=r"file-000.mp4 \(episode 7\): no frame within tolerance 0.0001s of"):
        decode_frames(TOP, [0.5 / 30], episode=7)
    with pytest.raises(DatasetFormatError, match=r"nearest decoded frame is at t=3.966667s"):
        decode_frames(TOP, [4.5])  # after the last frame
    with pytest.raises(FileNotFoundError, match="missing video file"):
        VideoReader(V30 / "nope.mp4")


def test_readers_are_per_process(fixtures, monkeypatch):
    close_readers()
    first = video_mod.get_reader(TOP)
    assert video_mod.get_reader(TOP) is first
    monkeypatch.setattr(video_mod, "_readers_pid", -1)  # as seen from a forked child
    assert video_mod.get_reader(TOP) is not first
    close_readers()


def test_a_file_replaced_at_the_same_path_is_read_afresh(tmp_path):
    """A long-lived process (a server, a notebook) must see a dataset rebuilt where the old one was."""
    cam, rel = "observation.images.top", "videos/observation.images.top/chunk-000/file-000.mp4"
    versions = {}
    for name, level in (("a", 0), ("b", 255)):
        frames = episode_arrays(6, 0) | {cam: np.full((6, 48, 64, 3), level, np.uint8)}
        with DatasetWriter.create(tmp_path / name, fps=30, features=features_for()) as writer:
            writer.add_episode(frames, task="t")
        versions[name] = tmp_path / name
    close_readers()
    live = tmp_path / "live"

    def first_frame() -> torch.Tensor:
        return LeRobotDataset(live, return_uint8=True)[0][cam]

    shutil.copytree(versions["a"], live, copy_function=shutil.copyfile)
    assert first_frame().float().mean() < 20
    shutil.rmtree(live)  # rebuilt: new files (new inodes) at the same paths
    shutil.copytree(versions["b"], live, copy_function=shutil.copyfile)
    assert first_frame().float().mean() > 235
    (live / rel).write_bytes((versions["a"] / rel).read_bytes())  # rewritten in place: same inode
    assert first_frame().float().mean() < 20
    close_readers()
