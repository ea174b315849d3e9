"""Meta-World (Sawyer arm, 50 tasks) behind the `SimEnv` interface, with its scripted experts.

Observation: one image per camera (default "corner2", the view LeRobot's Meta-World datasets use) and a
4-d state [hand x, y, z (m), gripper opening]; the task's instruction from `metaworld_tasks`.
Action float32[4]: hand displacement [dx, dy, dz] in [-1, 1] (x 1 cm per unit) and gripper effort in [-1, 1].

Each `reset(seed)` draws a fresh object/goal placement from the task's random range using the env's own
seeded generator (never the global numpy RNG), so a seed fixes the scene and episodes differ across seeds.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from smolvla.envs.base import Expert, SimEnv, StepResult
from smolvla.envs.metaworld_tasks import INSTRUCTIONS, MT50
from smolvla.envs.rendering import CameraRenderer, load_mujoco

CAMERAS = ("corner2", "corner", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
# LeRobot moves "corner2" to this position (metres) for a clear view of the whole table; matching it keeps
# our rollouts visually comparable with policies trained on its Meta-World data.
CORNER2_POS = (0.75, 0.075, 0.7)
# Meta-World's "corner2" camera is mounted upside down: its frames need a 180-degree rotation.
ROTATED_CAMERAS = frozenset({"corner2"})
MAX_PATH_LENGTH = 500  # Meta-World refuses to step past this
FPS = 80  # 5 physics substeps of 2.5 ms per control step
STATE_DIM = 4
ACTION_DIM = 4


class MetaWorldEnv(SimEnv):
    """One Meta-World task (e.g. "reach-v3") with the goal position observable to the scripted expert."""

    def __init__(
        self,
        task_name: str,
        image_size: int = 128,
        cameras: tuple[str, ...] = ("corner2",),
        max_episode_steps: int = MAX_PATH_LENGTH,
    ) -> None:
        if task_name not in INSTRUCTIONS:
            raise ValueError(f"unknown Meta-World task {task_name!r}; expected one of {list(MT50)}")
        bad = [c for c in cameras if c not in CAMERAS]
        if bad or not cameras:
            raise ValueError(f"Meta-World cameras must be a non-empty subset of {list(CAMERAS)}, got {list(cameras)}")
        if not 0 < max_episode_steps <= MAX_PATH_LENGTH:
            raise ValueError(f"max_episode_steps must be in [1, {MAX_PATH_LENGTH}], got {max_episode_steps}")
        load_mujoco()  # selects the headless GL backend before metaworld imports mujoco
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        self.name = f"metaworld/{task_name}"
        self.task_name = task_name
        self.task = INSTRUCTIONS[task_name]
        self.cameras = tuple(cameras)
        self.camera_keys = tuple(f"observation.images.{c}" for c in cameras)
        self.image_size = image_size
        self.state_dim = STATE_DIM
        self.action_dim = ACTION_DIM
        self.fps = FPS
        self.max_episode_steps = max_episode_steps
        self.action_low = -np.ones(ACTION_DIM, np.float32)
        self.action_high = np.ones(ACTION_DIM, np.float32)

        env = ALL_V3_ENVIRONMENTS[task_name]()
        # What Meta-World's MT benchmarks set through `set_task`, done directly so no pickled task blob is
        # needed: goal in the observation (the experts read it), and placements drawn from env.np_random.
        if "sawyer_observation_space" in env.__dict__:
            del env.sawyer_observation_space  # cached for the partially observable layout
        env._partially_observable = False
        env._set_task_called = True
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        self._env = env
        model = env.model
        if "corner2" in self.cameras:
            model.cam_pos[model.camera("corner2").id] = CORNER2_POS
        self._renderer = CameraRenderer(model, image_size)
        self._raw_obs: np.ndarray | None = None
        self._seeded = False

    @property
    def raw_observation(self) -> np.ndarray:
        """Meta-World's full float64[39] state vector (hand, objects, goal): privileged, for experts only."""
        if self._raw_obs is None:
            raise RuntimeError(f"{self.name}: call reset() first")
        return self._raw_obs

    def render(self) -> dict[str, np.ndarray]:
        """Current frames: camera name -> uint8[image_size, image_size, 3]."""
        frames = {}
        for cam in self.cameras:
            img = self._renderer.render(self._env.data, cam)
            frames[cam] = np.ascontiguousarray(img[::-1, ::-1]) if cam in ROTATED_CAMERAS else img
        return frames

    def _observe(self, raw: np.ndarray) -> dict[str, Any]:
        self._raw_obs = raw
        return self._make_obs(self.render(), raw[:STATE_DIM])

    def _reset(self, seed: int | None) -> dict[str, Any]:
        if seed is not None:
            self._env.seed(seed)
            self._seeded = True
        elif not self._seeded:
            # Unseeded use still must not touch the global numpy RNG: seed from OS entropy once.
            self._env.seed(int(np.random.SeedSequence().generate_state(1)[0]))
            self._seeded = True
        raw, _ = self._env.reset()
        return self._observe(raw)

    def _step(self, action: np.ndarray) -> StepResult:
        raw, reward, _, _, info = self._env.step(action)
        return StepResult(obs=self._observe(raw), reward=float(reward), success=bool(info["success"]))

    def scripted_expert(self) -> MetaWorldExpert:
        return MetaWorldExpert(self)

    def close(self) -> None:
        self._renderer.close()
        self._env.close()


class MetaWorldExpert(Expert):
    """Meta-World's hand-written policy for the task, reading the privileged 39-d state."""

    def __init__(self, env: MetaWorldEnv) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        self._env = env
        self._policy = ENV_POLICY_MAP[env.task_name]()

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        with warnings.catch_warnings():
            # The experts' gains exceed 1 by design (the env clips); their warning says so every step.
            warnings.filterwarnings("ignore", message="Constant", category=UserWarning)
            action = self._policy.get_action(self._env.raw_observation)
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
