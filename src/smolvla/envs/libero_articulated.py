"""Motion primitives for LIBERO's articulated fixtures: open/close a cabinet drawer, turn a stove knob.

Same conventions as `libero_primitives` (generators of float32[7] actions reading a scene before every
step); the scene additionally answers `drawer(region)` and `knob(fixture)`.

    open_drawer:  the hand tilted to point its fingers at the drawer, open fingers above and below the
                  handle bar, grip, pull out, let go, back off, turn down again
    close_drawer: closed fingers in front of the handle, push the drawer in, back off, rise
    turn_knob:    grasp the knob's narrow side, turn the wrist until the knob's angle reaches the target
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from smolvla.envs.libero_primitives import (
    APPROACH_HEIGHT,
    GRIP_CLOSE,
    GRIP_OPEN,
    GRIP_STEPS,
    LIFT_HEIGHT,
    MAX_MOVE_STEPS,
    Box,
    Context,
    Scene,
    hold,
    move_to,
    pose_action,
    wrap_half_turn,
)

FRONT_STANDOFF = 0.07  # the tilted hand starts this far in front of a drawer's handle (m)
BACK_OFF = 0.05  # the hand backs off this far from a pulled handle before turning down (m)
TILT_CLEARANCE = 0.05  # ... and turns this far above that point, clear of the handle (m)
TURN_TOL = 0.05  # rad
MAX_TURN_STEPS = 60
RELEASE_STEPS = 4  # open commands: the fingers 4 cm apart, clear of the handle bar
# A drawer opened for an object: its width plus this (m). Tight on purpose: in libero_goal's "open the top
# drawer and put the bowl inside" a wider drawer reaches the bowl, and the hand cannot come down to it.
ROOM_MARGIN = 0.018
ROOM_TOL = 0.01  # ... and already open to within this of that counts as far enough (m)
PULL_MARGIN = 0.01  # pull/push this much past the drawer's target travel (m)
PUSH_STANDOFF = 0.04  # closed fingers start this far in front of the handle when closing (m)
KNOB_OVERSHOOT = 0.3  # turn this far past the knob's "on" threshold (rad)
KNOB_TOL = 0.05  # rad
TURN_STEP = 0.1  # commanded wrist turn per step while turning a knob (rad)


@dataclass(frozen=True)
class Drawer:
    """A drawer's handle position float64[3] (world, m), the unit direction float64[3] it moves when opening,
    how far it is open now and how far it must be open to count as open (m)."""

    handle: np.ndarray
    pull: np.ndarray
    opening: float
    open_travel: float


@dataclass(frozen=True)
class Knob:
    """A knob's collision box, its angle about world +z now and the angle that counts as on / off (rad)."""

    box: Box
    angle: float
    on_angle: float
    off_angle: float


class ArticulatedScene(Scene, Protocol):
    """A `Scene` that also reports drawers (by region name) and knobs (by fixture name)."""

    def drawer(self, region: str) -> Drawer: ...

    def knob(self, fixture: str) -> Knob: ...


def _yaw_along(scene: ArticulatedScene, ctx: Context, direction: np.ndarray) -> float:
    """The commanded yaw that turns the finger axis parallel to `direction` (horizontal)."""
    axis = scene.finger_axis()
    turn = wrap_half_turn(float(np.arctan2(direction[1], direction[0]) - np.arctan2(axis[1], axis[0])))
    return ctx.yaw + turn


def _rise(scene: ArticulatedScene, ctx: Context, height: float) -> Iterator[np.ndarray]:
    up = scene.eef_pos().copy()
    up[2] = max(up[2], height)
    yield from move_to(scene, ctx, up, tol=0.02)


def _turn(scene: ArticulatedScene, ctx: Context, tilt: np.ndarray, to: np.ndarray) -> Iterator[np.ndarray]:
    """Tilt the hand to `tilt` (world rotation vector, float64[3]) while moving it to `to` (float64[3]),
    until both are reached (TURN_TOL, 1.5 cm) or MAX_TURN_STEPS pass."""
    ctx.tilt = np.asarray(tilt, dtype=np.float64)
    for _ in range(MAX_TURN_STEPS):
        turned = np.linalg.norm(scene.rotation_error(ctx.yaw, ctx.tilt)) < TURN_TOL
        if turned and np.linalg.norm(to - scene.eef_pos()) < 0.015:
            return
        yield pose_action(scene, ctx, to)


def front_tilt(pull: np.ndarray) -> np.ndarray:
    """float64[3] tilt that turns a downward hand, fingers closing along `pull`, to point its fingers
    horizontally against `pull` with the fingers closing vertically: a quarter turn about z x pull."""
    axis = np.cross([0.0, 0.0, 1.0], pull)
    return axis / np.linalg.norm(axis) * (np.pi / 2)


def open_travel(scene: ArticulatedScene, drawer: Drawer, room_for: str | None) -> float:
    """How far to open `drawer` (m): fully, or enough for the object `room_for` to go in (its width plus
    ROOM_MARGIN), no further than fully."""
    if room_for is None:
        return drawer.open_travel
    return min(drawer.open_travel, 2.0 * scene.box(room_for).radius + ROOM_MARGIN)


def open_drawer(
    scene: ArticulatedScene, ctx: Context, region: str, room_for: str | None = None
) -> Iterator[np.ndarray]:
    """Grip the handle bar of the drawer `region` from the front and pull it open: fully, or (`room_for`
    names an object to put in) as far as that object needs, so it does not reach what stands in front.

    The bar sits 1.6 cm in front of the drawer face and, for a lower drawer, under the handle of the one
    above: a finger (3 cm thick) fits neither behind the bar from above nor between two drawers' handles.
    So the hand tilts its fingers horizontally in front of the handle, open fingers above and below the
    bar, moves in, grips, pulls along the drawer's slide, lets go, backs off and turns down again.
    """
    drawer = scene.drawer(region)
    travel = open_travel(scene, drawer, room_for)
    if drawer.opening >= travel - (0.0 if room_for is None else ROOM_TOL):
        return
    ctx.gripper = GRIP_OPEN
    ctx.yaw = _yaw_along(scene, ctx, drawer.pull)
    front = drawer.handle + drawer.pull * FRONT_STANDOFF
    yield from _rise(scene, ctx, front[2] + TILT_CLEARANCE)
    yield from _turn(scene, ctx, front_tilt(drawer.pull), front + [0.0, 0.0, TILT_CLEARANCE])
    yield from move_to(scene, ctx, front, tol=0.006)
    yield from move_to(scene, ctx, drawer.handle, tol=0.004)
    ctx.gripper = GRIP_CLOSE
    yield from hold(scene, ctx, GRIP_STEPS)
    now = scene.drawer(region)
    # past the "open" threshold by PULL_MARGIN when opening fully; exactly as far as needed for room
    margin = PULL_MARGIN if room_for is None else 0.0
    out = now.handle + now.pull * (travel - now.opening + margin)
    yield from move_to(scene, ctx, out, tol=0.005)
    ctx.gripper = GRIP_OPEN
    yield from hold(scene, ctx, RELEASE_STEPS)
    yield from move_to(scene, ctx, scene.eef_pos() + drawer.pull * BACK_OFF, tol=0.01)
    # turn down right there: the open drawer holds the hand far from the robot, where rising first would
    # leave the arm too stretched to turn its wrist
    yield from _turn(scene, ctx, np.zeros(3), scene.eef_pos() + [0.0, 0.0, 0.02])
    # then above the drawer's handle, so that the next move across does not catch it
    yield from _rise(scene, ctx, now.handle[2] + APPROACH_HEIGHT)


def close_drawer(scene: ArticulatedScene, ctx: Context, region: str) -> Iterator[np.ndarray]:
    """Push the drawer `region` shut with closed fingers against its handle."""
    drawer = scene.drawer(region)
    if drawer.opening <= 0.0:
        return
    ctx.gripper = GRIP_CLOSE
    start = drawer.handle + drawer.pull * PUSH_STANDOFF
    yield from _rise(scene, ctx, start[2] + APPROACH_HEIGHT)
    yield from move_to(scene, ctx, start + [0.0, 0.0, APPROACH_HEIGHT], tol=0.01)
    yield from move_to(scene, ctx, start, tol=0.006)
    shut = drawer.handle - drawer.pull * (drawer.opening + PULL_MARGIN)
    yield from move_to(scene, ctx, shut, tol=0.005)
    yield from move_to(scene, ctx, scene.eef_pos() + drawer.pull * PUSH_STANDOFF, tol=0.01)
    yield from move_to(scene, ctx, scene.eef_pos() + [0.0, 0.0, LIFT_HEIGHT], tol=0.015)


def turn_knob(scene: ArticulatedScene, ctx: Context, fixture: str, to: str) -> Iterator[np.ndarray]:
    """Turn the knob of `fixture` "on" (past its on angle) or "off" (back to its off angle)."""
    if to not in ("on", "off"):
        raise ValueError(f"turn_knob: target must be 'on' or 'off', got {to!r}")
    knob = scene.knob(fixture)
    target = knob.on_angle + KNOB_OVERSHOOT if to == "on" else knob.off_angle
    if (to == "on" and knob.angle >= knob.on_angle) or (to == "off" and knob.angle <= knob.off_angle + KNOB_TOL):
        return
    box = knob.box
    narrow = box.yaw + (0.0 if box.half[0] <= box.half[1] else np.pi / 2)
    ctx.gripper = GRIP_OPEN
    ctx.yaw = _yaw_along(scene, ctx, np.array([np.cos(narrow), np.sin(narrow), 0.0]))
    grip = np.array([box.center[0], box.center[1], box.top - 0.01])
    yield from _rise(scene, ctx, grip[2] + APPROACH_HEIGHT)
    yield from move_to(scene, ctx, grip + [0.0, 0.0, APPROACH_HEIGHT], tol=0.006)
    yield from move_to(scene, ctx, grip, tol=0.004)
    ctx.gripper = GRIP_CLOSE
    yield from hold(scene, ctx, GRIP_STEPS)
    here = scene.eef_pos().copy()
    # The knob turns about world +z with the hand: the wrist's yaw goes to its grasp yaw plus the knob's
    # remaining turn, at most TURN_STEP per step so the fingers keep their hold.
    final_yaw = ctx.yaw + (target - knob.angle)
    for _ in range(MAX_MOVE_STEPS):
        if abs(target - scene.knob(fixture).angle) < KNOB_TOL:
            break
        ctx.yaw += float(np.clip(final_yaw - ctx.yaw, -TURN_STEP, TURN_STEP))
        yield pose_action(scene, ctx, here)
    ctx.gripper = GRIP_OPEN
    yield from hold(scene, ctx, GRIP_STEPS)
    yield from move_to(scene, ctx, scene.eef_pos() + [0.0, 0.0, LIFT_HEIGHT], tol=0.015)


ARTICULATED_FUNCTIONS = {"open_drawer": open_drawer, "close_drawer": close_drawer, "turn_knob": turn_knob}
