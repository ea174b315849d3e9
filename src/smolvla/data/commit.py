"""Atomic multi-file updates of a dataset directory (one transaction per saved batch of episodes).

Saving episodes rewrites several files (data parquet, each camera's mp4, episodes parquet, tasks,
info.json, stats.json). A crash between two renames would leave them inconsistent, so:

    1. every new file version is written under `<root>/.staging/<name>/<same relative path>`;
    2. `<root>/.staging/<name>/COMMIT` (the list of files) is written atomically - the commit point;
    3. each staged file is `os.replace`d onto its final path, then the staging dir is removed.

`recover(root)` (run by the writer on resume) rolls a transaction forward when its COMMIT exists
(step 3 is idempotent: files already moved are simply absent from staging) and discards it otherwise,
so what was saved before an interrupted recording is never corrupted. Readers refuse a dataset with a
committed-but-unapplied transaction (meta.check_no_pending_write).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from smolvla.data.meta import DatasetFormatError
from smolvla.data.paths import confine

logger = logging.getLogger(__name__)

STAGING = ".staging"


class Transaction:
    """Stage files under root/.staging/<name>/ then commit them all at once."""

    def __init__(self, root: Path, name: str):
        self.root = Path(root)
        self.dir = self.root / STAGING / name
        if self.dir.exists():
            shutil.rmtree(self.dir)  # leftovers of an uncommitted attempt: never applied, safe to drop
        self.dir.mkdir(parents=True)
        self.files: list[str] = []

    def path(self, rel: str | Path) -> Path:
        """Where to write the new version of `rel` (relative to the dataset root)."""
        rel = str(rel)
        if rel not in self.files:
            self.files.append(rel)
        out = self.dir / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def scratch(self, name: str) -> Path:
        """A temporary file inside the staging dir that is not part of the commit."""
        return self.dir / "_scratch" / name

    def abort(self) -> None:
        """Drop everything staged (nothing was applied: the dataset is unchanged)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        _remove_empty_staging(self.root)

    def commit(self) -> None:
        missing = [f for f in self.files if not (self.dir / f).is_file()]
        if missing:
            raise RuntimeError(f"transaction {self.dir.name}: staged files were never written: {missing}")
        tmp = self.dir / "COMMIT.tmp"
        tmp.write_text(json.dumps(self.files))
        _fsync(tmp)
        os.replace(tmp, self.dir / "COMMIT")
        apply(self.dir, self.root)


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _read_commit(stage_dir: Path) -> list[str]:
    """The file list of a committed transaction (relative paths), refusing a damaged COMMIT file."""
    path = stage_dir / "COMMIT"
    try:
        files = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFormatError(f"{path}: not valid JSON ({e}); cannot complete the interrupted write") from e
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise DatasetFormatError(f"{path}: expected a JSON list of relative file paths, got {str(files)[:200]}")
    return files


def apply(stage_dir: Path, root: Path) -> None:
    """Move the staged files of a committed transaction into place, then delete the staging dir.

    Every listed path is checked before anything moves: a COMMIT naming a file outside the dataset (or outside
    its staging dir) is refused and nothing is applied.
    """
    commit = stage_dir / "COMMIT"
    files = _read_commit(stage_dir)
    moves = []
    for rel in files:
        dst = confine(root, rel, commit)
        moves.append((confine(stage_dir, rel, commit), dst))
    for src, dst in moves:
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(stage_dir)
    _remove_empty_staging(root)


def _remove_empty_staging(root: Path) -> None:
    try:
        (Path(root) / STAGING).rmdir()  # only succeeds when empty: leave no empty .staging behind
    except OSError:
        pass


def recover(root: Path) -> list[str]:
    """Finish committed transactions and drop uncommitted ones; returns what was done, for logging."""
    staging = Path(root) / STAGING
    actions = []
    if not staging.is_dir():
        return actions
    confine(root, STAGING, root)  # a .staging symlinked elsewhere must not make us move or delete files there
    for stage_dir in sorted(p for p in staging.iterdir() if p.is_dir()):
        confine(staging, stage_dir.name, staging)
        if (stage_dir / "COMMIT").is_file():
            apply(stage_dir, Path(root))
            actions.append(f"completed {stage_dir.name}")
        else:
            shutil.rmtree(stage_dir)
            _remove_empty_staging(root)
            actions.append(f"discarded uncommitted {stage_dir.name}")
    for action in actions:
        logger.warning("%s: %s", root, action)
    return actions
