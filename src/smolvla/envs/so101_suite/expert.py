"""Scripted experts: top-down pick and place through IK to absolute joint targets, from privileged poses.

Each cube move is a sequence of waypoints for the grasp point (hover over the cube, descend, close, lift,
carry over the destination, lower, open, rise). The commanded point moves towards the current waypoint at
a bounded speed and the jaw direction turns at a bounded rate, so the joint targets it sends (IK of the
commanded pose, seeded with the last solution) form a smooth trajectory, as a teleoperator's would.
A waypoint is computed from the scene when its phase begins, so a cube nudged on the way is still found.

With `approach_noise` the expert first goes to a point off the cube (and off the destination) by a random
distance up to that many metres, then corrects over the true position before descending. A perfect expert
always arrives centred, so its demonstrations never show what to do when the gripper is off target: a policy
that misjudges the cube's position by a centimetre then closes on nothing. The recorded corrections, seen by
the wrist camera, are the examples it needs (as DART-style noise injection gives them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from smolvla.envs.base import Expert
from smolvla.envs.so101_suite.arm import GRIPPER_MAX, HOME
from smolvla.envs.so101_suite.ik import TopDownIK
from smolvla.envs.so101_suite.scene import BIN_FLOOR_HALF_THICKNESS

SPEED = 0.3  # m/s of the commanded grasp point
TURN_RATE = 3.0  # rad/s of the jaw direction
CARRY_Z = 0.065  # grasp-point height while carrying: the highest a top-down grasp reaches over the fan
HOVER_CLEARANCE = 0.03  # above a cube's top before descending onto it
REACH_TOLERANCE = 0.008  # m between the measured and the commanded grasp point to call a waypoint reached
SETTLE_STEPS = 25  # give up waiting for the arm to reach a waypoint after this many steps
OPEN = 50.0  # gripper command (0-100) while approaching: jaws about 5 cm apart
CLOSED = 0.0
# After letting go and rising, the shoulder lifts back by this much (rad) before the arm heads home: a stacked
# cube's top is above the highest point a top-down grasp reaches, and a jaw still touching it would drag it.
LIFT_OFF = np.radians(-20.0)
# Joint targets change by at most this per second (rad/s): the first move, from the start pose to over the
# cube, is a joint-space move this fast rather than a jump.
JOINT_RATE = np.radians(120.0)
JOINT_TOLERANCE = np.radians(3.0)  # a joint-space waypoint is reached when every joint is this close
# Off-target approaches stay well inside the jaws' field of view at hover height (the wrist camera still sees
# the cube) and inside the reachable table.
MAX_APPROACH_NOISE = 0.05


@dataclass
class Waypoint:
    """Grasp-point target (m), jaw direction (rad about z; None: keep the current one), gripper command,
    and steps to wait once there (for the jaws to close or open). With `joints` (rad, float[5]) the arm
    goes to that pose in joint space instead (pos and yaw unused)."""

    pos: np.ndarray | None
    yaw: float | None
    gripper: float
    hold: int = 0
    joints: np.ndarray | None = None


def grasp_yaw(cube_xy: np.ndarray, cube_yaw: float) -> float:
    """The jaw direction that closes on two opposite faces of the cube with the least wrist roll: the face
    normal nearest the radial direction (where the jaws point with wrist_roll at 0)."""
    radial = np.arctan2(cube_xy[1], cube_xy[0])
    candidates = cube_yaw + np.arange(4) * np.pi / 2
    wrapped = (candidates - radial + np.pi) % (2 * np.pi) - np.pi
    return float(radial + wrapped[np.argmin(np.abs(wrapped))])


class SO101SuiteExpert(Expert):
    """Moves the task's cubes one after another: pick-place (cube -> bin), stacking (cube 0 -> on cube 1),
    sorting (each cube -> the bin of its colour)."""

    def __init__(self, env: Any, approach_noise: float = 0.0, seed: int | None = None) -> None:
        """approach_noise: largest off-target distance (m) of the first approach to a cube or destination
        (0: straight to it). seed: of the offsets' random directions and distances."""
        if not 0.0 <= approach_noise <= MAX_APPROACH_NOISE:
            raise ValueError(f"approach_noise must be in [0, {MAX_APPROACH_NOISE}] m, got {approach_noise}")
        self._env = env
        self._ik = TopDownIK(env.model)
        self._noise = float(approach_noise)
        self._rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self._phases: list[Callable[[], Waypoint]] = []
        self._waypoint: Waypoint | None = None
        self._cmd: np.ndarray | None = None
        self._yaw = 0.0
        self._q: np.ndarray | None = None
        self._waited = 0
        self._held = 0

    def _plan(self) -> None:
        env = self._env
        moves = {"pick-place": [(0, ("bin", 0))], "stacking": [(0, ("cube", 1))]}
        moves["sorting"] = [(0, ("bin", 0)), (1, ("bin", 1))]
        for cube, dest in moves[env.spec.name]:
            self._phases += self._move(cube, dest)
        # Back to the start pose, out of the top camera's view.
        home = np.radians(HOME[:5])
        self._phases.append(lambda: Waypoint(None, None, OPEN, joints=home))

    def _move(self, i: int, dest: tuple[str, int]) -> list[Callable[[], Waypoint]]:
        env = self._env
        half = lambda: env.layout.cube_half[i]  # noqa: E731  (read when the phase begins)
        cube = lambda: env.cube_pos(i)  # noqa: E731
        yaw = lambda: grasp_yaw(cube()[:2], env.cube_yaw(i))  # noqa: E731

        def over(z: float) -> np.ndarray:
            return np.array([*cube()[:2], z])

        def dest_xy() -> np.ndarray:
            """Where the grasp point goes for the held cube's centre to end over the destination: the moving jaw
            pushes a cube against the fixed one, so it sits off the grasp point by up to a few millimetres."""
            kind, j = dest
            target = np.asarray(env.layout.bin_xy[j] if kind == "bin" else env.cube_pos(j)[:2])
            point, _ = self._ik.forward(np.radians(env.joint_positions()[:5]))
            return target - (cube()[:2] - point[:2])

        def release_z() -> float:
            kind, j = dest
            if kind == "bin":
                return 2 * BIN_FLOOR_HALF_THICKNESS + half() + 0.012
            return env.cube_pos(j)[2] + env.layout.cube_half[j] + half() + 0.004

        hover = lambda: Waypoint(over(2 * half() + HOVER_CLEARANCE), yaw(), OPEN)  # noqa: E731
        carry = lambda: Waypoint(np.array([*dest_xy(), CARRY_Z]), None, CLOSED)  # noqa: E731
        approach, to_dest = [hover], [carry]
        if self._noise > 0:  # first off target, then over it: a recorded correction
            approach = [lambda: self._off_target(hover()), hover]
            to_dest = [lambda: self._off_target(carry()), carry]
        return [
            *approach,
            lambda: Waypoint(over(max(half(), 0.012)), yaw(), OPEN),
            lambda: Waypoint(over(max(half(), 0.012)), None, CLOSED, hold=10),
            lambda: Waypoint(over(CARRY_Z), None, CLOSED),
            *to_dest,
            lambda: Waypoint(np.array([*dest_xy(), release_z()]), None, CLOSED),
            lambda: Waypoint(np.array([*dest_xy(), release_z()]), None, OPEN, hold=8),
            lambda: Waypoint(np.array([*dest_xy(), CARRY_Z]), None, OPEN),
            lambda: Waypoint(None, None, OPEN, joints=self._q + [0.0, LIFT_OFF, 0.0, 0.0, 0.0]),
        ]

    def _off_target(self, wp: Waypoint) -> Waypoint:
        """`wp` moved horizontally by a random distance in [noise / 3, noise] in a random direction."""
        angle = self._rng.uniform(0.0, 2 * np.pi)
        dist = self._rng.uniform(self._noise / 3, self._noise)
        pos = wp.pos + dist * np.array([np.cos(angle), np.sin(angle), 0.0])
        return Waypoint(pos, wp.yaw, wp.gripper, wp.hold, wp.joints)

    def _jaw(self) -> np.ndarray:
        """The current jaw direction, unit float64[3] (from the fixed jaw towards the moving one)."""
        return np.array([np.cos(self._yaw), np.sin(self._yaw), 0.0])

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        env = self._env
        dt = 1.0 / env.fps
        q_now = np.radians(env.joint_positions()[:5])
        if self._q is None:  # first step of an episode: from where the arm is straight to the first waypoint
            self._q = q_now
            self._plan()
            self._advance(q_now)
            self._cmd, self._yaw = self._waypoint.pos, self._waypoint.yaw
        self._advance(q_now)
        wp = self._waypoint
        if wp.joints is not None:
            goal = wp.joints
        else:
            delta = wp.pos - self._cmd
            self._cmd = self._cmd + delta * min(1.0, SPEED * dt / max(np.linalg.norm(delta), 1e-9))
            if wp.yaw is not None:
                turn = (wp.yaw - self._yaw + np.pi) % (2 * np.pi) - np.pi
                self._yaw += float(np.clip(turn, -TURN_RATE * dt, TURN_RATE * dt))
            goal, _ = self._ik.solve(self._cmd, self._jaw(), self._q)
        self._q = self._q + np.clip(goal - self._q, -JOINT_RATE * dt, JOINT_RATE * dt)
        return np.concatenate([np.degrees(self._q), [np.clip(wp.gripper, 0.0, GRIPPER_MAX)]]).astype(np.float32)

    def _advance(self, q_now: np.ndarray) -> None:
        """Start the next phase once the commanded point reached the waypoint and the arm followed it
        (or stopped trying to), and the waypoint's hold steps have passed. The last phase never ends."""
        wp = self._waypoint
        if wp is not None and wp.joints is not None:
            self._waited += 1
            reached = np.max(np.abs(q_now - wp.joints)) < JOINT_TOLERANCE
            if not self._phases or (not reached and self._waited < SETTLE_STEPS):
                return
        elif wp is not None:
            at_cmd = np.allclose(self._cmd, wp.pos) and (wp.yaw is None or abs(self._yaw - wp.yaw) < 1e-6)
            if not at_cmd:
                return
            point, _ = self._ik.forward(q_now)
            self._waited += 1
            if np.linalg.norm(point - wp.pos) > REACH_TOLERANCE and self._waited < SETTLE_STEPS:
                return
            self._held += 1
            if self._held <= wp.hold:
                return
        self._waypoint = self._phases.pop(0)()
        self._waited = self._held = 0
