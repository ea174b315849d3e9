"""SO-101 arm pick-and-place in MuJoCo (the `lerobot-env-so101` package) behind the `SimEnv` interface.

Observation: the "front" camera and a 6-d state [5 arm joint angles (rad), gripper command in [-1, 1]
(-1 closed, +1 open)], the layout of the real SO-101's six joints. Action float32[4]: grasp-point
displacement [dx, dy, dz] in [-1, 1] (`action_scale` metres per unit; the package's IK keeps the gripper
pointing down) and the gripper target in [0, 1] (0 closed, 1 open).

Scoring follows the paper's pick-place partial credit: 0.5 once the cube has been lifted, 0.5 when it
rests released at the goal (`info["stage_scores"]`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smolvla.envs.base import Expert, SimEnv, StepResult
from smolvla.envs.rendering import CameraRenderer, load_mujoco

TASKS = {"pick-place": "pick up the cube and put it on the goal"}
CAMERAS = ("front",)
# With this scale (2.5 cm per unit action) the package's scripted controller succeeds reliably; its own
# default of 1 m per unit overshoots every move.
ACTION_SCALE = 0.025
CONTROL_DT = 0.1  # seconds per step -> 10 fps
MAX_EPISODE_STEPS = 300
# A cube this far (m) above its resting height counts as picked; pushing it along the table never gets there.
LIFT_HEIGHT = 0.03
STATE_DIM = 6
ACTION_DIM = 4


class SO101Env(SimEnv):
    """SO-101 pick-place: the cube and goal are placed at random on each reset."""

    def __init__(
        self,
        task_name: str = "pick-place",
        image_size: int = 128,
        cameras: tuple[str, ...] = CAMERAS,
        max_episode_steps: int = MAX_EPISODE_STEPS,
    ) -> None:
        if task_name not in TASKS:
            raise ValueError(f"unknown SO-101 task {task_name!r}; expected one of {list(TASKS)}")
        if tuple(cameras) != CAMERAS:
            raise ValueError(f"SO-101 cameras must be {list(CAMERAS)}, got {list(cameras)}")
        if max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
        load_mujoco()  # headless GL backend before the package imports mujoco
        from lerobot_env_so101 import SO101PickPlaceGymEnv

        self.name = f"so101/{task_name}"
        self.task = TASKS[task_name]
        self.cameras = tuple(cameras)
        self.camera_keys = tuple(f"observation.images.{c}" for c in cameras)
        self.image_size = image_size
        self.state_dim = STATE_DIM
        self.action_dim = ACTION_DIM
        self.fps = round(1.0 / CONTROL_DT)
        self.max_episode_steps = max_episode_steps
        self.action_low = np.array([-1, -1, -1, 0], np.float32)
        self.action_high = np.ones(ACTION_DIM, np.float32)

        self._env = SO101PickPlaceGymEnv(
            control_dt=CONTROL_DT, image_obs=False, random_block_position=True, action_scale=ACTION_SCALE
        )
        self._renderer = CameraRenderer(self._env.model, image_size)
        self._rest_z = 0.0
        self._lifted = False

    def block_pos(self) -> np.ndarray:
        """Cube centre float64[3] in metres (privileged, for the expert and scoring)."""
        return np.array(self._env.data.sensor("block_pos").data)

    def goal_pos(self) -> np.ndarray:
        """Where the cube centre should rest, float64[3] in metres (privileged)."""
        return self._env.goal_pos

    def grasp_point(self) -> np.ndarray:
        """The point between the jaws that the action moves, float64[3] in metres (privileged)."""
        return np.array(self._env.ik_point_pos)

    def render(self) -> dict[str, np.ndarray]:
        """Current frames: camera name -> uint8[image_size, image_size, 3]."""
        return {cam: self._renderer.render(self._env.data, cam) for cam in self.cameras}

    def _observe(self) -> dict[str, Any]:
        robot = self._env.get_robot_state()  # [qpos 5, qvel 5, gripper 1, end-effector xyz 3]
        return self._make_obs(self.render(), np.concatenate([robot[:5], robot[10:11]]))

    def _reset(self, seed: int | None) -> dict[str, Any]:
        self._env.reset(seed=seed)
        self._rest_z = float(self.block_pos()[2])
        self._lifted = False
        return self._observe()

    def _step(self, action: np.ndarray) -> StepResult:
        _, reward, terminated, _, info = self._env.step(action)
        self._lifted = self._lifted or self.block_pos()[2] - self._rest_z > LIFT_HEIGHT
        success = bool(info["succeed"])
        stages = {"pick": 0.5 if self._lifted or success else 0.0, "place": 0.5 if success else 0.0}
        # The package ends the episode early when the cube leaves the workspace: a failure.
        return StepResult(
            obs=self._observe(),
            reward=float(reward),
            success=success,
            failed=bool(terminated) and not success,
            stage_scores=stages,
        )

    def scripted_expert(self) -> SO101Expert:
        return SO101Expert(self)

    def close(self) -> None:
        self._renderer.close()
        self._env.close()


class SO101Expert(Expert):
    """The package's phase-based pick-place controller (hover, descend, grasp, lift, carry, lower, release)."""

    def __init__(self, env: SO101Env) -> None:
        from lerobot_env_so101.scripted import PickPlaceController

        self._env = env
        self._controller = PickPlaceController(action_scale=ACTION_SCALE)

    def reset(self) -> None:
        self._controller.reset()

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        env = self._env
        return self._controller.act(env.grasp_point(), env.block_pos(), env.goal_pos()).astype(np.float32)
