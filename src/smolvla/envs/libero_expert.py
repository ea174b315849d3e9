"""LIBERO scripted expert: the task's BDDL goal -> a primitive plan (`libero_plan`), executed by the motion
primitives (`libero_primitives`) on privileged MuJoCo state read through `SimScene`.

The expert only reads the simulator; it acts through the same 7-d OSC actions a policy sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from smolvla.envs.base import Expert
from smolvla.envs.libero_articulated import ARTICULATED_FUNCTIONS, Drawer, Knob
from smolvla.envs.libero_plan import PrimitiveCall, plan_from_goal
from smolvla.envs.libero_primitives import GRIP_OPEN, PRIMITIVE_FUNCTIONS, Box, Context, hold

FUNCTIONS = {**PRIMITIVE_FUNCTIONS, **ARTICULATED_FUNCTIONS}

EEF_SITE = "gripper0_grip_site"
_ROBOT_PREFIXES = ("robot0_", "gripper0_", "mount0_")
BLOCK_MARGIN = 0.01  # m
FINGER_JOINT = "gripper0_finger_joint1"


def rotation_vector(mat: np.ndarray) -> np.ndarray:
    """float64[3, 3] rotation matrix -> rotation vector (axis * angle, angle in [0, pi])."""
    cos = np.clip((np.trace(mat) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([mat[2, 1] - mat[1, 2], mat[0, 2] - mat[2, 0], mat[1, 0] - mat[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # angle ~ pi: the axis is the dominant column of (R + I) / 2
        sym = (mat + np.eye(3)) / 2.0
        axis = sym[:, int(np.argmax(np.diag(sym)))]
        norm = np.linalg.norm(axis)
    return axis / norm * angle


def rotation_matrix(rotvec: np.ndarray) -> np.ndarray:
    """float64[3] rotation vector (axis * angle) -> float64[3, 3] rotation matrix (Rodrigues)."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(rotvec, dtype=np.float64) / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class SimScene:
    """`libero_primitives.Scene` over a live LIBERO env (robosuite's `env.env`); poses in the world frame."""

    def __init__(self, libero_env: Any) -> None:
        import mujoco

        self._mj = mujoco
        self._env = libero_env
        self.model = libero_env.sim.model._model
        self.data = libero_env.sim.data._data
        self._site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, EEF_SITE)
        self._finger = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, FINGER_JOINT)
        self._geoms: dict[object, np.ndarray] = {}
        self.reference = self.data.site_xmat[self._site].reshape(3, 3).copy()

    def set_reference(self) -> None:
        """Take the hand's current orientation as the one `rotation_error` steers back to."""
        self.reference = self.data.site_xmat[self._site].reshape(3, 3).copy()

    def eef_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._site].copy()

    def finger_axis(self) -> np.ndarray:
        axis = self.data.xaxis[self._finger].copy()
        axis[2] = 0.0
        return axis / np.linalg.norm(axis)

    def rotation_error(self, yaw: float, tilt: np.ndarray) -> np.ndarray:
        current = self.data.site_xmat[self._site].reshape(3, 3)
        return rotation_vector(rotation_matrix(tilt) @ yaw_matrix(yaw) @ self.reference @ current.T)

    def is_object(self, name: str) -> bool:
        return name in self._env.obj_body_id

    def region_owner(self, name: str) -> str | None:
        site = self._env.object_sites_dict.get(name)
        owner = getattr(site, "parent_name", None)
        return owner if owner is not None and self.is_object(owner) else None

    def point(self, name: str) -> np.ndarray:
        if self.is_object(name):
            return self.data.xpos[self._env.obj_body_id[name]].copy()
        site = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_SITE, name)
        if site < 0:
            raise ValueError(f"no object or region named {name!r} in this LIBERO scene")
        return self.data.site_xpos[site].copy()

    def blocked(self, points: np.ndarray, exclude: str) -> int:
        geoms = self._obstacle_geoms(exclude)
        rot = self.data.geom_xmat[geoms].reshape(-1, 3, 3)  # (g, 3, 3)
        # points in each geom's frame, relative to its bounding box: (g, n, 3)
        local = np.einsum("gji,gnj->gni", rot, points[None, :, :] - self.data.geom_xpos[geoms][:, None, :])
        local -= self.model.geom_aabb[geoms, None, :3]
        # each geom's box grown by BLOCK_MARGIN: a hand that only grazes something still counts it
        inside = np.all(np.abs(local) <= self.model.geom_aabb[geoms, None, 3:] + BLOCK_MARGIN, axis=-1)  # (g, n)
        return int(np.count_nonzero(inside.any(axis=0)))

    def _obstacle_geoms(self, exclude: str) -> np.ndarray:
        """Collision geoms of everything but the robot (its arm, hand and mount) and the object `exclude`."""
        key = ("obstacles", exclude)
        if key not in self._geoms:
            m = self.model
            skip = (
                set(self._collision_geoms(self._env.obj_body_id[exclude]).tolist())
                if self.is_object(exclude)
                else set()
            )

            def robot_part(geom: int) -> bool:
                body = self._mj.mj_id2name(m, self._mj.mjtObj.mjOBJ_BODY, int(m.geom_bodyid[geom])) or ""
                return body.startswith(_ROBOT_PREFIXES)

            keep = [g for g in self._collision_geoms(0).tolist() if g not in skip and not robot_part(g)]
            self._geoms[key] = np.asarray(keep, dtype=np.int64)
        return self._geoms[key]

    def _joint(self, name: str) -> tuple[int, float]:
        joint = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_JOINT, name)
        if joint < 0:
            raise ValueError(f"no joint named {name!r} in this LIBERO scene")
        return joint, float(self.data.qpos[self.model.jnt_qposadr[joint]])

    def drawer(self, region: str) -> Drawer:
        site = self._env.object_sites_dict.get(region)
        if site is None or not site.joints:
            raise ValueError(f"{region!r} is not a drawer region (a site with a joint) of this LIBERO scene")
        joint, qpos = self._joint(site.joints[0])
        if self.model.jnt_type[joint] != self._mj.mjtJoint.mjJNT_SLIDE:
            raise NotImplementedError(f"{region!r}: only sliding drawers are handled, not hinged doors")
        ranges = self._env.get_object(site.parent_name).object_properties["articulation"]
        closed = float(np.mean(ranges["default_close_ranges"]))
        opened = float(np.mean(ranges["default_open_ranges"]))
        sign = 1.0 if opened > closed else -1.0
        pull = sign * self.data.xaxis[joint]
        # the handle: the drawer's collision geom that sticks out furthest in the pull direction
        geoms = self._collision_geoms(int(self.model.jnt_bodyid[joint]))
        handle = max(geoms, key=lambda g: float(self.data.geom_xpos[g] @ pull))
        return Drawer(
            handle=self.data.geom_xpos[handle].copy(),
            pull=pull.copy(),
            opening=sign * (qpos - closed),
            open_travel=abs(opened - closed),
        )

    def knob(self, fixture: str) -> Knob:
        obj = self._env.get_object(fixture)
        ranges = obj.object_properties["articulation"] if obj is not None else {}
        if obj is None or not obj.joints or "default_turnon_ranges" not in ranges:
            raise ValueError(f"{fixture!r} has no knob (a joint with turn-on ranges) in this LIBERO scene")
        joint, qpos = self._joint(obj.joints[0])
        if self.data.xaxis[joint][2] < 0.9:
            raise NotImplementedError(f"{fixture!r}: only knobs turning about the vertical (+z) are handled")
        return Knob(
            box=self._body_box(int(self.model.jnt_bodyid[joint])),
            angle=qpos,
            on_angle=float(min(ranges["default_turnon_ranges"])),
            off_angle=float(max(ranges["default_turnoff_ranges"])),
        )

    def _collision_geoms(self, body: int) -> np.ndarray:
        if body not in self._geoms:
            m = self.model
            inside = [b for b in range(m.nbody) if b == body or _is_descendant(m, b, body)]
            geoms = [
                g for g in range(m.ngeom) if m.geom_bodyid[g] in inside and (m.geom_contype[g] or m.geom_conaffinity[g])
            ]
            self._geoms[body] = np.asarray(geoms, dtype=np.int64)
        return self._geoms[body]

    def box(self, name: str) -> Box:
        if not self.is_object(name):
            raise ValueError(f"{name!r} is not an object body of this LIBERO scene")
        return self._body_box(self._env.obj_body_id[name])

    def _body_box(self, body: int) -> Box:
        rot = self.data.xmat[body].reshape(3, 3)
        origin = self.data.xpos[body]
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for g in self._collision_geoms(body):
            # geom_aabb: centre and half sizes in the geom's frame; corners -> the body frame
            local = rot.T @ self.data.geom_xmat[g].reshape(3, 3)
            centre = rot.T @ (self.data.geom_xpos[g] - origin) + local @ self.model.geom_aabb[g, :3]
            extent = np.abs(local) @ self.model.geom_aabb[g, 3:]
            lo, hi = np.minimum(lo, centre - extent), np.maximum(hi, centre + extent)
        centre_local = (lo + hi) / 2.0
        centre = origin + rot @ centre_local
        half = (hi - lo) / 2.0
        # the vertical extent in the world frame (objects stand upright, up to small tilts)
        half_z = float(np.abs(rot[2]) @ half)
        return Box(
            center=centre, half=np.array([half[0], half[1], half_z]), yaw=float(np.arctan2(rot[1, 0], rot[0, 0]))
        )


def _is_descendant(model: Any, body: int, ancestor: int) -> bool:
    while body > 0:
        body = int(model.body_parentid[body])
        if body == ancestor:
            return True
    return False


class LiberoExpert(Expert):
    """Runs the primitive plan of the env's goal; after the plan it holds still with the hand open."""

    def __init__(self, env: Any) -> None:
        self._env = env
        self.plan: list[PrimitiveCall] = plan_from_goal(env.goal)
        self._actions: Iterator[np.ndarray] | None = None
        self._ctx = Context()
        self._scene: SimScene | None = None

    def reset(self) -> None:
        self._scene = SimScene(self._env.robosuite_env)
        self._ctx = Context()
        self._actions = self._run()

    def _run(self) -> Iterator[np.ndarray]:
        for call in self.plan:
            fn = FUNCTIONS.get(call.name)
            if fn is None:
                raise NotImplementedError(f"{self._env.name}: primitive {call.name!r} is not implemented yet")
            args = (call.obj,) if call.target is None else (call.obj, call.target)
            yield from fn(self._scene, self._ctx, *args)
        self._ctx.gripper = GRIP_OPEN
        while True:
            yield from hold(self._scene, self._ctx, 1)

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        if self._actions is None:
            raise RuntimeError("LiberoExpert: call reset() after env.reset() before act()")
        return next(self._actions)
