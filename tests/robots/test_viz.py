"""`smolvla viz`: an episode of a recorded dataset logged to a rerun .rrd file (no viewer spawned)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_arm import JOINTS
from typer.testing import CliRunner

from smolvla.cli.main import app
from smolvla.data import DatasetWriter, VideoEncoding
from smolvla.robots.record import dataset_features

rr = pytest.importorskip("rerun")


class _Recording:
    """Stands in for rr.RecordingStream: keeps what is logged."""

    def __init__(self):
        self.times, self.logged = [], {}

    def set_time(self, timeline, **kw):
        self.times.append((timeline, kw))

    def log(self, path, item):
        self.logged.setdefault(path, []).append(item)


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    features = dataset_features(JOINTS, {"top": (24, 32, 3)})
    rng = np.random.default_rng(0)
    with DatasetWriter.create(root, 30, features, video=VideoEncoding.h264()) as writer:
        for length in (5, 7):
            writer.add_episode({
                "action": rng.normal(size=(length, 6)).astype(np.float32),
                "observation.state": np.arange(length * 6, dtype=np.float32).reshape(length, 6),
                "observation.images.top": np.full((length, 24, 32, 3), 30 * length, np.uint8),
            }, task="t")  # fmt: skip
    return root


def test_log_episode_logs_frames_joints_and_timelines(dataset, monkeypatch):
    from smolvla.robots.viz import log_episode

    monkeypatch.setattr(rr, "Image", lambda frame: frame)  # keep the decoded frames to look at them
    recording = _Recording()
    assert log_episode(dataset, 1, recording) == 7
    images = recording.logged["observation.images.top"]
    # Episode 1's own frames (grey 210), not episode 0's (150) from the start of the shared mp4.
    assert len(images) == 7 and all(abs(float(im.mean()) - 210) < 4 for im in images)
    assert len(recording.logged["observation.state/shoulder_pan.pos"]) == 7
    assert len(recording.logged["action/gripper.pos"]) == 7
    assert recording.times[0] == ("frame_index", {"sequence": 0}) and recording.times[-1][0] == "timestamp"
    with pytest.raises(ValueError, match=r"no rows of episode 5 in data/"):
        log_episode(dataset, 5, recording)


def test_viz_command_saves_an_rrd_file(dataset, tmp_path):
    out = tmp_path / "episode.rrd"
    result = CliRunner().invoke(app, ["viz", str(dataset), "--episode", "0", "--save", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["frames"] == 5
    assert out.stat().st_size > 1000
