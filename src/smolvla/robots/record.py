"""`smolvla record`: teleoperated episodes (leader -> follower) with cameras, saved as a LeRobot v3.0 dataset.

One session = `episodes` episodes of at most `episode_time_s`, each followed (but the last) by a reset
period of `reset_time_s` in which teleoperation goes on and nothing is recorded. Every tick at `fps`:

    observation = follower joints (observation.state) + the newest frame of each camera
    action      = the leader's joints as the follower was commanded (after its safety clamps)

which is LeRobot's record loop, so datasets mean the same in both. Frames are spooled to disk and saved
by a lower-priority process (`record_saver.py`): encoding never runs inside the control loop. Each episode is one atomic
commit of `DatasetWriter`: an interrupted session keeps every episode saved before it, and `resume`
appends to the dataset. Keyboard control (next / re-record / stop) comes from `record_controls.py`.

Torch-free: the dataset writer (pyarrow, PyAV) is imported only in the saver process.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smolvla.robots.cameras import ThreadedCamera
from smolvla.robots.loop_rate import LoopClock
from smolvla.robots.record_controls import Controls
from smolvla.robots.record_saver import EpisodeBuffer, EpisodeSaver, WriterSpec
from smolvla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordConfig:
    root: Path
    task: str
    fps: int = 30
    episodes: int = 1
    episode_time_s: float = 60.0
    reset_time_s: float = 10.0
    resume: bool = False  # append to the dataset at `root` instead of creating it
    robot_type: str | None = "so101_follower"
    codec: str = "libsvtav1"  # camera stream encoder ("h264" encodes faster)
    # A camera whose newest frame is older than this has stalled: the session stops rather than record the
    # same frame again and again. A second, not a few ticks: a busy computer can delay a camera's thread
    # for a few hundred milliseconds without anything being wrong with the camera.
    max_frame_age_s: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.fps, int) or self.fps <= 0:
            raise ValueError(f"fps must be a positive int (a dataset's frame rate), got {self.fps!r}")
        if self.episodes < 1 or self.episode_time_s <= 0 or self.reset_time_s < 0:
            raise ValueError(
                f"need episodes >= 1, episode_time_s > 0, reset_time_s >= 0; got {self.episodes},"
                f" {self.episode_time_s}, {self.reset_time_s}"
            )
        if not self.task.strip():
            raise ValueError("the task string is empty: say what the episodes show (e.g. 'pick up the cube')")


@dataclass
class RecordReport:
    saved: list[int] = field(default_factory=list)  # episode indices written
    rerecorded: int = 0
    episodes: list[dict[str, Any]] = field(default_factory=list)  # per recorded episode: frames and loop rate


def dataset_features(joint_names: Sequence[str], camera_shapes: dict[str, tuple[int, int, int]]) -> dict:
    """The writer's features for a 6-joint SO arm (LeRobot's names: "<joint>.pos") and its cameras."""
    names = [f"{j}.pos" for j in joint_names]
    features: dict[str, dict] = {
        ACTION: {"dtype": "float32", "shape": [len(names)], "names": names},
        OBS_STATE: {"dtype": "float32", "shape": [len(names)], "names": names},
    }
    for name, shape in camera_shapes.items():
        features[OBS_IMAGES_PREFIX + name] = {"dtype": "video", "shape": list(shape)}
    return features


class Recorder:
    """Runs a session on connected arms and cameras, saving into the dataset `cfg` names (created or resumed)."""

    def __init__(
        self,
        cfg: RecordConfig,
        follower: Any,
        leader: Any,
        cameras: Sequence[ThreadedCamera],
        controls: Controls | None = None,
        on_event: Callable[[str], None] = lambda text: log.info("%s", text),
    ) -> None:
        self.cfg, self.follower, self.leader, self.cameras = cfg, follower, leader, cameras
        self.controls = controls or Controls()
        self.say = on_event
        self.joints = tuple(follower.joint_names)
        self.features = dataset_features(self.joints, {c.name: c.shape for c in cameras})
        self.max_frames = math.ceil(cfg.episode_time_s * cfg.fps)
        self.spool = Path(cfg.root).parent / f".{Path(cfg.root).name}.spool"

    def _teleop_tick(self) -> np.ndarray:
        """Leader -> follower; returns the goal the follower was sent (after its clamps), in joint order."""
        sent = self.follower.send_goal(self.leader.read_joints())
        return np.array([sent[j] for j in self.joints], dtype=np.float32)

    def _observe(self) -> dict[str, Any]:
        joints = self.follower.read_joints()
        frame: dict[str, Any] = {OBS_STATE: np.array([joints[j] for j in self.joints], dtype=np.float32)}
        max_age = self.cfg.max_frame_age_s
        for cam in self.cameras:
            frame[OBS_IMAGES_PREFIX + cam.name] = cam.read_latest(max_age_s=max_age)[0]
        return frame

    def _episode(self) -> tuple[EpisodeBuffer, dict]:
        buffer = EpisodeBuffer(self.features, self.max_frames, self.spool)
        clock = LoopClock(self.cfg.fps)
        try:
            while not buffer.full and not self.controls.episode_over():
                frame = self._observe()
                frame[ACTION] = self._teleop_tick()
                buffer.append(frame)
                clock.wait()
        except BaseException:
            buffer.discard()
            raise
        return buffer, clock.summary()

    def _reset_period(self) -> None:
        self.controls.clear_period()
        clock, ticks = LoopClock(self.cfg.fps), round(self.cfg.reset_time_s * self.cfg.fps)
        for _ in range(ticks):
            if self.controls.episode_over():
                return
            self._teleop_tick()
            clock.wait()

    def run(self) -> RecordReport:
        """Record until `episodes` are saved or `stop` is typed; returns what was saved and the rates held."""
        cfg = self.cfg
        spec = WriterSpec(Path(cfg.root), cfg.fps, self.features, cfg.robot_type, cfg.codec, cfg.resume)
        saver = EpisodeSaver(spec)  # opens the dataset first: a bad --root fails before anything is recorded
        self.spool.mkdir(parents=True, exist_ok=True)
        report = RecordReport()
        try:
            while len(report.episodes) < self.cfg.episodes:
                self.controls.clear_period()
                number = len(report.episodes) + 1
                self.say(f"recording episode {number}/{self.cfg.episodes} ({self.cfg.episode_time_s:g} s max)")
                buffer, rate = self._episode()
                if self.controls.rerecord.is_set() and not self.controls.stop.is_set():
                    buffer.discard()
                    report.rerecorded += 1
                    self.say(f"re-recording episode {number}")
                else:
                    if buffer.length:
                        saver.submit(buffer, self.cfg.task)
                    else:
                        buffer.discard()
                    report.episodes.append({"frames": buffer.length, **rate})
                if self.controls.stop.is_set():
                    break
                if len(report.episodes) < self.cfg.episodes:
                    self.say(f"reset the scene ({self.cfg.reset_time_s:g} s)")
                    self._reset_period()
        finally:
            saver.close()  # waits for the episodes in flight, even when the session ends on an error
            report.saved = list(saver.saved)
            try:
                self.spool.rmdir()
            except OSError:
                pass
        return report
