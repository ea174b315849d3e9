"""Arm calibration: homing offsets and recorded ranges of motion, raw ticks <-> joint units, JSON per arm id.

Units are LeRobot's SO follower's (`use_degrees=True`), so LeRobot datasets and policies mean the same here:

    degrees (arm joints):  deg  = (ticks - mid) * 360 / 4095,            mid = (range_min + range_max) / 2
    0-100   (gripper):     pct  = (clip(ticks, min, max) - min) / (max - min) * 100   (100 - pct if drive_mode)

where ticks are the servo's Present_Position, i.e. after the homing offset the servo applies itself
(Present = actual - Homing_Offset). Calibration puts each joint's mid-range at half a turn (2047), so
0 degrees is the middle of the joint's travel. Ticks come back rounded to the nearest integer (LeRobot
truncates; the two differ by at most one tick, 0.09 degree).

The file format is LeRobot's own (`{joint: {id, drive_mode, homing_offset, range_min, range_max}}`), so a
LeRobot calibration file is imported by validating it and copying it under our directory.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from smolvla.robots.feetech.control_table import MAX_TICK

HALF_TURN = MAX_TICK // 2  # 2047: where calibration puts each joint's middle
MAX_HOMING_OFFSET = 2047  # sign-magnitude, 11 bits of magnitude
FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


class NormMode(StrEnum):
    DEGREES = "degrees"
    RANGE_0_100 = "range_0_100"


@dataclass(frozen=True)
class MotorCalibration:
    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    def __post_init__(self) -> None:
        if not 0 <= self.range_min < self.range_max <= MAX_TICK:
            raise ValueError(f"need 0 <= range_min < range_max <= {MAX_TICK}, got {self.range_min}, {self.range_max}")
        if abs(self.homing_offset) > MAX_HOMING_OFFSET:
            raise ValueError(f"homing_offset must be within +-{MAX_HOMING_OFFSET}, got {self.homing_offset}")
        if self.drive_mode not in (0, 1):
            raise ValueError(f"drive_mode must be 0 or 1, got {self.drive_mode}")

    @property
    def mid(self) -> float:
        return (self.range_min + self.range_max) / 2


def to_units(ticks: int, cal: MotorCalibration, mode: NormMode) -> float:
    """Present_Position ticks -> degrees or 0-100 (the formulas in the module docstring)."""
    if mode is NormMode.DEGREES:
        return (ticks - cal.mid) * 360 / MAX_TICK
    bounded = min(cal.range_max, max(cal.range_min, ticks))
    pct = (bounded - cal.range_min) / (cal.range_max - cal.range_min) * 100
    return 100 - pct if cal.drive_mode else pct


def to_ticks(value: float, cal: MotorCalibration, mode: NormMode) -> int:
    """Degrees or 0-100 -> Goal_Position ticks (0-100 is clipped into [0, 100] first, as LeRobot does)."""
    if not math.isfinite(value):
        raise ValueError(f"cannot convert non-finite value {value} to servo ticks")
    if mode is NormMode.DEGREES:
        return round(value * MAX_TICK / 360 + cal.mid)
    pct = min(100.0, max(0.0, 100 - value if cal.drive_mode else value))
    return round(pct / 100 * (cal.range_max - cal.range_min) + cal.range_min)


def unit_limits(cal: MotorCalibration, mode: NormMode) -> tuple[float, float]:
    """The recorded range of motion in joint units."""
    if mode is NormMode.RANGE_0_100:
        return 0.0, 100.0
    return to_units(cal.range_min, cal, mode), to_units(cal.range_max, cal, mode)


def half_turn_homing(present_ticks: int) -> int:
    """Homing offset that makes a joint now at `present_ticks` (offset 0) read half a turn (2047)."""
    return present_ticks - HALF_TURN


def from_recording(
    ids: dict[str, int], homing_offsets: dict[str, int], mins: dict[str, int], maxes: dict[str, int]
) -> dict[str, MotorCalibration]:
    """Calibration from homing offsets and the extremes recorded while the joints were moved by hand."""
    still = [j for j in ids if mins[j] >= maxes[j]]
    if still:
        raise ValueError(f"joints {still} did not move while recording (min == max); move each through its range")
    return {j: MotorCalibration(ids[j], 0, homing_offsets[j], mins[j], maxes[j]) for j in ids}


def save(calibration: dict[str, MotorCalibration], path: str | Path) -> Path:
    """Write the JSON atomically (a crash leaves the old file or the new one, never half of one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({j: asdict(c) for j, c in calibration.items()}, indent=4) + "\n")
    os.replace(tmp, path)
    return path


def load(path: str | Path, expected_ids: dict[str, int] | None = None) -> dict[str, MotorCalibration]:
    """Read a calibration file (ours or LeRobot's); errors name the file and the joint."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no calibration file at {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of joints, got {type(data).__name__}")
    if expected_ids is not None and set(data) != set(expected_ids):
        raise ValueError(f"{path}: expected joints {sorted(expected_ids)}, got {sorted(data)}")
    out = {}
    for joint, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise ValueError(f"{path}: {joint}: expected fields {list(FIELDS)}, got {got}")
        bad = [k for k in FIELDS if not isinstance(entry[k], int) or isinstance(entry[k], bool)]
        if bad:
            raise ValueError(f"{path}: {joint}: fields {bad} must be integers, got {[entry[k] for k in bad]}")
        try:
            out[joint] = MotorCalibration(**entry)
        except ValueError as e:
            raise ValueError(f"{path}: {joint}: {e}") from None
        if expected_ids is not None and entry["id"] != expected_ids[joint]:
            raise ValueError(f"{path}: {joint}: expected servo id {expected_ids[joint]}, got {entry['id']}")
    return out


def import_lerobot(src: str | Path, dest: str | Path, expected_ids: dict[str, int] | None = None) -> Path:
    """Validate a LeRobot calibration file and save it at `dest` (e.g. `<calibration dir>/<arm id>.json`)."""
    return save(load(src, expected_ids), dest)
