"""The kinematic hand both LIBERO primitive test scenes share: a position, a yaw about z, and the Scene
protocol's hand queries (`smolvla.envs.libero_primitives.Context`)."""

from __future__ import annotations

import numpy as np


class ToyHand:
    pos: np.ndarray  # float64[3], metres
    yaw: float  # radians about z

    def eef_pos(self) -> np.ndarray:
        return self.pos.copy()

    def finger_axis(self) -> np.ndarray:
        return np.array([-np.sin(self.yaw), np.cos(self.yaw), 0.0])

    def rotation_error(self, yaw: float) -> np.ndarray:
        return np.array([0.0, 0.0, yaw - self.yaw])
