"""Write a directory atomically and durably: stage it beside its final name, fsync, then rename into place.

    with atomic_dir(final) as tmp:      # tmp = <parent>/.<name>.smolvla-tmp-<pid>-<random>
        write files into tmp
    # on success: every staged file and directory fsynced, `final` replaced, the parent dir fsynced

A directory cannot be renamed over a non-empty one, so an existing `final` is first moved aside to
`.<name>.smolvla-old-<pid>-<random>` and deleted after the new one is in place. A process killed at any
point leaves either the previous directory or the new one under `final`, plus at most one staging or
moved-aside sibling. `remove_stale(parent)` (run before every write, and by loaders that resume) deletes
those leftovers of dead processes, only ever names matching the patterns above, and puts a moved-aside
directory back when the kill came between the two renames.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

TMP_TAG, OLD_TAG = "smolvla-tmp", "smolvla-old"
_LEFTOVER = re.compile(rf"^\.(?P<name>.+)\.(?P<kind>{TMP_TAG}|{OLD_TAG})-(?P<pid>\d+)-[A-Za-z0-9_]+$")


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory that replaces `final` when the block exits without an exception.

    On an exception the staging directory is deleted and `final` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{TMP_TAG}-{os.getpid()}-", dir=final.parent))
    try:
        yield tmp
        fsync_tree(tmp)  # the data must be on disk before the rename that publishes it
        _replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` (a relative name is kept relative) atomically and durably."""
    tmp = link.with_name(f".{link.name}.{TMP_TAG}-{os.getpid()}-link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def _replace(src: Path, dst: Path) -> None:
    old = None
    if dst.exists() or dst.is_symlink():
        old = dst.with_name(f".{dst.name}.{OLD_TAG}-{os.getpid()}-{secrets.token_hex(4)}")
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except BaseException:
        if old is not None:
            os.replace(old, dst)  # an error (not a kill) between the renames: put the previous one back
        raise
    fsync_dir(dst.parent)
    if old is not None:
        _delete(old)


def remove_stale(parent: str | Path) -> None:
    """Delete what killed writers left in `parent`: staging dirs, and moved-aside dirs whose replacement
    is in place. A moved-aside dir whose final name is missing (kill between the two renames) is restored.
    Entries of live processes are left alone (they may be writing now)."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    for entry in sorted(parent.iterdir()):
        m = _LEFTOVER.match(entry.name)
        if m is None or _alive(int(m["pid"])):
            continue
        final = parent / m["name"]
        if m["kind"] == OLD_TAG and not (final.exists() or final.is_symlink()):
            logger.warning("restoring %s from %s (a write was killed while replacing it)", final, entry)
            os.replace(entry, final)
            fsync_dir(parent)
        else:
            logger.info("removing %s, left by a killed write", entry)
            _delete(entry)


def fsync_tree(root: Path) -> None:
    """fsync every regular file under `root`, then every directory (their entries), deepest first."""
    for dirpath, _, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                _fsync(path, os.O_RDONLY)
        fsync_dir(Path(dirpath))


def fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` (creations, renames) durable."""
    _fsync(str(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _delete(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":
        # Ours: another thread may be writing it. Off POSIX, os.kill(pid, 0) would terminate the process.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return False
    return True
