"""A camera without hardware, for tests, benchmarks and dry runs: the same reader thread as a real camera.

    FakeCamera("top", width=64, height=48, fps=30)                       # synthetic frames
    FakeCamera("top", video="episode.mp4", fps=30)                       # a video file, looped
    FakeCamera("top", renderer=lambda: env.render(), fps=30)             # any renderer (e.g. MuJoCo)
    FakeCamera("top", fail_after=10)                                     # dies after 10 frames

Frames arrive at `fps` (the thread sleeps between captures, like a camera's exposure clock). A synthetic
frame carries its own sequence number in its first pixels (`frame_number`), so a test can tell which frame
it got and that it was the newest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from smolvla.robots.cameras import CameraError, ThreadedCamera


def frame_number(frame: np.ndarray) -> int:
    """The sequence number a synthetic FakeCamera frame carries in pixels [0, 0:3] (base-256, 24 bits)."""
    r, g, b = (int(v) for v in frame[0, 0])
    return r * 65536 + g * 256 + b


class FakeCamera(ThreadedCamera):
    """Synthetic, video-file or rendered frames at `fps`; `fail_after` frames then every capture fails."""

    def __init__(
        self,
        name: str = "fake",
        width: int = 64,
        height: int = 48,
        fps: float = 30.0,
        video: str | Path | None = None,
        renderer: Callable[[], np.ndarray] | None = None,
        fail_after: int | None = None,
    ) -> None:
        super().__init__(name)
        if video is not None and renderer is not None:
            raise ValueError("FakeCamera: give a video file or a renderer, not both")
        if fps <= 0 or width <= 0 or height <= 0:
            raise ValueError(f"FakeCamera needs fps, width, height > 0; got {fps}, {width}, {height}")
        self.width, self.height, self.fps = width, height, fps
        self.video, self.renderer, self.fail_after = video, renderer, fail_after
        self._cap: Any = None
        self._made = 0
        self._next_at = 0.0

    def _open(self) -> None:
        self._made, self._next_at = 0, time.monotonic()
        if self.video is None:
            return
        import cv2

        if not Path(self.video).is_file():
            raise CameraError(f"camera {self.name!r}: video file {str(self.video)!r} does not exist")
        self._cap = cv2.VideoCapture(str(self.video))
        if not self._cap.isOpened():
            raise CameraError(f"camera {self.name!r}: cannot decode video file {str(self.video)!r}")

    def _grab(self) -> np.ndarray | None:
        # Pace like a camera: one frame per 1/fps, whatever the reader's speed.
        delay = self._next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_at = max(self._next_at + 1.0 / self.fps, time.monotonic() - 1.0 / self.fps)
        if self.fail_after is not None and self._made >= self.fail_after:
            return None
        self._made += 1
        if self.renderer is not None:
            return np.ascontiguousarray(self.renderer(), dtype=np.uint8)
        if self._cap is not None:
            return self._video_frame()
        return self._synthetic(self._made)

    def _video_frame(self) -> np.ndarray | None:
        import cv2

        ok, frame = self._cap.read()
        if not ok:  # end of the file: loop
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None

    def _synthetic(self, number: int) -> np.ndarray:
        """A moving vertical bar (so encoded video has motion) with `number` written in pixel [0, 0]."""
        frame = np.full((self.height, self.width, 3), 40, np.uint8)
        frame[:, (number * 2) % self.width] = (200, 120, 30)
        frame[0, 0] = ((number >> 16) & 255, (number >> 8) & 255, number & 255)
        return frame

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
