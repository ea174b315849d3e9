"""Drawer and knob primitives on a scripted kinematic scene (no simulator).

ToyArticulated: the hand moves half of each commanded displacement and turn per step; the gripper command
is integrated by sign, a quarter of the full travel per step (as robosuite's Panda gripper does over one
control step), so a 0 command holds the opening. A drawer follows a hand whose fingers shut around its handle
while the hand is tilted to point its fingers at the drawer; it is pushed in by a hand at handle height in
front of it; a hand at the handle that still points down (the fingers would land on the bar or behind it,
where a finger does not fit) counts as hitting the drawer face. A gripped knob turns with the wrist.
"""

from __future__ import annotations

import numpy as np
import pytest
from libero_toy import ToyHand

from smolvla.envs.libero_articulated import (
    KNOB_TOL,
    ROOM_MARGIN,
    Drawer,
    Knob,
    close_drawer,
    front_tilt,
    open_drawer,
    turn_knob,
)
from smolvla.envs.libero_primitives import POS_UNIT, Box, Context

HANDLE0 = np.array([0.0, -0.2, 1.0])  # handle position with the drawer shut
PULL = np.array([0.0, -1.0, 0.0])
KNOB_TOP = np.array([-0.3, 0.1, 0.95])


class ToyArticulated(ToyHand):
    def __init__(self, opening: float = 0.0, knob_angle: float = 0.0) -> None:
        self.pos = np.array([0.0, 0.0, 1.2])
        self.yaw = 0.0
        self.grip = -1.0  # -1 open .. +1 closed
        self.opening = opening
        self.knob_angle = knob_angle
        self.holds: str | None = None
        self.hit_face = False
        self._grip_pose = (0.0, 0.0)  # (yaw, knob angle) when the knob was gripped

    # --- scene
    def handle(self) -> np.ndarray:
        return HANDLE0 + PULL * self.opening

    def drawer(self, region: str) -> Drawer:
        return Drawer(handle=self.handle(), pull=PULL, opening=self.opening, open_travel=0.15)

    def box(self, name: str) -> Box:
        assert name == "akita_black_bowl_1", name
        return Box(np.array([0.3, 0.0, 0.925]), np.array([0.054, 0.054, 0.025]))

    def knob(self, fixture: str) -> Knob:
        box = Box(KNOB_TOP - [0, 0, 0.02], np.array([0.006, 0.034, 0.02]), yaw=0.0)
        return Knob(box=box, angle=self.knob_angle, on_angle=0.5, off_angle=0.0)

    # --- dynamics
    @property
    def width(self) -> float:
        return 0.08 * (1.0 - self.grip) / 2.0

    def step(self, action: np.ndarray) -> None:
        assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)
        self.pos = self.pos + 0.5 * action[:3] * POS_UNIT
        self.turn(action)
        was_open = self.grip < 0.9
        self.grip = float(np.clip(self.grip + 0.25 * np.sign(action[6]), -1.0, 1.0))
        shuts = was_open and self.grip >= 0.9  # fingers close around whatever is between them now
        d = self.pos - self.handle()
        facing = np.linalg.norm(self.tilt - front_tilt(PULL)) < 0.1
        if self.holds is None and shuts and np.linalg.norm(d) < 0.012 and facing:
            self.holds = "drawer"
        if self.holds is None and shuts and np.linalg.norm(self.pos - (KNOB_TOP - [0, 0, 0.01])) < 0.012:
            self.holds, self._grip_pose = "knob", (self.yaw, self.knob_angle)
        if self.grip < 0.5:
            self.holds = None
        if abs(d[2]) < 0.02 and np.linalg.norm(d[:2]) < 0.02 and np.linalg.norm(self.tilt) < 0.1:
            self.hit_face = True
        along = float((self.pos - HANDLE0) @ PULL)
        if self.holds == "drawer":
            self.opening = float(np.clip(along, 0.0, 0.2))
        elif abs(d[2]) < 0.01 and abs(d[0]) < 0.03 and 0.0 <= along < self.opening:
            self.opening = max(along, 0.0)  # pushed in from the front
        if self.holds == "knob":
            self.knob_angle = self._grip_pose[1] + (self.yaw - self._grip_pose[0])


def _run(scene: ToyArticulated, actions) -> None:
    for n, action in enumerate(actions):
        scene.step(action)
        assert n < 2000, "primitive did not finish"


def test_open_drawer_grips_the_handle_from_the_front_and_pulls() -> None:
    scene = ToyArticulated()
    _run(scene, open_drawer(scene, Context(), "cabinet_1_top_region"))
    assert scene.opening >= 0.15 and not scene.hit_face
    # let go, turned back to point down, and above the handle
    assert scene.holds is None and np.linalg.norm(scene.tilt) < 0.06
    assert scene.pos[2] > scene.handle()[2] + 0.05


def test_front_tilt_turns_the_fingers_to_point_against_the_pull() -> None:
    from smolvla.envs.libero_expert import rotation_matrix

    # a downward hand, fingers closing along the pull (+y here): after the tilt the fingers point along -y
    # and close vertically
    turn = rotation_matrix(front_tilt(np.array([0.0, 1.0, 0.0])))
    np.testing.assert_allclose(turn @ [0.0, 0.0, -1.0], [0.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(np.abs(turn @ [0.0, 1.0, 0.0]), [0.0, 0.0, 1.0], atol=1e-12)


def test_open_drawer_for_an_object_opens_only_as_far_as_it_needs() -> None:
    scene = ToyArticulated()
    _run(scene, open_drawer(scene, Context(), "cabinet_1_top_region", "akita_black_bowl_1"))
    need = 2 * 0.054 + ROOM_MARGIN  # the bowl's width and the margin, less than the full 15 cm
    assert abs(scene.opening - need) < 0.008 and not scene.hit_face
    # already open that far: nothing to do
    assert list(open_drawer(scene, Context(), "cabinet_1_top_region", "akita_black_bowl_1")) == []


def test_close_drawer_pushes_it_shut_and_does_nothing_when_shut() -> None:
    scene = ToyArticulated(opening=0.15)
    _run(scene, close_drawer(scene, Context(), "cabinet_1_top_region"))
    assert scene.opening < 0.005
    shut = ToyArticulated()
    assert list(close_drawer(shut, Context(), "cabinet_1_top_region")) == []


def test_turn_knob_on_turns_it_past_the_threshold() -> None:
    scene = ToyArticulated()
    _run(scene, turn_knob(scene, Context(), "flat_stove_1", "on"))
    assert scene.knob_angle >= 0.5 + 0.3 - KNOB_TOL
    assert scene.holds is None
    with pytest.raises(ValueError, match="target must be 'on' or 'off', got 'up'"):
        list(turn_knob(scene, Context(), "flat_stove_1", "up"))


def test_every_planned_primitive_has_an_implementation() -> None:
    from smolvla.envs.libero_expert import FUNCTIONS
    from smolvla.envs.libero_plan import PRIMITIVES

    assert set(PRIMITIVES) == set(FUNCTIONS)
