"""Cameras read on their own thread: the control loop takes the newest frame, never waits for a capture.

    cam = OpenCVCamera(0, fps=30, width=640, height=480)   # or "/dev/video2"
    with cam:                                              # connect() reads one frame or raises CameraError
        frame, t = cam.read_latest(max_age_s=0.2)          # uint8[H, W, 3] RGB, time.monotonic() of the capture

A reader thread grabs frames as fast as the device delivers them and keeps only the newest (with its
capture time): a control loop at 30 Hz must not block on a USB camera, nor fall behind through a queue of
stale frames. A camera that stops delivering (unplugged, driver hang) is reported by `read_latest` as a
`CameraError` naming the camera and how old its last frame is, never by returning that old frame as new.

`ThreadedCamera` holds the thread logic; `OpenCVCamera` (here) and `FakeCamera` (cameras_fake.py) only
supply `_open`, `_grab` and `_close`. OpenCV (`opencv-python-headless`, the `robots` extra) is imported
when a camera connects, so this module imports without it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# A camera whose `_grab` fails this many times in a row is dead: the reader thread stops and says why.
MAX_CONSECUTIVE_FAILURES = 20
# How long connect() waits for the first frame: USB cameras take a few hundred ms to start streaming.
FIRST_FRAME_TIMEOUT_S = 5.0


class CameraError(OSError):
    """A camera that cannot be opened, delivers no frame, or stopped delivering (an OSError: the CLI shows
    it as one line, the way it shows a missing file)."""


class ThreadedCamera:
    """A frame source read by a background thread that keeps the newest frame and its capture time.

    Subclasses implement `_open()` (raise CameraError when the device is missing), `_grab()` -> RGB
    uint8[H, W, 3] or None on a failed capture (may block until the next frame), and `_close()`.
    `shape` is (H, W, 3), known once connected.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.shape: tuple[int, int, int] | None = None
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._stamp = 0.0  # time.monotonic() of the newest frame
        self._count = 0  # frames captured since connect (tests and fps measurements read it)
        self._error: str | None = None  # why the reader thread stopped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- subclass hooks --------------------------------------------------------------------------------

    def _open(self) -> None:
        raise NotImplementedError

    def _grab(self) -> np.ndarray | None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._thread is not None

    def connect(self, first_frame_timeout_s: float = FIRST_FRAME_TIMEOUT_S) -> None:
        """Open the device, start the reader thread and wait for a first frame (CameraError if none comes)."""
        if self.connected:
            raise CameraError(f"camera {self.name!r} is already connected")
        self._open()
        self._stop.clear()
        self._error, self._frame, self._count = None, None, 0
        self._thread = threading.Thread(target=self._read_loop, name=f"camera-{self.name}", daemon=True)
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._error is not None, first_frame_timeout_s)
            error, frame = self._error, self._frame
        if frame is None:
            self.disconnect()
            raise CameraError(
                f"camera {self.name!r} opened but gave no frame within {first_frame_timeout_s:.1f} s"
                + (f": {error}" if error else "")
            )
        self.shape = tuple(frame.shape)  # type: ignore[assignment]

    def disconnect(self) -> None:
        """Stop the reader thread and release the device (safe to call twice)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._thread = None
        self._close()

    def __enter__(self) -> ThreadedCamera:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # -- the reader thread -----------------------------------------------------------------------------

    def _read_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                frame = self._grab()
            except Exception as err:  # a driver error kills this camera, never the control loop
                frame, reason = None, f"{type(err).__name__}: {err}"
            else:
                reason = "capture failed"
            if frame is None:
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    self._fail(f"{failures} captures in a row failed (last: {reason})")
                    return
                time.sleep(0.005)
                continue
            failures = 0
            with self._cond:
                self._frame, self._stamp = frame, time.monotonic()
                self._count += 1
                self._cond.notify_all()

    def _fail(self, reason: str) -> None:
        log.error("camera %r stopped: %s", self.name, reason)
        with self._cond:
            self._error = reason
            self._cond.notify_all()

    # -- what the control loop calls -------------------------------------------------------------------

    @property
    def frames_captured(self) -> int:
        return self._count

    def read_latest(self, max_age_s: float | None = None) -> tuple[np.ndarray, float]:
        """The newest frame (RGB uint8[H, W, 3]) and its capture time (time.monotonic()).

        With `max_age_s`, a frame older than that is not returned: the call waits up to `max_age_s` for a
        newer one, then raises CameraError (the camera stalled). A dead camera raises at once.
        """
        if not self.connected:
            raise CameraError(f"camera {self.name!r} is not connected; call connect() first")
        with self._cond:
            if max_age_s is not None:
                fresh = lambda: self._error is not None or time.monotonic() - self._stamp <= max_age_s
                self._cond.wait_for(fresh, max_age_s)
            if self._error is not None:
                raise CameraError(f"camera {self.name!r} is dead: {self._error}")
            age = time.monotonic() - self._stamp
            if max_age_s is not None and age > max_age_s:
                raise CameraError(f"camera {self.name!r}: newest frame is {age:.3f} s old (max_age_s={max_age_s})")
            assert self._frame is not None  # connect() waited for the first frame
            return self._frame, self._stamp


class OpenCVCamera(ThreadedCamera):
    """A USB/V4L2 camera through OpenCV: `source` is an index (0) or a device path ("/dev/video2").

    `fps`, `width`, `height` are requested from the driver; a camera that delivers another resolution is
    refused at connect (a dataset's image shape is fixed), another fps only logged (drivers round it).
    """

    def __init__(
        self,
        source: int | str,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name or str(source))
        if (width is None) != (height is None):
            raise ValueError(f"give both width and height or neither; got width={width}, height={height}")
        self.source, self.fps, self.width, self.height = source, fps, width, height
        self._cap: Any = None

    def _open(self) -> None:
        import cv2

        cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"camera {self.name!r}: cannot open {self.source!r} (no such device, or in use by another program);"
                " list cameras with `v4l2-ctl --list-devices` or `ls /dev/video*`"
            )
        if self.width is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps is not None:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            actual = cap.get(cv2.CAP_PROP_FPS)
            if actual and abs(actual - self.fps) > 1:
                log.warning("camera %r: asked for %s fps, the driver reports %s", self.name, self.fps, actual)
        self._cap = cap

    def connect(self, first_frame_timeout_s: float = FIRST_FRAME_TIMEOUT_S) -> None:
        super().connect(first_frame_timeout_s)
        if self.width is not None and self.shape != (self.height, self.width, 3):
            got = self.shape
            self.disconnect()
            raise CameraError(
                f"camera {self.name!r}: asked for {self.width}x{self.height}, it delivers {got[1]}x{got[0]}"
                " (choose a resolution the camera supports: `v4l2-ctl --list-formats-ext`)"
            )

    def _grab(self) -> np.ndarray | None:
        import cv2

        ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
