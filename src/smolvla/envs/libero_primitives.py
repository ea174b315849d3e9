"""Motion primitives for LIBERO's Panda behind the operational-space controller. Pure numpy, no simulator.

A primitive is a generator: it reads the scene (privileged poses) before every step and yields the next
action float32[7] = [dx, dy, dz, droll, dpitch, dyaw, gripper] in [-1, 1] (position units of 5 cm and
rotation units of 0.5 rad, the controller's output limits; gripper -1 open, +1 close). Primitives share a
`Context` (what is held, the commanded yaw), so "carry" knows what "grasp" took. The scene is anything with
the `Scene` methods: the simulator in `libero_expert`, or a kinematic stand-in in the tests.

The gripper points down, turned about world z (`Context.yaw`) so that fingers close across a box's narrow
side; only a drawer's handle is taken from the front, with the hand tilted (`Context.tilt`) to point its
fingers horizontally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from smolvla.envs.libero_grasp import box_candidates, hand_points, rim_candidates, unit
from smolvla.envs.libero_plan import is_drawer_region

POS_UNIT = 0.05  # metres per action unit (controller output_max for position)
ROT_UNIT = 0.5  # radians per action unit
GRIP_OPEN, GRIP_CLOSE = -1.0, 1.0
APPROACH_HEIGHT = 0.08  # hover above a grasp point before descending (m)
LIFT_HEIGHT = 0.10
CLEARANCE = 0.04  # carried object's bottom above the destination's top while carrying (m)
RELEASE_GAP = 0.015  # carried object's bottom above the destination surface when let go (m)
GRASP_DEPTH = 0.025  # grasp point below an object's top (m), at least GRASP_FLOOR above its bottom
GRASP_FLOOR = 0.012
RIM_INSET = 0.012  # bowls are taken by the rim: this far inside the rim's outer radius (m)
RIM_FLOOR = 0.014  # ... and at least this far above their bottom: the fingertips clear the table (m)
# Objects taken by the rim (hollow and round, wider than the open fingers): bowls, and plates, whose rim
# the fingers pinch as they pinch a bowl's.
RIM_OBJECTS = ("bowl", "plate")
HANDLE_DEPTH = 0.025  # a LIBERO cabinet's drawer handle stands this far in front of the drawer face (m)
GRIP_STEPS = 12  # steps to close or open the fingers
MAX_MOVE_STEPS = 120  # a move gives up after this many steps (a later check decides success)
STALL_STEPS, STALL_DIST = 10, 0.001  # ... or when the hand moved less than STALL_DIST in STALL_STEPS steps


@dataclass(frozen=True)
class Box:
    """An object's collision shape as a box standing upright: centre float64[3] (world, m), half extents
    float64[3] along its own x, y and world z, and its yaw (rad, its x axis about world z)."""

    center: np.ndarray
    half: np.ndarray
    yaw: float = 0.0

    @property
    def top(self) -> float:
        return float(self.center[2] + self.half[2])

    @property
    def bottom(self) -> float:
        return float(self.center[2] - self.half[2])

    @property
    def radius(self) -> float:
        """Half of the wider horizontal side."""
        return float(max(self.half[0], self.half[1]))


class Scene(Protocol):
    """What primitives read: poses in the world frame (m, rad)."""

    def eef_pos(self) -> np.ndarray:
        """float64[3] grip point between the fingertips."""

    def finger_axis(self) -> np.ndarray:
        """float64[3] unit horizontal direction the fingers close along."""

    def rotation_error(self, yaw: float, tilt: np.ndarray) -> np.ndarray:
        """float64[3] rotation vector from the hand's orientation to the episode's start orientation
        turned by `yaw` about world z, then by the rotation vector `tilt` float64[3] (world frame)."""

    def box(self, name: str) -> Box:
        """The named object's box."""

    def point(self, name: str) -> np.ndarray:
        """float64[3] position of a body or a site (a region)."""

    def is_object(self, name: str) -> bool:
        """True for a movable or fixed object body; False for a site (a region)."""

    def region_owner(self, name: str) -> str | None:
        """The object a region belongs to (e.g. "basket_1" for "basket_1_contain_region"), None for a region
        of the table or for an object."""

    def blocked(self, points: np.ndarray, exclude: str) -> int:
        """How many of `points` float64[N, 3] lie inside the collision geometry of anything but the robot
        and the object `exclude`."""


@dataclass
class Context:
    """Shared by the primitives of one episode: commanded yaw and tilt (a world-frame rotation vector
    float64[3] applied after the yaw; zero while the fingers point down), the held object and its offset
    from the grip point (object centre minus grip point, float64[3])."""

    yaw: float = 0.0
    tilt: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gripper: float = GRIP_OPEN
    held: str | None = None
    held_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    # the grasp `approach` chose: object, grip point minus the object's box centre float64[3], yaw
    chosen: tuple[str, np.ndarray, float] | None = None


def is_rim_object(name: str) -> bool:
    return any(kind in name for kind in RIM_OBJECTS)


def wrap_half_turn(angle: float) -> float:
    """An angle mod pi into [-pi/2, pi/2): a two-finger grasp is symmetric under a half turn."""
    return float((angle + np.pi / 2) % np.pi - np.pi / 2)


def pose_action(scene: Scene, ctx: Context, target: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """float32[7] action moving the grip point to `target` (float64[3]) at the commanded yaw and gripper."""
    pos = np.clip(gain * (np.asarray(target) - scene.eef_pos()) / POS_UNIT, -1.0, 1.0)
    rot = np.clip(scene.rotation_error(ctx.yaw, ctx.tilt) / ROT_UNIT, -1.0, 1.0)
    return np.concatenate([pos, rot, [ctx.gripper]]).astype(np.float32)


def move_to(
    scene: Scene, ctx: Context, target: np.ndarray | Callable[[], np.ndarray], tol: float = 0.008
) -> Iterator[np.ndarray]:
    """Yield actions until the grip point is within `tol` of `target` (fixed or re-read every step), the
    hand stalls (e.g. against a surface) or MAX_MOVE_STEPS pass."""
    history: list[np.ndarray] = []
    for _ in range(MAX_MOVE_STEPS):
        goal = np.asarray(target() if callable(target) else target, dtype=np.float64)
        pos = scene.eef_pos()
        if np.linalg.norm(goal - pos) < tol:
            return
        history.append(pos)
        if len(history) > STALL_STEPS and np.linalg.norm(history[-1] - history[-1 - STALL_STEPS]) < STALL_DIST:
            return
        yield pose_action(scene, ctx, goal)


def hold(scene: Scene, ctx: Context, steps: int) -> Iterator[np.ndarray]:
    """Keep the hand where it is for `steps` steps (while the gripper opens or closes)."""
    here = scene.eef_pos().copy()
    for _ in range(steps):
        yield pose_action(scene, ctx, here)


def grasp_pose(scene: Scene, ctx: Context, obj: str, target: str | None = None) -> tuple[np.ndarray, float]:
    """Where to close the fingers on `obj` (float64[3]) and the yaw to do it at.

    Bowls and plates are pinched at the rim, anything else across its narrower side, GRASP_DEPTH below
    the top; of the candidates (`libero_grasp`: rim directions; box centre, shifted or turned) the one
    where the open hand, on its way down, runs into the fewest other things (a ramekin beside the bowl,
    the walls of the drawer it stands in, a taller box). With nothing in the way that is the rim on the
    side nearer the hand along the finger axis, or the box's centre across its narrow side.
    """
    box = scene.box(obj)
    axis = scene.finger_axis()
    axis_angle = float(np.arctan2(axis[1], axis[0]))
    if is_rim_object(obj):
        near = axis_angle if np.dot(scene.eef_pos()[:2] - box.center[:2], axis[:2]) >= 0 else axis_angle + np.pi
        z = max(box.top - GRASP_DEPTH, box.bottom + RIM_FLOOR)
        candidates = rim_candidates(box.center, box.radius - RIM_INSET, z, near)
    else:
        z = max(box.top - GRASP_DEPTH, box.bottom + GRASP_FLOOR)
        candidates = box_candidates(box.center, box.half, box.yaw, z)
    # the first candidate with the fewest sampled hand points inside other things (ties keep the order),
    # where it takes the object and, given a target, where it puts it down
    shift = np.zeros(3)
    if target is not None:
        dest, surface = _destination(scene, target)
        shift = np.array([dest[0], dest[1], surface + RELEASE_GAP + box.half[2]]) - box.center
    counts = [
        scene.blocked(hand_points(p, unit(a)), obj)
        + (scene.blocked(hand_points(p + shift, unit(a)), obj) if target is not None else 0)
        for p, a in candidates
    ]
    point, angle = candidates[int(np.argmin(counts))]
    return point, ctx.yaw + wrap_half_turn(angle - axis_angle)


def approach(scene: Scene, ctx: Context, obj: str, target: str | None = None) -> Iterator[np.ndarray]:
    """Open the hand and hover APPROACH_HEIGHT above the grasp point of `obj` (chosen for room here and,
    given, at `target`, where it goes next), turned to grasp it."""
    ctx.gripper = GRIP_OPEN
    point, ctx.yaw = grasp_pose(scene, ctx, obj, target)
    ctx.chosen = (obj, point - scene.box(obj).center, ctx.yaw)
    above = point + [0.0, 0.0, APPROACH_HEIGHT]
    up = scene.eef_pos().copy()
    up[2] = max(up[2], above[2])
    yield from move_to(scene, ctx, up, tol=0.02)
    # across at that height, then straight down: a diagonal descent can catch an open drawer on the way
    yield from move_to(scene, ctx, np.array([above[0], above[1], up[2]]), tol=0.015)
    yield from move_to(scene, ctx, above, tol=0.006)


def grasp(scene: Scene, ctx: Context, obj: str) -> Iterator[np.ndarray]:
    """Descend to the grasp point of `obj` (the one `approach` chose) and close the fingers; `obj` is then
    held."""
    if ctx.chosen is not None and ctx.chosen[0] == obj:
        point = scene.box(obj).center + ctx.chosen[1]
    else:
        point, ctx.yaw = grasp_pose(scene, ctx, obj)
    yield from move_to(scene, ctx, point, tol=0.004)
    ctx.gripper = GRIP_CLOSE
    yield from hold(scene, ctx, GRIP_STEPS)
    ctx.held = obj
    ctx.held_offset = scene.box(obj).center - scene.eef_pos()


def lift(scene: Scene, ctx: Context, obj: str) -> Iterator[np.ndarray]:
    """Raise the hand LIFT_HEIGHT straight up."""
    yield from move_to(scene, ctx, scene.eef_pos() + [0.0, 0.0, LIFT_HEIGHT], tol=0.01)


def _destination(scene: Scene, target: str) -> tuple[np.ndarray, float]:
    """Where a held object goes over `target` (float64[3]) and the surface height it is put on: an object's
    top, or a region's own height."""
    if scene.is_object(target):
        box = scene.box(target)
        return box.center, box.top
    point = scene.point(target)
    if is_drawer_region(target) and hasattr(scene, "drawer"):
        # the middle of the part pulled out of the cabinet: the region's centre may still be inside it
        drawer = scene.drawer(target)
        out = drawer.handle - drawer.pull * (HANDLE_DEPTH + drawer.opening / 2.0)
        return np.array([out[0], out[1], point[2]]), float(point[2])
    return point, float(point[2])


def _held_bottom_below_grip(scene: Scene, ctx: Context) -> float:
    """How far the held object's bottom hangs below the grip point (m)."""
    box = scene.box(ctx.held) if ctx.held else None
    return 0.0 if box is None else float(scene.eef_pos()[2] - box.bottom)


def carry(scene: Scene, ctx: Context, obj: str, target: str) -> Iterator[np.ndarray]:
    """Rise until the held object clears `target` (and the object a target region lies in) by CLEARANCE,
    then bring it over `target`'s centre."""
    dest, surface = _destination(scene, target)
    owner = scene.region_owner(target)
    # a region inside an object (a basket, a drawer) is reached over that object's top
    clear = max(surface, scene.box(owner).top) if owner is not None else surface
    hang = _held_bottom_below_grip(scene, ctx)
    height = max(scene.eef_pos()[2], clear + CLEARANCE + hang)
    up = scene.eef_pos().copy()
    up[2] = height
    yield from move_to(scene, ctx, up, tol=0.015)
    over = np.array([dest[0] - ctx.held_offset[0], dest[1] - ctx.held_offset[1], height])
    yield from move_to(scene, ctx, over, tol=0.006)


def place(scene: Scene, ctx: Context, obj: str, target: str) -> Iterator[np.ndarray]:
    """Lower the held object until its bottom is RELEASE_GAP above `target`'s surface (or it touches)."""
    dest, surface = _destination(scene, target)
    hang = _held_bottom_below_grip(scene, ctx)
    down = np.array([dest[0] - ctx.held_offset[0], dest[1] - ctx.held_offset[1], surface + RELEASE_GAP + hang])
    yield from move_to(scene, ctx, down, tol=0.005)


def release(scene: Scene, ctx: Context, obj: str) -> Iterator[np.ndarray]:
    """Open the fingers where the hand is; nothing is held afterwards."""
    ctx.gripper = GRIP_OPEN
    yield from hold(scene, ctx, GRIP_STEPS)
    ctx.held = None


def retreat(scene: Scene, ctx: Context, obj: str) -> Iterator[np.ndarray]:
    """Move the open hand LIFT_HEIGHT straight up, clear of what it let go."""
    yield from move_to(scene, ctx, scene.eef_pos() + [0.0, 0.0, LIFT_HEIGHT], tol=0.015)


PUSH_DEPTH = 0.01  # the grip point aims this far below the object's top: the fingertips press on its floor (m)
PUSH_LEAD = 0.04  # while pushing, aim the hand this far ahead of the object's centre (m)
PUSH_TOL = 0.01  # stop when the object's centre is this close to the goal (m)


def push(scene: Scene, ctx: Context, obj: str, target: str) -> Iterator[np.ndarray]:
    """Slide `obj` (a plate) along the table until its centre reaches `target`'s (x, y): closed fingers
    press down on its middle and drag it by friction.

    Pushing it from behind needs room behind it, where a cabinet or a rack may stand (our first version,
    which did so, stalled there on every state); from above only the object's own footprint is needed.
    The hand turns its long side across the push line, so it sweeps a narrow lane.
    """
    box = scene.box(obj)
    goal = scene.point(target)[:2]
    direction = goal - box.center[:2]
    if np.linalg.norm(direction) < PUSH_TOL:
        return
    direction = direction / np.linalg.norm(direction)
    axis = scene.finger_axis()
    across = float(np.arctan2(direction[0], -direction[1]))  # the angle of the horizontal perpendicular
    ctx.yaw = ctx.yaw + wrap_half_turn(across - float(np.arctan2(axis[1], axis[0])))
    z = box.top - PUSH_DEPTH
    ctx.gripper = GRIP_CLOSE
    yield from move_to(scene, ctx, [*scene.eef_pos()[:2], max(scene.eef_pos()[2], box.top + 0.05)], tol=0.02)
    yield from move_to(scene, ctx, [*box.center[:2], box.top + 0.05], tol=0.01)
    yield from move_to(scene, ctx, [*box.center[:2], z], tol=0.004)  # ends pressing on it (a stall)

    for _ in range(3 * MAX_MOVE_STEPS):
        centre = scene.box(obj).center[:2]  # re-read as the object slides
        if np.linalg.norm(centre - goal) < PUSH_TOL:
            break
        yield pose_action(scene, ctx, np.array([*(centre + direction * PUSH_LEAD), z]))
    yield from move_to(scene, ctx, scene.eef_pos() + [0.0, 0.0, LIFT_HEIGHT], tol=0.015)


Primitive = Callable[..., Iterator[np.ndarray]]
PRIMITIVE_FUNCTIONS: dict[str, Primitive] = {
    "approach": approach,
    "grasp": grasp,
    "lift": lift,
    "carry": carry,
    "place": place,
    "release": release,
    "retreat": retreat,
    "push": push,
}
