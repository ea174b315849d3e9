"""atomic_dir: fsync before the commit rename, rollback on error, and cleanup of what killed writers left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smolvla.policy.atomic_dir import atomic_dir, remove_stale


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def _inode(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_files_and_dirs_are_fsynced_before_the_commit_rename(tmp_path: Path, monkeypatch) -> None:
    events: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        events.append(("fsync", (st.st_dev, st.st_ino)))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    final = tmp_path / "ckpt"
    final.mkdir()  # an existing directory is replaced
    with atomic_dir(final) as tmp:
        (tmp / "a.bin").write_bytes(b"a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.json").write_text("{}")
    commit = events.index(("replace", final))
    before = {key for kind, key in events[:commit] if kind == "fsync"}
    after = {key for kind, key in events[commit:] if kind == "fsync"}
    staged = [final, final / "a.bin", final / "sub", final / "sub" / "b.json"]  # same inodes as when staged
    assert {_inode(p) for p in staged} <= before
    assert _inode(tmp_path) in after  # the rename itself is made durable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_an_error_in_the_block_or_at_the_rename_keeps_the_previous_dir(tmp_path: Path, monkeypatch) -> None:
    final = tmp_path / "ckpt"
    final.mkdir()
    (final / "v").write_text("1")
    with pytest.raises(OSError, match="disk full"):
        with atomic_dir(final) as tmp:
            (tmp / "v").write_text("2")
            raise OSError("disk full")
    real_replace = os.replace

    def fail_commit(src, dst) -> None:
        if ".smolvla-tmp-" in str(src):
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_commit)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_dir(final) as tmp:
            (tmp / "v").write_text("2")
    assert (final / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_remove_stale_cleans_only_dead_writers_leftovers(tmp_path: Path) -> None:
    dead, live = _dead_pid(), os.getppid()
    for name in (
        f".ckpt.smolvla-tmp-{dead}-abc",  # staging dir of a killed save
        f".ckpt.smolvla-old-{dead}-abc",  # previous copy, its replacement in place
        f".gone.smolvla-old-{dead}-abc",  # previous copy, killed between the two renames
        f".ckpt.smolvla-tmp-{live}-abc",  # a live process may be writing it
        f".ckpt.tmp-{dead}-abc",  # not our pattern: the user's
        f"ckpt.smolvla-tmp-{dead}-abc",
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(name)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / f".last.smolvla-tmp-{dead}-link").symlink_to("ckpt")
    remove_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ckpt", "gone", f".ckpt.smolvla-tmp-{live}-abc", f".ckpt.tmp-{dead}-abc", f"ckpt.smolvla-tmp-{dead}-abc"]
    )
    assert (tmp_path / "gone" / "f").read_text() == f".gone.smolvla-old-{dead}-abc"  # restored, not deleted
