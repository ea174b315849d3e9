"""Motion primitives for LIBERO's articulated fixtures: open/close a cabinet drawer, turn a stove knob.

Same conventions as `libero_primitives` (generators of float32[7] actions reading a scene before every
step); the scene additionally answers `drawer(region)` and `knob(fixture)`.

    open_drawer:  fingers across the handle bar (closing along the pull direction), narrowed to 3 cm before
                  the descent so the inner finger clears the drawer face, grip, pull out, let go, rise
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

# robosuite's Panda gripper integrates the sign of its command, 0.01 per physics step (25 per control step):
# a quarter of its -1 (8 cm apart) .. +1 (shut) travel per step, and a 0 command keeps the opening.
GRIP_HOLD = 0.0
NARROW_STEPS = 5  # close commands from fully open: fingers 3 cm apart, around a 1.6 cm handle bar
RELEASE_STEPS = 3  # open commands from shut: 3 cm apart again, clear of the drawer face behind the bar
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


def open_drawer(scene: ArticulatedScene, ctx: Context, region: str) -> Iterator[np.ndarray]:
    """Grip the handle of the drawer `region` from above and pull it open."""
    drawer = scene.drawer(region)
    if drawer.opening >= drawer.open_travel:
        return
    ctx.gripper = GRIP_OPEN
    ctx.yaw = _yaw_along(scene, ctx, drawer.pull)
    yield from _rise(scene, ctx, drawer.handle[2] + APPROACH_HEIGHT)
    yield from move_to(scene, ctx, drawer.handle + [0.0, 0.0, APPROACH_HEIGHT], tol=0.006)
    ctx.gripper = GRIP_CLOSE
    yield from hold(scene, ctx, NARROW_STEPS)
    ctx.gripper = GRIP_HOLD
    yield from move_to(scene, ctx, drawer.handle, tol=0.004)
    ctx.gripper = GRIP_CLOSE
    yield from hold(scene, ctx, GRIP_STEPS)
    out = drawer.handle + drawer.pull * (drawer.open_travel - drawer.opening + PULL_MARGIN)
    yield from move_to(scene, ctx, out, tol=0.005)
    ctx.gripper = GRIP_OPEN
    yield from hold(scene, ctx, RELEASE_STEPS)
    ctx.gripper = GRIP_HOLD
    yield from move_to(scene, ctx, scene.eef_pos() + [0.0, 0.0, LIFT_HEIGHT], tol=0.015)


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
