"""LIBERO motion primitives, each on a scripted kinematic scene (`ToyScene`, below).

ToyScene: a kinematic stand-in for a LIBERO scene. The hand moves half of each commanded displacement
per step (the operational-space controller lags its goal) and cannot go below the table; the fingers
grip an object whose box holds the grip point 6 steps after a close command; a released object falls
onto the box under it or onto the table. Yaw follows the commanded rotation the same way.
"""

from __future__ import annotations

import numpy as np
import pytest
from libero_toy import ToyHand

from smolvla.envs.libero_expert import rotation_vector, yaw_matrix
from smolvla.envs.libero_primitives import (
    APPROACH_HEIGHT,
    GRIP_CLOSE,
    GRIP_OPEN,
    LIFT_HEIGHT,
    POS_UNIT,
    PRIMITIVE_FUNCTIONS,
    ROT_UNIT,
    Box,
    Context,
    approach,
    carry,
    grasp,
    grasp_pose,
    lift,
    place,
    push,
    release,
    retreat,
    wrap_half_turn,
)

TABLE_Z = 0.9


class ToyScene(ToyHand):
    def __init__(self, boxes: dict[str, Box], sites: dict[str, np.ndarray] | None = None) -> None:
        self.boxes = dict(boxes)
        self.sites = {k: np.asarray(v, dtype=np.float64) for k, v in (sites or {}).items()}
        self.owners: dict[str, str] = {}  # region -> the object it lies in
        self.pos = np.array([0.0, 0.0, 1.2])
        self.yaw = 0.0
        self.closed_steps = 0  # consecutive steps with the close command
        self.held: str | None = None
        self.grip_offset = np.zeros(3)

    # --- Scene protocol
    def box(self, name: str) -> Box:
        return self.boxes[name]

    def point(self, name: str) -> np.ndarray:
        return self.boxes[name].center.copy() if name in self.boxes else self.sites[name].copy()

    def is_object(self, name: str) -> bool:
        return name in self.boxes

    def region_owner(self, name: str) -> str | None:
        return self.owners.get(name)

    # --- dynamics
    def _inside(self, box: Box) -> bool:
        d = self.pos - box.center
        return bool(np.all(np.abs(d[:2]) <= box.radius) and box.bottom <= self.pos[2] <= box.top)

    def step(self, action: np.ndarray) -> None:
        action = np.asarray(action, dtype=np.float64)
        assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)
        new = self.pos + 0.5 * action[:3] * POS_UNIT
        floor = TABLE_Z + 0.005
        if self.held is not None:  # the held object's bottom rests on the table at the lowest
            floor = max(floor, TABLE_Z + (self.pos[2] - self.boxes[self.held].bottom))
        new[2] = max(new[2], floor)
        self.pos = new
        self.yaw += 0.5 * action[5] * ROT_UNIT
        if action[6] > 0:
            self.closed_steps += 1
            if self.held is None and self.closed_steps == 6:
                for name, box in self.boxes.items():
                    if self._inside(box):
                        self.held, self.grip_offset = name, box.center - self.pos
                        break
        else:
            self.closed_steps = 0
            if self.held is not None:
                self._drop(self.held)
                self.held = None
        if self.held is not None:
            box = self.boxes[self.held]
            self.boxes[self.held] = Box(self.pos + self.grip_offset, box.half, box.yaw)

    def _drop(self, name: str) -> None:
        box = self.boxes[name]
        support = TABLE_Z
        for other, below in self.boxes.items():
            if other != name and np.all(np.abs(box.center[:2] - below.center[:2]) <= below.radius):
                support = max(support, below.top)
        centre = box.center.copy()
        centre[2] = support + box.half[2]
        self.boxes[name] = Box(centre, box.half, box.yaw)

    def push_contacts(self, name: str) -> None:
        """Slide `name` along the table when the hand is inside its footprint at its height (pushing)."""
        box = self.boxes[name]
        d = self.pos[:2] - box.center[:2]
        dist = np.linalg.norm(d)
        if dist < box.radius and box.bottom <= self.pos[2] <= box.top + 0.01 and self.held is None:
            centre = box.center.copy()
            centre[:2] = self.pos[:2] - d / max(dist, 1e-9) * box.radius
            self.boxes[name] = Box(centre, box.half, box.yaw)


def run(scene: ToyScene, actions, limit: int = 2000, pushed: str | None = None) -> int:
    """Step `scene` with every action of the generator `actions`; returns the number of steps."""
    n = 0
    for action in actions:
        scene.step(action)
        if pushed is not None:
            scene.push_contacts(pushed)
        n += 1
        assert n < limit, "primitive did not finish"
    return n


def _box(x: float, y: float, half: tuple[float, float, float], yaw: float = 0.0, bottom: float = TABLE_Z) -> Box:
    return Box(np.array([x, y, bottom + half[2]]), np.array(half), yaw)


def _scene() -> ToyScene:
    # a narrow box turned so its narrow side lies along world x, and a plate-like target
    boxes = {
        "cream_cheese_1": _box(0.1, 0.0, (0.04, 0.02, 0.01), yaw=np.pi / 2),
        "plate_1": _box(-0.1, 0.15, (0.07, 0.07, 0.01)),
        "akita_black_bowl_1": _box(0.1, 0.2, (0.055, 0.055, 0.025)),
    }
    return ToyScene(boxes, sites={"front_region": np.array([-0.1, -0.1, TABLE_Z])})


def _pick(scene: ToyScene, ctx: Context, obj: str) -> None:
    for fn in (approach, grasp, lift):
        run(scene, fn(scene, ctx, obj))


def test_approach_hovers_over_the_grasp_point_turned_across_the_narrow_side() -> None:
    scene, ctx = _scene(), Context()
    point, yaw = grasp_pose(scene, ctx, "cream_cheese_1")
    # the box's narrow side (its y, half 0.02) lies along world x after its quarter turn: fingers along x
    assert abs(abs(yaw) - np.pi / 2) < 1e-9
    run(scene, approach(scene, ctx, "cream_cheese_1"))
    np.testing.assert_allclose(scene.pos, point + [0, 0, APPROACH_HEIGHT], atol=0.007)
    assert ctx.gripper == GRIP_OPEN
    assert abs(abs(scene.finger_axis()[0]) - 1.0) < 0.02


def test_grasp_and_lift_hold_the_object() -> None:
    scene, ctx = _scene(), Context()
    run(scene, approach(scene, ctx, "cream_cheese_1"))
    run(scene, grasp(scene, ctx, "cream_cheese_1"))
    assert ctx.gripper == GRIP_CLOSE and ctx.held == "cream_cheese_1" and scene.held == "cream_cheese_1"
    before = scene.box("cream_cheese_1").bottom
    run(scene, lift(scene, ctx, "cream_cheese_1"))
    assert scene.box("cream_cheese_1").bottom == pytest.approx(before + LIFT_HEIGHT, abs=0.011)


def test_bowls_are_taken_at_the_rim() -> None:
    scene, ctx = _scene(), Context()
    point, _ = grasp_pose(scene, ctx, "akita_black_bowl_1")
    bowl = scene.box("akita_black_bowl_1")
    # on the rim along the finger axis (world y here), below the rim's top
    assert abs(point[0] - bowl.center[0]) < 1e-9 and 0.03 < abs(point[1] - bowl.center[1]) < bowl.radius
    assert bowl.bottom < point[2] < bowl.top


def test_carry_place_release_retreat_put_the_object_on_the_target() -> None:
    scene, ctx = _scene(), Context()
    _pick(scene, ctx, "cream_cheese_1")
    run(scene, carry(scene, ctx, "cream_cheese_1", "plate_1"))
    held, plate = scene.box("cream_cheese_1"), scene.box("plate_1")
    np.testing.assert_allclose(held.center[:2], plate.center[:2], atol=0.008)
    assert held.bottom > plate.top  # carried clear of the target
    run(scene, place(scene, ctx, "cream_cheese_1", "plate_1"))
    assert scene.box("cream_cheese_1").bottom - plate.top < 0.02
    run(scene, release(scene, ctx, "cream_cheese_1"))
    assert ctx.held is None and scene.held is None
    assert scene.box("cream_cheese_1").bottom == pytest.approx(plate.top)  # resting on the plate
    z = scene.pos[2]
    run(scene, retreat(scene, ctx, "cream_cheese_1"))
    assert scene.pos[2] == pytest.approx(z + LIFT_HEIGHT, abs=0.016)


def test_place_into_a_region_uses_its_height() -> None:
    scene, ctx = _scene(), Context()
    _pick(scene, ctx, "cream_cheese_1")
    for fn in (carry, place):
        run(scene, fn(scene, ctx, "cream_cheese_1", "front_region"))
    run(scene, release(scene, ctx, "cream_cheese_1"))
    np.testing.assert_allclose(scene.box("cream_cheese_1").center[:2], [-0.1, -0.1], atol=0.008)


def test_push_slides_the_object_to_the_region() -> None:
    scene, ctx = _scene(), Context()
    run(scene, push(scene, ctx, "plate_1", "front_region"), pushed="plate_1")
    np.testing.assert_allclose(scene.box("plate_1").center[:2], [-0.1, -0.1], atol=0.012)
    assert scene.pos[2] > scene.box("plate_1").top  # lifted clear afterwards


def test_every_action_is_in_range_and_primitives_are_registered() -> None:
    scene, ctx = _scene(), Context()
    for fn in (approach, grasp, lift):
        for action in fn(scene, ctx, "cream_cheese_1"):
            assert action.dtype == np.float32 and action.shape == (7,) and np.all(np.abs(action) <= 1.0)
            scene.step(action)
    assert set(PRIMITIVE_FUNCTIONS) >= {"approach", "grasp", "lift", "carry", "place", "release", "retreat", "push"}


def test_rotation_helpers_golden() -> None:
    np.testing.assert_allclose(rotation_vector(yaw_matrix(0.3)), [0, 0, 0.3], atol=1e-12)
    np.testing.assert_allclose(rotation_vector(np.eye(3)), np.zeros(3))
    flip = np.diag([1.0, -1.0, -1.0])  # half turn about x
    np.testing.assert_allclose(np.abs(rotation_vector(flip)), [np.pi, 0, 0], atol=1e-9)
    assert wrap_half_turn(np.pi) == pytest.approx(0.0) and wrap_half_turn(2.0) == pytest.approx(2.0 - np.pi)


def test_carry_into_a_region_clears_the_object_it_lies_in() -> None:
    scene, ctx = _scene(), Context()
    # a tall basket whose contain region sits low inside it
    scene.boxes["basket_1"] = _box(-0.1, -0.1, (0.08, 0.08, 0.07))
    scene.sites["basket_1_contain_region"] = np.array([-0.1, -0.1, TABLE_Z + 0.01])
    scene.owners["basket_1_contain_region"] = "basket_1"
    _pick(scene, ctx, "cream_cheese_1")
    run(scene, carry(scene, ctx, "cream_cheese_1", "basket_1_contain_region"))
    assert scene.box("cream_cheese_1").bottom > scene.box("basket_1").top
    run(scene, place(scene, ctx, "cream_cheese_1", "basket_1_contain_region"))
    assert scene.box("cream_cheese_1").bottom < scene.box("basket_1").top
