"""The kinematic hand both LIBERO primitive test scenes share: a position, a yaw about z, a tilt (the x and y
of a world rotation vector; zero while the fingers point down), and the Scene protocol's hand queries
(`smolvla.envs.libero_primitives.Context`)."""

from __future__ import annotations

import numpy as np

from smolvla.envs.libero_primitives import ROT_UNIT


class ToyHand:
    pos: np.ndarray  # float64[3], metres
    yaw: float  # radians about z
    tilt: np.ndarray = np.zeros(3)  # float64[3] rotation vector; replaced per instance by `turn`

    def eef_pos(self) -> np.ndarray:
        return self.pos.copy()

    def finger_axis(self) -> np.ndarray:
        return np.array([-np.sin(self.yaw), np.cos(self.yaw), 0.0])

    def rotation_error(self, yaw: float, tilt: np.ndarray) -> np.ndarray:
        return np.array([tilt[0] - self.tilt[0], tilt[1] - self.tilt[1], yaw - self.yaw])

    def turn(self, action: np.ndarray) -> None:
        """Follow half of the commanded rotation (as the hand follows half of the commanded move)."""
        self.yaw += 0.5 * float(action[5]) * ROT_UNIT
        self.tilt = self.tilt + 0.5 * np.array([action[3], action[4], 0.0]) * ROT_UNIT
