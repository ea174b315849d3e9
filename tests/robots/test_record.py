"""The recorder: episodes of joints and camera frames at a fixed fps -> a LeRobot v3.0 dataset, saved off-loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from fake_arm import JOINTS, FakeArm
from typer.testing import CliRunner

from smolvla.cli.main import app
from smolvla.data import LeRobotDataset
from smolvla.robots.cameras_fake import FakeCamera
from smolvla.robots.record import RecordConfig, Recorder, dataset_features
from smolvla.robots.record_controls import Controls, parse_command
from smolvla.robots.record_saver import EpisodeBuffer, EpisodeSaver, WriterSpec, check_resumable
from smolvla.robots.sim_bus import SimBusServer

FPS = 30


def _session(root, episodes=2, episode_time_s=0.3, controls=None, resume=False, on_event=print):
    cams = [FakeCamera("top", width=32, height=24, fps=60), FakeCamera("wrist", width=16, height=16, fps=60)]
    for cam in cams:
        cam.connect()
    follower, leader = FakeArm(), FakeArm(leader=True)
    cfg = RecordConfig(root=root, task="pick up the cube", fps=FPS, episodes=episodes, episode_time_s=episode_time_s,
                       reset_time_s=0.1, resume=resume, codec="h264")  # fmt: skip
    try:
        report = Recorder(cfg, follower, leader, cams, controls=controls, on_event=on_event).run()
    finally:
        for cam in cams:
            cam.disconnect()
    return report, follower


def test_two_episodes_make_a_lerobot_dataset(tmp_path):
    root = tmp_path / "ds"
    report, follower = _session(root)
    assert report.saved == [0, 1] and [e["frames"] for e in report.episodes] == [9, 9]
    # The rate held (30 fps unless the machine is very busy; a loose bound keeps a loaded CI from failing).
    assert all(e["hz"] > 0.5 * FPS for e in report.episodes), report.episodes
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 2 and info["total_frames"] == 18
    assert info["features"]["observation.state"]["names"] == [f"{j}.pos" for j in JOINTS]
    assert info["features"]["observation.images.top"]["dtype"] == "video"
    ds = LeRobotDataset(root)
    item = ds[10]
    assert item["task"] == "pick up the cube" and int(item["episode_index"]) == 1
    assert tuple(item["observation.images.top"].shape) == (3, 24, 32)
    assert tuple(item["observation.images.wrist"].shape) == (3, 16, 16)
    # The action is what the follower was sent; the state, where the follower was before that command.
    sent = np.array([[g[j] for j in JOINTS] for g in follower.goals], np.float32)
    np.testing.assert_allclose(ds[1]["observation.state"].numpy(), ds[0]["action"].numpy(), atol=1e-5)
    assert any(np.allclose(ds[0]["action"].numpy(), row) for row in sent)
    assert not (root.parent / ".ds.spool").exists()


def test_rerecord_stop_and_resume(tmp_path):
    root = tmp_path / "ds"
    controls = Controls()
    events, timers = [], []

    def script(text):  # re-record the first take, then stop 0.3 s into the second: one episode saved
        events.append(text)
        if text.startswith("recording episode 1/"):
            timers.append(
                threading.Timer(0.1 if len(events) == 1 else 0.3, controls.feed, ["r" if len(events) == 1 else "q"])
            )
            timers[-1].start()

    report, _ = _session(root, episodes=3, episode_time_s=2.0, controls=controls, on_event=script)
    for timer in timers:
        timer.join()
    assert events[:3] == ["recording episode 1/3 (2 s max)", "re-recording episode 1", "reset the scene (0.1 s)"]
    assert report.rerecorded == 1 and report.saved == [0]
    assert 0 < report.episodes[0]["frames"] < 60
    report, _ = _session(root, episodes=1, resume=True)
    assert report.saved == [1]
    assert json.loads((root / "meta" / "info.json").read_text())["total_episodes"] == 2


def test_resume_refuses_another_layout():
    info = {"fps": 30, "features": dataset_features(JOINTS, {"top": (24, 32, 3)})}
    with pytest.raises(ValueError, match="cannot resume: the dataset records at 30 fps, this session at 15"):
        check_resumable(info, 15, info["features"])
    with pytest.raises(ValueError, match=r"cannot resume: the dataset's features .* differ from this session's"):
        check_resumable(info, 30, dataset_features(JOINTS, {"top": (48, 64, 3)}))


def test_controls_parse_lines():
    assert [parse_command(x) for x in ["\n", "n", "R", " q ", "stop", "x"]] == [
        "next", "next", "rerecord", "stop", "stop", None,
    ]  # fmt: skip
    controls = Controls()
    controls.feed("r\n")
    assert controls.rerecord.is_set() and controls.episode_over() and not controls.stop.is_set()
    controls.clear_period()
    assert not controls.episode_over()


def _buffer(tmp_path, length: int) -> EpisodeBuffer:
    buffer = EpisodeBuffer(SMALL_FEATURES, 5, tmp_path)
    for i in range(length):
        buffer.append({"action": np.full(2, i), "observation.images.cam": np.full((16, 16, 3), 9 * i, np.uint8)})
    return buffer


SMALL_FEATURES = {"action": {"dtype": "float32", "shape": [2]},
                  "observation.images.cam": {"dtype": "video", "shape": [16, 16, 3]}}  # fmt: skip


def test_saver_process_saves_off_the_caller_and_reports_its_error(tmp_path):
    spec = WriterSpec(tmp_path / "ds", FPS, SMALL_FEATURES, codec="h264")
    saver = EpisodeSaver(spec)
    assert saver.first_episode == 0
    buffers = [_buffer(tmp_path, 4), _buffer(tmp_path, 0)]  # an empty episode: the writer refuses it
    start = time.monotonic()
    saver.submit(buffers[0], "t")
    assert time.monotonic() - start < 0.1  # the caller does not wait for the encoder
    saver.submit(buffers[1], "t")
    with pytest.raises(ValueError, match="episode frames must all have the same non-zero length"):
        saver.close()
    assert saver.saved == [0] and not any(b.dir.exists() for b in buffers)
    assert json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())["total_frames"] == 4


def test_saver_refuses_a_dataset_it_cannot_open(tmp_path):
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        spec = WriterSpec(tmp_path / "ds", FPS, SMALL_FEATURES, codec="h264")
        EpisodeSaver(spec).close()
        EpisodeSaver(spec)
    with pytest.raises(ValueError, match="cannot resume: the dataset records at 30 fps, this session at 15"):
        EpisodeSaver(WriterSpec(tmp_path / "ds", 15, SMALL_FEATURES, codec="h264", resume=True))


# A dataset written by LeRobot 0.6.1 (tests/fixtures/README.md): the layout a recording must have.
LEROBOT_V30 = Path(__file__).parents[1] / "fixtures" / "lerobot" / "v30" / "so100_2cam"
# The console script with torch imports blocked, as on a robot computer without torch.
TORCH_BLOCKED_CLI = (
    "import sys\nsys.modules['torch'] = None\nfrom smolvla.cli.main import app\n"
    "sys.argv = ['smolvla'] + sys.argv[1:]\napp()\n"
)


def test_record_on_the_simulated_bus_without_torch_then_replay(tmp_path):
    """Teleop on the simulated bus -> `smolvla record` (torch blocked) -> a dataset with LeRobot's layout that
    our reader reads -> `smolvla replay` of an episode on the follower."""
    pytest.importorskip("serial")
    root = tmp_path / "ds"
    with SimBusServer(tmp_path / "follower") as follower, SimBusServer(tmp_path / "leader", leader=True) as leader:
        args = ["record", "--root", str(root), "--task", "follow the leader", "--robot-port", str(follower.link_path),
                "--teleop-port", str(leader.link_path), "--camera", "top=fake:32x24", "--camera", "wrist=fake:32x24",
                "--episodes", "2", "--episode-time-s", "0.5", "--reset-time-s", "0.2",
                "--video-codec", "h264"]  # fmt: skip
        command = [sys.executable, "-c", TORCH_BLOCKED_CLI, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        lines = [json.loads(x) for x in result.stdout.splitlines()]
        assert lines[-1]["saved"] == [0, 1] and [x["frames"] for x in lines[:2]] == [15, 15]
        assert all(x["hz"] > 0.5 * FPS for x in lines[:2]), lines
        assert not any(s.torque_enabled for s in follower.arm.servos)  # released when record ended

        info = json.loads((root / "meta" / "info.json").read_text())
        ref = json.loads((LEROBOT_V30 / "meta" / "info.json").read_text())
        assert list(info) == list(ref) and sorted(info["features"]) == sorted(ref["features"])
        assert info["robot_type"] == "so101_follower" and info["total_frames"] == 30
        episodes_file = "meta/episodes/chunk-000/file-000.parquet"
        ours, theirs = pq.read_table(root / episodes_file), pq.read_table(LEROBOT_V30 / episodes_file)
        assert sorted(ours.column_names) == sorted(theirs.column_names)
        ds = LeRobotDataset(root)
        assert len(ds) == 30 and ds[29]["task"] == "follow the leader"
        actions = np.stack([ds[i]["action"].numpy() for i in range(15)])
        assert np.ptp(actions, axis=0).max() > 20  # the scripted leader moved, and the recording shows it

        args = ["replay", "--root", str(root), "--episode", "1", "--robot-port", str(follower.link_path)]
        replay = CliRunner().invoke(app, args)
        assert replay.exit_code == 0, replay.output
        summary = json.loads(replay.output.strip().splitlines()[-1])
        assert summary["frames"] == 15 and summary["hz"] > 0.5 * FPS
        goals = [s.peek("Goal_Position") for s in follower.arm.servos]
        np.testing.assert_allclose(goals, ds[29]["action"].numpy(), atol=1.0)  # the last recorded action


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0, reason="real-time needs root on Linux")
def test_saver_process_cannot_take_realtime_priority():
    # SVT-AV1 asks for SCHED_FIFO 99 when it runs as root; in the saver that request must fail.
    # Start from normal scheduling whatever this process was left at (lowering needs no privilege): a child
    # that inherits SCHED_FIFO 99 may "raise" to 99 without any capability, which would prove nothing.
    ask = (
        "import os; os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0)); "
        "os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(99)); print('realtime')"
    )
    drop = "from smolvla.robots.record_saver import _drop_realtime_privilege; _drop_realtime_privilege(); "
    allowed = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True, timeout=30)
    assert allowed.stdout.strip() == "realtime"  # root could, so the check below can fail
    refused = subprocess.run([sys.executable, "-c", drop + ask], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "PermissionError" in refused.stderr
