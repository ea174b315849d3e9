"""The robot interface the client drives, and a deterministic simulated robot for tests and benchmarks.

Simulation environments (`smolvla.envs`) and real arms plug in through adapters that follow `Robot`.
Robot-side code: numpy only.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from smolvla.types import OBS_IMAGES_PREFIX, OBS_STATE, TASK


@runtime_checkable
class Robot(Protocol):
    """What the client needs from a robot (real or simulated).

    `camera_shapes`: full camera key ("observation.images.top") -> (H, W, 3) of its uint8 frames.
    `get_observation()` -> {camera key: uint8[H, W, 3], "observation.state": float32[state_dim], "task": str}.
    `send_action(action)` commands float32[action_dim] in raw robot units (for the simulated robot:
    absolute joint position targets). It is called once per control tick and must return within a tick.
    `hold()` is the control tick on which the client has no action to execute (its queue ran empty): the
    robot keeps its last commanded position. What that means is the robot's business (re-command an
    absolute target; zero displacement for delta actions), which is why it is not a `send_action`.

    Optionally a robot declares `action_low` and `action_high` (float32[action_dim], +-inf for an unbounded
    dimension): the client then clamps every action into that range before `send_action` (and counts it).
    They are not Protocol members, so a robot without a range still is a `Robot`.
    """

    camera_shapes: dict[str, tuple[int, int, int]]
    state_dim: int
    action_dim: int

    def get_observation(self) -> dict[str, Any]: ...

    def send_action(self, action: np.ndarray) -> None: ...

    def hold(self) -> None: ...


class ReachingRobot:
    """A rate-limited joint servo that must bring `n_joints` joints to a random goal.

    State float32[2 * n_joints] = [joint positions q, goal]; action float32[n_joints] = target positions
    within the joint limits [-1, 1] (declared as `action_low`/`action_high`; starts and goals lie inside).
    Each `send_action` is one control tick: q moves toward the target by at most `max_step` per joint.
    The camera renders q (red) and the goal (green) as one pixel per joint row, so images change with q.
    Deterministic for a given seed.
    """

    CAMERA = OBS_IMAGES_PREFIX + "front"

    def __init__(
        self,
        n_joints: int = 4,
        image_hw: tuple[int, int] = (32, 32),
        max_step: float = 0.04,
        tolerance: float = 0.05,
        task: str = "reach goal",
        seed: int = 0,
    ) -> None:
        if n_joints <= 0 or max_step <= 0 or tolerance <= 0:
            raise ValueError(f"need n_joints, max_step, tolerance > 0; got {n_joints}, {max_step}, {tolerance}")
        if image_hw[0] < n_joints:
            raise ValueError(f"image height {image_hw[0]} must be >= n_joints {n_joints} (one row per joint)")
        self.n_joints, self.max_step, self.tolerance, self.task = n_joints, max_step, tolerance, task
        self.image_hw = image_hw
        self.camera_shapes = {self.CAMERA: (image_hw[0], image_hw[1], 3)}
        self.state_dim = 2 * n_joints
        self.action_dim = n_joints
        self.action_low = np.full(n_joints, -1.0, np.float32)
        self.action_high = np.full(n_joints, 1.0, np.float32)
        self.sent_actions: list[np.ndarray] = []
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """New episode: start and goal drawn from `seed`, joint 0 exactly 1 rad from its goal."""
        rng = np.random.default_rng(seed)
        self.q = rng.uniform(-1.0, 1.0, self.n_joints).astype(np.float32)
        self.goal = rng.uniform(-1.0, 1.0, self.n_joints).astype(np.float32)
        # Joint 0 always travels exactly 1 rad, so every episode needs at least 1 / max_step ticks.
        self.goal[0] = self.q[0] - np.float32(1.0 if self.q[0] >= 0 else -1.0)
        self.ticks = 0

    def _render(self) -> np.ndarray:
        h, w = self.image_hw
        image = np.zeros((h, w, 3), dtype=np.uint8)
        cols = lambda x: np.clip(((x + 1.0) / 2.0 * (w - 1)).round().astype(int), 0, w - 1)
        rows = np.arange(self.n_joints) * (h // self.n_joints)
        image[rows, cols(self.q), 0] = 255
        image[rows, cols(self.goal), 1] = 255
        return image

    def get_observation(self) -> dict[str, Any]:
        return {
            self.CAMERA: self._render(),
            OBS_STATE: np.concatenate([self.q, self.goal]).astype(np.float32),
            TASK: self.task,
        }

    def send_action(self, action: np.ndarray) -> None:
        action = np.asarray(action)
        if action.shape != (self.action_dim,):
            raise ValueError(
                f"ReachingRobot.send_action: expected float32[{self.action_dim}], got {list(action.shape)}"
            )
        if not np.isfinite(action).all():
            raise ValueError(f"ReachingRobot.send_action: non-finite action {action.tolist()}")
        step = np.clip(action.astype(np.float32) - self.q, -self.max_step, self.max_step)
        self.q = (self.q + step).astype(np.float32)
        self.sent_actions.append(action.astype(np.float32).copy())
        self.ticks += 1

    def hold(self) -> None:
        """A tick with no new command: keep servoing to the last target (no-op before the first command)."""
        if self.sent_actions:
            self.send_action(self.sent_actions[-1])

    @property
    def success(self) -> bool:
        return bool(np.max(np.abs(self.q - self.goal)) < self.tolerance)


def reaching_expert_chunk(state: np.ndarray, chunk_size: int, max_step: float) -> np.ndarray:
    """Scripted planner for ReachingRobot: float32[2n] state -> float32[chunk_size, n] position targets
    walking from q straight to the goal at `max_step` per tick (stops at the goal)."""
    n = state.shape[-1] // 2
    q, goal = state[:n].astype(np.float64), state[n:].astype(np.float64)
    steps = np.arange(1, chunk_size + 1, dtype=np.float64)[:, None] * max_step
    delta = np.clip(goal - q, -steps, steps)
    return (q + delta).astype(np.float32)
