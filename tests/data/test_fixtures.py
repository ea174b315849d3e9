"""The committed LeRobot fixtures are all there and byte-identical to what LeRobot wrote."""

from __future__ import annotations

import hashlib

from data_helpers import FIXTURES

MANIFEST = FIXTURES.parent / "lerobot.sha256"


def test_lerobot_fixtures_are_complete_and_unchanged() -> None:
    expected = dict(reversed(line.split("  ", 1)) for line in MANIFEST.read_text().splitlines())
    present = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file())
    assert present == sorted(expected), f"files under {FIXTURES} differ from {MANIFEST.name}"
    changed = [
        name
        for name, digest in expected.items()
        if hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() != digest
    ]
    assert not changed, f"fixture files changed since LeRobot wrote them: {changed}"
