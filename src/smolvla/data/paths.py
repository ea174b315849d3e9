"""Confine paths read from files (info.json templates, COMMIT lists, image rows) to the directory they belong to.

A dataset is untrusted input: a path written in one of its files must never make us read, replace or delete a
file elsewhere. `confine(root, rel, source)` accepts only a relative path that stays inside `root` once `..`
and symlinks are resolved, so a symlink inside the dataset pointing out of it is refused as well.
"""

from __future__ import annotations

from pathlib import Path


def confine(root: str | Path, rel: str | Path, source: str | Path) -> Path:
    """`root / rel`, provided it lies inside `root`; else ValueError naming the path, the file it came from, root.

    source: the file (or file and key) the path was read from, for the error message.
    """
    root = Path(root)
    if not isinstance(rel, str | Path) or not str(rel):
        raise ValueError(f"path {rel!r} in {source} is not a non-empty relative path")
    if Path(rel).is_absolute():
        raise ValueError(f"path {str(rel)!r} in {source} is absolute; only paths inside {root} are allowed")
    path = root / rel
    resolved, real_root = path.resolve(), root.resolve()
    if not resolved.is_relative_to(real_root):
        raise ValueError(f"path {str(rel)!r} in {source} escapes {root} (it resolves to {resolved})")
    return path
