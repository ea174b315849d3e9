"""Episode buffers spooled to disk, and a saver thread that encodes and commits them off the control loop.

The control loop appends one frame per tick to an `EpisodeBuffer`: joints into small arrays, camera frames
into a memory-mapped file sized for the longest episode (so a minute of 640x480 video costs disk, not
RAM). When the episode ends the buffer goes to the `EpisodeSaver` thread, which runs the slow part
(video encoding, parquet, stats, the atomic commit of `DatasetWriter.add_episode`) while the loop goes on
with the reset period and the next episode. Its queue is bounded: if saving falls a whole episode behind,
the recorder waits between episodes (never inside one) instead of piling up spool files.
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class EpisodeBuffer:
    """Frames of one episode: `features` is the writer's {key: {"dtype", "shape"}} (camera keys "video")."""

    def __init__(self, features: dict[str, dict], max_frames: int, spool_dir: Path) -> None:
        self.length = 0
        self.max_frames = max_frames
        self.dir = Path(tempfile.mkdtemp(prefix="episode-", dir=spool_dir))
        self.arrays: dict[str, np.ndarray] = {}
        for key, feat in features.items():
            shape = (max_frames, *feat["shape"])
            if feat["dtype"] in ("video", "image"):
                path = self.dir / f"{key}.u8"
                self.arrays[key] = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
            else:
                self.arrays[key] = np.zeros(shape, dtype=feat["dtype"])

    @property
    def full(self) -> bool:
        return self.length >= self.max_frames

    def append(self, frame: dict[str, Any]) -> None:
        if self.full:
            raise ValueError(f"episode buffer holds at most {self.max_frames} frames")
        for key, array in self.arrays.items():
            array[self.length] = frame[key]
        self.length += 1

    def frames(self) -> dict[str, np.ndarray]:
        """{key: [T, ...]} views of the recorded frames (camera frames still on disk)."""
        return {key: array[: self.length] for key, array in self.arrays.items()}

    def discard(self) -> None:
        self.arrays.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


class EpisodeSaver:
    """Saves buffers with `writer.add_episode` on a thread, in order; `close()` waits for the last one.

    A failed save stops the saver: the error is raised by the next `submit` or by `close`, so a recording
    session never goes on believing episodes are saved when they are not.
    """

    def __init__(self, writer: Any, max_pending: int = 1) -> None:
        self.writer = writer
        self.saved: list[int] = []  # episode indices, in order
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="episode-saver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            buffer, task = item
            try:
                if self._error is None:
                    self.saved.append(self.writer.add_episode(buffer.frames(), task))
                    log.info("saved episode %d (%d frames)", self.saved[-1], buffer.length)
            except BaseException as err:  # reported to the recorder by submit()/close()
                log.error("saving an episode failed: %s", err)
                self._error = err
            finally:
                buffer.discard()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, buffer: EpisodeBuffer, task: str) -> None:
        """Queue `buffer` for saving (blocks while `max_pending` episodes wait); raises an earlier save's error."""
        self._raise()
        self._queue.put((buffer, task))

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        """Save what is queued, stop the thread, raise a save's error if one failed."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()
