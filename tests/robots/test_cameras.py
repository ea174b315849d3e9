"""Cameras: the reader thread hands over the newest frame with its capture time; dead cameras are named."""

from __future__ import annotations

import time

import numpy as np
import pytest

from smolvla.robots.cameras import CameraError, OpenCVCamera
from smolvla.robots.cameras_fake import FakeCamera, frame_number
from smolvla.robots.cameras_spec import CameraSpec, make_camera, parse_camera_spec, parse_cameras


def test_read_latest_returns_the_newest_frame_with_its_capture_time():
    with FakeCamera("top", width=32, height=24, fps=100) as cam:
        assert cam.shape == (24, 32, 3)
        time.sleep(0.15)  # ~15 frames captured while nobody reads
        before = time.monotonic()
        frame, stamp = cam.read_latest()
        assert frame.dtype == np.uint8 and frame.shape == (24, 32, 3)
        assert stamp <= before and before - stamp < 0.05  # captured within the last frame period or so
        # The newest, not a queued old one: its number is (about) the count of frames captured so far.
        assert frame_number(frame) >= cam.frames_captured - 1 >= 10
        time.sleep(0.05)
        frame2, stamp2 = cam.read_latest(max_age_s=0.1)
        assert stamp2 > stamp and frame_number(frame2) > frame_number(frame)


def test_dead_camera_is_an_error_naming_it():
    cam = FakeCamera("wrist", fps=400, fail_after=3)
    cam.connect()
    try:
        deadline = time.monotonic() + 3.0
        with pytest.raises(CameraError, match=r"camera 'wrist' is dead: 20 captures in a row failed"):
            while time.monotonic() < deadline:
                cam.read_latest()
                time.sleep(0.01)
    finally:
        cam.disconnect()


def test_stale_frame_is_refused_with_max_age():
    cam = FakeCamera("top", fps=1.0)  # one frame per second: the second read finds an old frame
    with cam:
        time.sleep(0.2)
        with pytest.raises(CameraError, match=r"camera 'top': newest frame is 0\.\d+ s old \(max_age_s=0.05\)"):
            cam.read_latest(max_age_s=0.05)


def test_missing_camera_and_missing_video_are_named():
    pytest.importorskip("cv2")
    with pytest.raises(CameraError, match=r"camera 'top': cannot open '/dev/video-none'"):
        OpenCVCamera("/dev/video-none", name="top").connect()
    with pytest.raises(CameraError, match=r"video file '.*nope.mp4' does not exist"):
        FakeCamera("top", video="/tmp/nope.mp4").connect()
    with pytest.raises(CameraError, match="not connected"):
        FakeCamera("top").read_latest()


def test_video_file_camera_loops_the_file(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (32, 24))
    for i in range(3):
        writer.write(np.full((24, 32, 3), 60 * i, np.uint8))
    writer.release()
    with FakeCamera("top", video=path, fps=200) as cam:
        time.sleep(0.1)  # > 3 frames: the file looped
        frame, _ = cam.read_latest(max_age_s=0.5)
        assert frame.shape == (24, 32, 3) and cam.frames_captured > 3


def test_camera_specs():
    assert parse_camera_spec("top=0:640x480@30") == CameraSpec("top", 0, 640, 480, 30.0)
    assert parse_camera_spec("wrist=/dev/video2") == CameraSpec("wrist", "/dev/video2")
    assert isinstance(make_camera(parse_camera_spec("top=fake:16x8"), 30.0), FakeCamera)
    assert isinstance(make_camera(parse_camera_spec("top=2"), 30.0), OpenCVCamera)
    with pytest.raises(ValueError, match=r"camera 'top': expected NAME=SOURCE\[:WIDTHxHEIGHT\]\[@FPS\]"):
        parse_camera_spec("top")
    with pytest.raises(ValueError, match=r"camera names must be unique; \['top'\]"):
        parse_cameras(["top=0", "top=1"])
