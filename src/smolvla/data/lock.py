"""One writer at a time per dataset: an exclusive, non-blocking `flock` on the dataset directory itself.

Everything that changes a dataset (DatasetWriter for its whole life, `smolvla stats`) holds it; a second one
fails at once instead of, say, its resume deleting the first one's staged transaction. The directory is locked
rather than a lock file so that nothing is added to the dataset: no stale file after a crash, none to upload,
and the kernel drops the lock when the holding process ends, however it ends. A flock belongs to one open file
description, so two writers inside one process exclude each other as well. The holder's PID is looked up in
/proc/locks (Linux) for the error message.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


class DatasetLockedError(OSError):
    """Another writer holds the dataset (message names the dataset and, when known, the holder's PID).

    An OSError, as the busy resource it reports: the CLI prints it as one line, like a missing file.
    """


def _holder_pid(fd: int) -> int | None:
    """PID of the process holding a FLOCK on the file open as `fd`, from /proc/locks (None if unknown)."""
    st = os.fstat(fd)
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:  # e.g. "3: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF"
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == ident and parts[4].isdigit():
            return int(parts[4])
    return None


class DatasetLock:
    """Exclusive lock on the dataset directory `root` (which must exist); `release()` or use as a context manager."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.held = False  # True from a successful acquisition until release()
        self._fd: int | None = None
        try:
            self._fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise type(e)(f"dataset root {self.root} does not exist or is not a directory") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another open description of the directory
            pid = _holder_pid(self._fd)
            self.release()
            holder = "another writer in this process" if pid == os.getpid() else f"process {pid or '(unknown)'}"
            raise DatasetLockedError(
                f"{self.root} is being written by {holder}; only one writer (DatasetWriter, stats) may change a "
                "dataset at a time: wait for it to finish or stop it"
            ) from None
        except OSError as e:  # some network filesystems cannot flock a directory: write unguarded, not at all
            logger.warning("%s: cannot lock the dataset (%s); concurrent writers will not be detected", root, e)
        self.held = True

    def release(self) -> None:
        self.held = False
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DatasetLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()
