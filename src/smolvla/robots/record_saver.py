"""Episode buffers spooled to disk, and a saver process that encodes and commits them off the control loop.

The control loop appends one frame per tick to an `EpisodeBuffer`: camera frames go straight to a file
per camera (a minute of two 640x480 cameras costs disk, not RAM). When the
episode ends, the buffer's directory goes to the `EpisodeSaver` process, which owns the `DatasetWriter`
and runs the slow part (video encoding, parquet, stats, the atomic commit of `add_episode`) while the loop
goes on with the reset period and the next episode.

A process, not a thread: encoding and statistics would hold the GIL for whole milliseconds and make the
control loop late. The process also runs at a lower priority (`nice`), so on a 2-core robot computer the
loop wins the CPU, and it ignores SIGINT: Ctrl-C stops the recording, and the episodes already queued are
still saved. Its job queue is bounded: if saving falls a whole episode behind, the recorder waits between
episodes (never inside one).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smolvla.data.realtime import set_sys_nice

log = logging.getLogger(__name__)

# Features the writer adds to every dataset (not part of what a session declares).
WRITER_FEATURES = frozenset({"timestamp", "frame_index", "episode_index", "index", "task_index"})
SAVER_NICE = 10
CAMERA_DTYPES = ("video", "image")
FRAMES_SUFFIX = ".u8"  # raw uint8 frames, [T, H, W, 3] in C order
# Ticks of camera frames that may wait for the disk: 2 s at 30 fps (~110 MB for two 640x480 cameras).
SPOOL_QUEUE_TICKS = 60
# How long the saver process may take to open the dataset (imports PyAV, pyarrow; resume checks files).
START_TIMEOUT_S = 120.0


def check_resumable(info: dict, fps: int, features: dict) -> None:
    """A resumed dataset must have this session's fps and features (keys, dtypes, shapes)."""
    if info["fps"] != fps:
        raise ValueError(f"cannot resume: the dataset records at {info['fps']} fps, this session at {fps}")
    have = {k: (v["dtype"], list(v["shape"])) for k, v in info["features"].items() if k not in WRITER_FEATURES}
    want = {k: (v["dtype"], list(v["shape"])) for k, v in features.items()}
    if have != want:
        raise ValueError(f"cannot resume: the dataset's features {have} differ from this session's {want}")


@dataclass(frozen=True)
class WriterSpec:
    """What the saver process needs to create (or resume) the dataset; picklable."""

    root: Path
    fps: int
    features: dict
    robot_type: str | None = None
    codec: str = "libsvtav1"  # or "h264" (faster to encode)
    resume: bool = False

    def open(self) -> Any:
        from smolvla.data.encode import VideoEncoding
        from smolvla.data.writer import DatasetWriter

        video = VideoEncoding.h264() if self.codec == "h264" else VideoEncoding(codec=self.codec)
        if not self.resume:
            return DatasetWriter.create(self.root, self.fps, self.features, self.robot_type, video)
        writer = DatasetWriter.resume(self.root, video)
        try:
            check_resumable(writer.info, self.fps, self.features)
        except ValueError:
            writer.close()
            raise
        return writer


class EpisodeBuffer:
    """Frames of one episode: `features` is the writer's {key: {"dtype", "shape"}} (camera keys "video").

    Camera frames go to a raw file per camera, written by a spool thread: `append` only queues the arrays
    (the cameras hand over a new array per frame and never touch it again). A write to disk can block for
    hundreds of milliseconds while the saver process reads and writes too (measured: up to 0.9 s at 2 x
    640x480); the queue absorbs that (SPOOL_QUEUE_TICKS of frames) instead of the control loop. Joint
    vectors are small and stay in memory until `release` saves them next to the frames.
    """

    def __init__(self, features: dict[str, dict], max_frames: int, spool_dir: Path) -> None:
        self.length = 0
        self.max_frames = max_frames
        self.dir = Path(tempfile.mkdtemp(prefix="episode-", dir=spool_dir))
        self.files: dict[str, Any] = {}
        self.arrays: dict[str, np.ndarray] = {}
        for key, feat in features.items():
            if feat["dtype"] in CAMERA_DTYPES:
                self.files[key] = open(self.dir / f"{key}{FRAMES_SUFFIX}", "wb")  # closed by _finish_writes
            else:
                self.arrays[key] = np.zeros((max_frames, *feat["shape"]), dtype=feat["dtype"])
        self._pending: queue.Queue = queue.Queue(maxsize=SPOOL_QUEUE_TICKS)
        self._write_error: OSError | None = None
        self._spooler = threading.Thread(target=self._spool, name="episode-spool", daemon=True)
        self._spooler.start()

    def _spool(self) -> None:
        while (item := self._pending.get()) is not None:
            if self._write_error is not None:
                continue
            try:
                for key, frame in item:
                    self.files[key].write(memoryview(frame))
            except OSError as err:  # disk full, spool removed: raised by the next append / release
                self._write_error = err

    def _finish_writes(self) -> None:
        if self._spooler.is_alive():
            self._pending.put(None)
            self._spooler.join()
        for file in self.files.values():
            file.close()
        self.files.clear()

    @property
    def full(self) -> bool:
        return self.length >= self.max_frames

    def append(self, frame: dict[str, Any]) -> None:
        if self.full:
            raise ValueError(f"episode buffer holds at most {self.max_frames} frames")
        if self._write_error is not None:
            raise OSError(f"spooling camera frames to {self.dir} failed: {self._write_error}")
        self._pending.put([(key, np.ascontiguousarray(frame[key], dtype=np.uint8)) for key in self.files])
        for key, array in self.arrays.items():
            array[self.length] = frame[key]
        self.length += 1

    def release(self) -> None:
        """Wait for the frames to be on disk and save the vectors next to them (for the saver)."""
        self._finish_writes()
        if self._write_error is not None:
            raise OSError(f"spooling camera frames to {self.dir} failed: {self._write_error}")
        for key, array in self.arrays.items():
            np.save(self.dir / f"{key}.npy", array[: self.length])
        self.arrays.clear()

    def discard(self) -> None:
        self._finish_writes()
        self.arrays.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


def load_spooled(directory: Path, features: dict[str, dict], length: int) -> dict[str, np.ndarray]:
    """The `length` spooled frames of each feature (camera frames memory-mapped, read-only)."""
    out = {}
    for key, feat in features.items():
        if feat["dtype"] in CAMERA_DTYPES:
            path = directory / f"{key}{FRAMES_SUFFIX}"
            out[key] = (
                np.memmap(path, np.uint8, "r", shape=(length, *feat["shape"]))
                if length
                else np.zeros((0, *feat["shape"]), np.uint8)
            )
        else:
            out[key] = np.load(directory / f"{key}.npy")
    return out


def _drop_realtime_privilege() -> None:
    """Drop CAP_SYS_NICE from this thread (and the threads it starts) for good; Linux only, best effort.

    SVT-AV1 gives its encoder threads real-time scheduling (SCHED_FIFO, priority 99) when it runs as root
    (`geteuid() == 0`), ignoring a failure. Those threads then preempt the control loop whatever the saver's
    nice value: measured, the recorder's 30 Hz loop stalled for 150-900 ms while an episode encoded. Without
    the capability the request fails and the encoder runs at the saver's normal, lowered priority.
    """
    set_sys_nice(False, permanent=True)


def _saver_main(spec: WriterSpec, jobs: Any, results: Any, nice: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the recorder; queued episodes still get saved
    os.nice(nice)
    _drop_realtime_privilege()  # before any thread starts: threads inherit the capabilities of their creator
    parent = os.getppid()
    try:
        writer = spec.open()
    except BaseException as err:
        results.put(("error", err))
        return
    failed = False
    with writer:
        results.put(("ready", writer.info["total_episodes"]))
        while True:
            try:
                job = jobs.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:  # the recorder died without saying goodbye
                    return
                continue
            if job is None:
                return
            directory, length, task = job
            try:
                if not failed:
                    index = writer.add_episode(load_spooled(Path(directory), spec.features, length), task)
                    results.put(("saved", index))
            except BaseException as err:  # reported by the recorder's next submit() or close()
                failed = True
                results.put(("error", err))
            finally:
                shutil.rmtree(directory, ignore_errors=True)


class EpisodeSaver:
    """Saves buffers with `add_episode` in a child process that owns the dataset writer, in order.

    Starting it opens (creates or resumes) the dataset, so a dataset that exists, is locked or does not
    match fails here, before anything is recorded. A failed save stops saving: the error is raised by the
    next `submit` or by `close`, so a session never goes on believing its episodes are saved.
    """

    def __init__(self, spec: WriterSpec, max_pending: int = 1, nice: int = SAVER_NICE) -> None:
        context = mp.get_context("spawn")  # fork would copy the camera threads' locks mid-use
        self.saved: list[int] = []  # episode indices, in order
        self._jobs, self._results = context.Queue(maxsize=max_pending), context.Queue()
        self._error: BaseException | None = None
        self._process = context.Process(
            target=_saver_main, args=(spec, self._jobs, self._results, nice), name="episode-saver", daemon=True
        )
        self._process.start()
        try:
            kind, value = self._results.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            self._process.kill()
            raise TimeoutError(f"the episode saver did not open {spec.root} within {START_TIMEOUT_S:.0f} s") from None
        if kind == "error":
            self._process.join()
            raise value
        self.first_episode = int(value)

    def _collect(self, block: bool = False) -> None:
        while True:
            try:
                kind, value = self._results.get(timeout=0.5) if block else self._results.get_nowait()
            except queue.Empty:
                return
            if kind == "saved":
                self.saved.append(value)
                log.info("saved episode %d", value)
            elif self._error is None:
                log.error("saving an episode failed: %s", value)
                self._error = value

    def _raise(self) -> None:
        self._collect()
        if self._error is not None:
            raise self._error

    def submit(self, buffer: EpisodeBuffer, task: str) -> None:
        """Queue `buffer` for saving (blocks while `max_pending` episodes wait); raises an earlier save's error."""
        self._raise()
        buffer.release()
        self._jobs.put((str(buffer.dir), buffer.length, task))

    def close(self) -> None:
        """Save what is queued, stop the process, raise a save's error if one failed."""
        if self._process.is_alive():
            self._jobs.put(None)
            while self._process.is_alive():
                self._collect(block=True)
            self._process.join()
        self._raise()
