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

from smolvla.envs.libero_articulated import Drawer
from smolvla.envs.libero_expert import rotation_matrix, rotation_vector, yaw_matrix
from smolvla.envs.libero_grasp import hand_points, unit
from smolvla.envs.libero_primitives import (
    APPROACH_HEIGHT,
    GRIP_CLOSE,
    GRIP_OPEN,
    HANDLE_DEPTH,
    LIFT_HEIGHT,
    POS_UNIT,
    PRIMITIVE_FUNCTIONS,
    PUSH_DEPTH,
    RIM_FLOOR,
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

    def blocked(self, points: np.ndarray, exclude: str) -> int:
        inside = np.zeros(len(points), dtype=bool)
        for name, box in self.boxes.items():
            if name != exclude:
                c, s = np.cos(box.yaw), np.sin(box.yaw)
                d = points - box.center
                local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
                inside |= np.all(np.abs(local) <= box.half, axis=1)
        return int(np.count_nonzero(inside))

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
        self.turn(action)
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

    def drag_contacts(self, name: str, before: np.ndarray) -> None:
        """Slide `name` with the hand (friction) while the hand presses on it from above: inside its
        footprint and below its top; `before` float64[3] is the hand's position before this step."""
        box = self.boxes[name]
        inside = np.linalg.norm(self.pos[:2] - box.center[:2]) < box.radius
        if inside and self.pos[2] < box.top and self.held is None:
            centre = box.center.copy()
            centre[:2] += self.pos[:2] - before[:2]
            self.boxes[name] = Box(centre, box.half, box.yaw)


def run(scene: ToyScene, actions, limit: int = 2000, pushed: str | None = None) -> int:
    """Step `scene` with every action of the generator `actions`; returns the number of steps."""
    n = 0
    for action in actions:
        before = scene.pos.copy()
        scene.step(action)
        if pushed is not None:
            scene.drag_contacts(pushed, before)
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


def test_push_presses_on_the_object_and_slides_it_to_the_region() -> None:
    scene, ctx = _scene(), Context()
    lowest: list[float] = []
    for action in push(scene, ctx, "plate_1", "front_region"):
        before = scene.pos.copy()
        scene.step(action)
        scene.drag_contacts("plate_1", before)
        lowest.append(scene.pos[2])
    np.testing.assert_allclose(scene.box("plate_1").center[:2], [-0.1, -0.1], atol=0.012)
    # pressed from above (below the plate's top), never lower than PUSH_DEPTH under it
    assert scene.box("plate_1").top - PUSH_DEPTH - 0.002 < min(lowest) < scene.box("plate_1").top
    assert scene.pos[2] > scene.box("plate_1").top  # lifted clear afterwards
    # the push line is along -y; the fingers close across it (along x), so the hand is narrow along it
    assert abs(scene.finger_axis()[0]) > 0.99


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
    for rotvec in ([0.0, 0.0, 0.3], [np.pi / 2, 0.0, 0.0], [0.2, -0.4, 1.1]):
        np.testing.assert_allclose(rotation_vector(rotation_matrix(np.array(rotvec))), rotvec, atol=1e-9)
    np.testing.assert_allclose(rotation_matrix(np.array([0.0, 0.0, np.pi / 2])) @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-12)


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


def test_a_bowl_is_taken_on_the_rim_side_away_from_a_neighbour() -> None:
    scene, ctx = _scene(), Context()
    bowl = scene.box("akita_black_bowl_1")
    near, _ = grasp_pose(scene, ctx, "akita_black_bowl_1")
    assert near[1] < bowl.center[1]  # free: the side nearer the hand (it is at y = 0)
    # a ramekin right where the outer finger would go down on that side
    scene.boxes["ramekin_1"] = _box(0.1, 0.2 - 0.1, (0.03, 0.03, 0.03))
    point, yaw = grasp_pose(scene, ctx, "akita_black_bowl_1")
    assert point[1] > bowl.center[1] and np.linalg.norm(point[:2] - bowl.center[:2]) > 0.03
    assert scene.blocked(hand_points(point, unit(np.pi / 2 + yaw)), "akita_black_bowl_1") == 0


def test_a_box_is_taken_off_centre_when_a_tall_neighbour_stands_by_the_palm() -> None:
    scene, ctx = _scene(), Context()
    centre = scene.box("cream_cheese_1").center
    # the cream cheese's long side lies along world y, the fingers close along x; the palm reaches 10 cm
    # along x: a tall box beside its +y half at one end
    scene.boxes["tomato_sauce_1"] = _box(0.1 + 0.09, 0.03, (0.015, 0.012, 0.05))
    point, yaw = grasp_pose(scene, ctx, "cream_cheese_1")
    assert point[1] < centre[1] - 0.01  # shifted along the long side, away from it
    assert abs(abs(yaw) - np.pi / 2) < 1e-9  # still across the narrow side


def test_plates_are_taken_at_the_rim_above_the_table() -> None:
    scene, ctx = _scene(), Context()
    point, _ = grasp_pose(scene, ctx, "plate_1")
    plate = scene.box("plate_1")
    assert plate.radius - 0.02 < np.linalg.norm(point[:2] - plate.center[:2]) < plate.radius
    assert point[2] == pytest.approx(plate.bottom + RIM_FLOOR)  # a 2 cm plate: the floor, not 2.5 cm down


def test_approach_goes_across_before_it_goes_down() -> None:
    scene, ctx = _scene(), Context()
    scene.pos = np.array([-0.2, -0.1, 1.2])
    start_z = scene.pos[2]
    point, _ = grasp_pose(scene, ctx, "cream_cheese_1")
    for action in approach(scene, ctx, "cream_cheese_1"):
        scene.step(action)
        if np.linalg.norm(scene.pos[:2] - point[:2]) > 0.03:
            assert scene.pos[2] > start_z - 0.01  # no diagonal descent on the way over
    np.testing.assert_allclose(scene.pos, point + [0, 0, APPROACH_HEIGHT], atol=0.007)


class DrawerToyScene(ToyScene):
    """A ToyScene with one open drawer region, for where things go when put in it."""

    def drawer(self, region: str) -> Drawer:
        return Drawer(handle=np.array([0.0, 0.0, 1.09]), pull=np.array([0.0, 1.0, 0.0]), opening=0.12, open_travel=0.15)


def test_placing_into_a_drawer_aims_at_the_part_pulled_out() -> None:
    scene = DrawerToyScene(_scene().boxes, sites={"wooden_cabinet_1_top_region": np.array([0.0, -0.16, 1.09])})
    ctx = Context()
    _pick(scene, ctx, "cream_cheese_1")
    run(scene, carry(scene, ctx, "cream_cheese_1", "wooden_cabinet_1_top_region"))
    # the region's centre (y = -0.16) is still inside the cabinet; the pulled-out part is 0 .. -0.12 behind
    # the handle's face
    expected_y = 0.0 - (HANDLE_DEPTH + 0.12 / 2)
    np.testing.assert_allclose(scene.box("cream_cheese_1").center[:2], [0.0, expected_y], atol=0.008)


def test_the_grasp_leaves_room_for_the_hand_where_the_object_is_put_down() -> None:
    scene, ctx = _scene(), Context()
    bowl = scene.box("akita_black_bowl_1")
    free, _ = grasp_pose(scene, ctx, "akita_black_bowl_1", "front_region")
    assert free[1] < bowl.center[1]  # nothing in the way at either end: the side nearer the hand
    # a tall cabinet just behind the destination (-y of it), where that side's palm would come down
    scene.boxes["wooden_cabinet_1"] = _box(-0.1, -0.1 - 0.15, (0.15, 0.08, 0.12))
    point, _ = grasp_pose(scene, ctx, "akita_black_bowl_1", "front_region")
    assert point[1] > bowl.center[1] + 0.03  # the rim on the other side: the palm reaches +y there
    # without the destination the cabinet is out of reach and the nearer side stays
    np.testing.assert_allclose(grasp_pose(scene, ctx, "akita_black_bowl_1")[0], free)
