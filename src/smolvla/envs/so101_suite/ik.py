"""Inverse kinematics of the SO-101 for top-down grasps: damped least squares on MuJoCo's Jacobians.

The target is a pose of the grasp point (between the jaw pads): a position and a horizontal jaw direction,
with the jaws pointing straight down. Five arm joints meet these five constraints (pan and the planar chain
place the point and keep the approach vertical; wrist_roll turns the jaws), so the solver converges to an
exact solution inside the reachable region and to the nearest pose outside it.
"""

from __future__ import annotations

import numpy as np

from smolvla.envs.rendering import load_mujoco
from smolvla.envs.so101_suite.arm import ARM_JOINTS, GRASP_JAW_ANGLE, JAW_PADS

DOWN = np.array([0.0, 0.0, -1.0])
# Radians of orientation error weigh like this many metres of position error.
ORIENTATION_WEIGHT = 0.1
DAMPING = 1e-2
ITERATIONS = 40
TOLERANCE = 1e-4


class TopDownIK:
    """Joint angles (rad, float64[5]) that put the grasp point at a position with the jaws pointing down.

    Works on its own MjData, so solving never disturbs the simulation.
    """

    def __init__(self, model) -> None:
        self._mujoco = load_mujoco()
        self.model = model
        self.data = self._mujoco.MjData(model)
        self._qadr = np.array([model.joint(n).qposadr[0] for n in ARM_JOINTS])
        self._dofs = np.array([model.joint(n).dofadr[0] for n in ARM_JOINTS])
        self._range = np.array([model.joint(n).range for n in ARM_JOINTS])
        self._body = model.body("gripper").id
        self._site = model.site("gripperframe").id
        self.grasp_offset = self._grasp_offset()

    def _grasp_offset(self) -> np.ndarray:
        """The pads' midpoint at the grasp jaw angle, in the gripper body frame (float64[3])."""
        mj, d = self._mujoco, self.data
        d.qpos[:] = self.model.qpos0
        d.qpos[self.model.joint("gripper").qposadr[0]] = GRASP_JAW_ANGLE
        mj.mj_kinematics(self.model, d)
        mid = np.mean([d.geom_xpos[self.model.geom(p).id] for p in JAW_PADS], axis=0)
        return d.xmat[self._body].reshape(3, 3).T @ (mid - d.xpos[self._body])

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grasp point float64[3] and the site's rotation float64[3, 3] (columns: approach, side, jaw axis)."""
        d = self.data
        d.qpos[self._qadr] = q
        self._mujoco.mj_kinematics(self.model, d)
        point = d.xpos[self._body] + d.xmat[self._body].reshape(3, 3) @ self.grasp_offset
        return point, d.site_xmat[self._site].reshape(3, 3).copy()

    def solve(self, target: np.ndarray, jaw_dir: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray, float]:
        """-> (joint angles float64[5] within the joint ranges, remaining position error in metres).

        target: grasp point float[3] (m); jaw_dir: unit float[3], horizontal, the direction the jaws close
        along; seed: float[5] start angles (the solution stays on the seed's branch, so pass the last one).
        """
        mj, m, d = self._mujoco, self.model, self.data
        goal = np.stack([DOWN, np.cross(jaw_dir, DOWN), jaw_dir], axis=1)  # approach x, side y, jaw z
        q = np.clip(np.asarray(seed, np.float64), self._range[:, 0], self._range[:, 1])
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        err_p = np.zeros(3)
        for _ in range(ITERATIONS):
            point, rot = self.forward(q)
            err_p = target - point
            err_r = 0.5 * sum(np.cross(rot[:, i], goal[:, i]) for i in range(3))
            if np.linalg.norm(err_p) < TOLERANCE and np.linalg.norm(err_r) < 10 * TOLERANCE:
                break
            mj.mj_comPos(m, d)  # mj_jac needs the com-based quantities of this configuration
            mj.mj_jac(m, d, jacp, jacr, point, self._body)
            jac = np.vstack([jacp[:, self._dofs], ORIENTATION_WEIGHT * jacr[:, self._dofs]])  # (6, 5)
            err = np.concatenate([err_p, ORIENTATION_WEIGHT * err_r])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + DAMPING**2 * np.eye(6), err)
            q = np.clip(q + dq, self._range[:, 0], self._range[:, 1])
        return q, float(np.linalg.norm(err_p))
