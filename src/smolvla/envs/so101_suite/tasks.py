"""The three SO-100 tasks of the paper, with their instructions and partial-credit scoring.

Scoring reads a `SceneState` (cube poses, contacts, the lifted flags the env keeps), so unit tests score
scripted states without running an episode. Stages, as the paper scores its real-robot tasks:

    pick-place  pick 0.5 (the cube was lifted)   place 0.5 (it rests, released, inside the bin)
    stacking    pick 0.5 (the top cube lifted)   stack 0.5 (it rests, released, on the base cube)
    sorting     0.25 per cube lifted and 0.25 per cube resting, released, in the bin of its colour;
                a cube resting in the other bin earns nothing for it (not even its pick)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smolvla.envs.so101_suite.scene import BIN_INNER_HALF, BIN_WALL_HALF_HEIGHT, SceneObjects

# A cube counts as lifted once its centre has been this far (m) above where it started.
LIFT_HEIGHT = 0.03
# Resting: slower than this (m/s); pushing a cube along never lifts it, a cube still falling is not placed.
REST_SPEED = 0.05
# Stacked: the top cube's centre within this of (base top + its half size) vertically (m).
STACK_Z_TOLERANCE = 0.006


@dataclass(frozen=True)
class TaskSpec:
    """A task: its scene objects, the colours `id` uses, and its instruction template."""

    name: str
    objects: SceneObjects
    cube_colours: tuple[str, ...]
    bin_colours: tuple[str | None, ...]  # None: the neutral bin; a name: the colour of cube i
    template: str
    max_episode_steps: int

    def instruction(self, colours: list[str]) -> str:
        return self.template.format(*colours)


TASKS = {
    "pick-place": TaskSpec(
        "pick-place", SceneObjects(("cube0",), ("bin0",)), ("red",), (None,), "put the {0} cube in the bin", 300
    ),
    "stacking": TaskSpec(
        "stacking", SceneObjects(("cube0", "cube1")), ("red", "blue"), (), "put the {0} cube on the {1} cube", 300
    ),
    "sorting": TaskSpec(
        "sorting",
        SceneObjects(("cube0", "cube1"), ("bin0", "bin1")),
        ("red", "blue"),
        ("red", "blue"),
        "put the {0} cube in the {0} bin and the {1} cube in the {1} bin",
        540,
    ),
}


@dataclass
class SceneState:
    """What scoring needs, per cube (task order): centre float[3], speed (m/s), half size, whether the arm
    touches it, whether it was ever lifted; bin centres float[2] on the table (task order)."""

    cube_pos: list[np.ndarray]
    cube_speed: list[float]
    cube_half: list[float]
    cube_touched: list[bool]
    cube_lifted: list[bool]
    bin_xy: list[np.ndarray]


def resting(state: SceneState, i: int) -> bool:
    """Cube i lies still and the gripper has let go of it."""
    return state.cube_speed[i] < REST_SPEED and not state.cube_touched[i]


def in_bin(state: SceneState, i: int, b: int) -> bool:
    """Cube i's centre is inside bin b's walls and below its rim."""
    d = np.abs(state.cube_pos[i][:2] - state.bin_xy[b])
    return bool(np.all(d < BIN_INNER_HALF) and state.cube_pos[i][2] < 2 * BIN_WALL_HALF_HEIGHT)


def on_top(state: SceneState, top: int, base: int) -> bool:
    """Cube `top` sits on cube `base`: centred over it (within its half size), at the right height."""
    dxy = np.linalg.norm(state.cube_pos[top][:2] - state.cube_pos[base][:2])
    dz = state.cube_pos[top][2] - state.cube_pos[base][2]
    want = state.cube_half[top] + state.cube_half[base]
    return bool(dxy < state.cube_half[base] and abs(dz - want) < STACK_Z_TOLERANCE)


def score(task: str, state: SceneState) -> tuple[dict[str, float], bool]:
    """-> (stage scores summing to at most 1, success)."""
    lifted = state.cube_lifted
    if task == "pick-place":
        placed = lifted[0] and in_bin(state, 0, 0) and resting(state, 0)
        return {"pick": 0.5 * lifted[0], "place": 0.5 * placed}, placed
    if task == "stacking":
        stacked = lifted[0] and on_top(state, 0, 1) and resting(state, 0) and not state.cube_touched[1]
        return {"pick": 0.5 * lifted[0], "stack": 0.5 * stacked}, stacked
    if task == "sorting":
        stages: dict[str, float] = {}
        for i in range(2):
            wrong = in_bin(state, i, 1 - i) and resting(state, i)
            right = lifted[i] and in_bin(state, i, i) and resting(state, i)
            stages[f"pick{i}"] = 0.0 if wrong else 0.25 * lifted[i]
            stages[f"place{i}"] = 0.25 * right
        return stages, sum(stages.values()) == 1.0
    raise ValueError(f"unknown SO-101 task {task!r}; expected one of {list(TASKS)}")
