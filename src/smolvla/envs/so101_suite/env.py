"""The SO-101 task suite behind the `SimEnv` interface: LeRobot joint-space state and actions at 30 fps.

Observation: "observation.images.top" (fixed camera over the table) and "observation.images.wrist" (on the
gripper), uint8[image_size, image_size, 3]; "observation.state" float32[6], the measured joint positions in
LeRobot units (`arm.JOINT_NAMES`: five joints in degrees, the gripper in [0, 100]).
Action float32[6]: absolute joint-position targets in the same units, clipped to the joint limits that
`action_low`/`action_high` declare (what the async client clamps to as well).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smolvla.envs.base import SimEnv, StepResult
from smolvla.envs.rendering import CameraRenderer, load_mujoco
from smolvla.envs.so101_suite import arm, tasks
from smolvla.envs.so101_suite.layout import SPLITS, Layout, colour_rgb, sample_layout
from smolvla.envs.so101_suite.scene import PHYSICS_DT

CAMERAS = ("top", "wrist")
FPS = 30
SUBSTEPS = round(1.0 / (FPS * PHYSICS_DT))
# A cube this far below the table top, or beyond its edge, has fallen off: the episode cannot succeed.
FALLEN_Z = -0.05
TABLE_REACH = 0.45
VIDEO_SIZE = 256
# `privileged_state` layout, the same for every task so one multi-task dataset has one width: up to two
# cubes (x, y, z) then up to two bins (x, y), in the task's order; slots a task lacks stay 0.
MAX_CUBES = MAX_BINS = 2
PRIVILEGED_DIM = 3 * MAX_CUBES + 2 * MAX_BINS


class SO101SuiteEnv(SimEnv):
    """One task of the suite ("pick-place", "stacking", "sorting") drawn from one split ("id", "ood")."""

    def __init__(
        self,
        task_name: str = "pick-place",
        image_size: int = 128,
        cameras: tuple[str, ...] = CAMERAS,
        max_episode_steps: int | None = None,
        split: str = "id",
    ) -> None:
        if task_name not in tasks.TASKS:
            raise ValueError(f"unknown SO-101 task {task_name!r}; expected one of {list(tasks.TASKS)}")
        if split not in SPLITS:
            raise ValueError(f"unknown SO-101 split {split!r}; expected one of {list(SPLITS)}")
        if not cameras or any(c not in CAMERAS for c in cameras):
            raise ValueError(f"SO-101 cameras must be a non-empty subset of {list(CAMERAS)}, got {list(cameras)}")
        spec = tasks.TASKS[task_name]
        limit = spec.max_episode_steps if max_episode_steps is None else max_episode_steps
        if limit <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
        self._mujoco = load_mujoco()
        from smolvla.envs.so101_suite.scene import build_model

        self.spec = spec
        self.split = split
        self.name = f"so101/{task_name}"
        self.task = spec.instruction(list(spec.cube_colours))
        self.cameras = tuple(cameras)
        self.camera_keys = tuple(f"observation.images.{c}" for c in self.cameras)
        self.image_size = image_size
        self.state_dim = self.action_dim = len(arm.JOINT_NAMES)
        self.fps = FPS
        self.max_episode_steps = limit

        self.model = build_model(spec.objects)
        self.data = self._mujoco.MjData(self.model)
        self.action_low, self.action_high = arm.action_limits(self.model)
        self._gripper_range = self.model.joint("gripper").range.copy()
        self._qadr = np.array([self.model.joint(n).qposadr[0] for n in arm.JOINT_NAMES])
        self._ctrl = np.array([self.model.actuator(n).id for n in arm.JOINT_NAMES])
        self._ctrl_range = self.model.actuator_ctrlrange[self._ctrl].copy()
        arm_root = self.model.body("base").id
        self._arm_geom = self.model.body_rootid[self.model.geom_bodyid] == arm_root  # bool[ngeom]
        self._cube_geom = [self.model.geom(c).id for c in spec.objects.cubes]
        self._cube_joint = [self.model.joint(c) for c in spec.objects.cubes]
        self._renderer = CameraRenderer(self.model, image_size)
        self._video_renderer: CameraRenderer | None = None
        self._rng = np.random.default_rng()
        self.layout: Layout | None = None
        self._rest_z = np.zeros(len(spec.objects.cubes))
        self._lifted = [False] * len(spec.objects.cubes)

    # --- privileged state (the expert and scoring read it; a policy sees only the observation) ---

    def joint_positions(self) -> np.ndarray:
        """Measured joints in LeRobot units float32[6]."""
        return arm.to_lerobot(self.data.qpos[self._qadr], self._gripper_range)

    def cube_pos(self, i: int) -> np.ndarray:
        """Centre of cube i float64[3] (m)."""
        return self.data.geom_xpos[self._cube_geom[i]].copy()

    def cube_yaw(self, i: int) -> float:
        """Rotation of cube i about the vertical (rad), from its x axis."""
        x_axis = self.data.geom_xmat[self._cube_geom[i]].reshape(3, 3)[:, 0]
        return float(np.arctan2(x_axis[1], x_axis[0]))

    def privileged_state(self) -> np.ndarray:
        """float32[PRIVILEGED_DIM]: cube centres (m), then bin centres (m) on the table; absent slots 0."""
        out = np.zeros(PRIVILEGED_DIM, dtype=np.float32)
        for i in range(len(self._cube_geom)):
            out[3 * i : 3 * i + 3] = self.cube_pos(i)
        for i, xy in enumerate(self.layout.bin_xy):
            out[3 * MAX_CUBES + 2 * i : 3 * MAX_CUBES + 2 * i + 2] = xy
        return out

    def scene_state(self) -> tasks.SceneState:
        touched = [False] * len(self._cube_geom)
        for c in self.data.contact[: self.data.ncon]:
            for a, b in ((c.geom1, c.geom2), (c.geom2, c.geom1)):
                if a in self._cube_geom and self._arm_geom[b]:
                    touched[self._cube_geom.index(a)] = True
        return tasks.SceneState(
            cube_pos=[self.cube_pos(i) for i in range(len(self._cube_geom))],
            cube_speed=[float(np.linalg.norm(self.data.qvel[j.dofadr[0] : j.dofadr[0] + 3])) for j in self._cube_joint],
            cube_half=list(self.layout.cube_half),
            cube_touched=touched,
            cube_lifted=list(self._lifted),
            bin_xy=[np.asarray(xy) for xy in self.layout.bin_xy],
        )

    # --- episode ---

    def _apply_layout(self, layout: Layout) -> None:
        m, d = self.model, self.data
        for name, xy, colour in zip(self.spec.objects.bins, layout.bin_xy, layout.bin_colour, strict=True):
            body = m.body(name)
            body.pos[:2] = xy
            for g in np.flatnonzero(m.geom_bodyid == body.id):
                m.geom_rgba[g] = (*colour_rgb(colour), 1.0)
        for i, geom in enumerate(self._cube_geom):
            half = layout.cube_half[i]
            m.geom_size[geom] = half
            m.geom_rbound[geom] = half * np.sqrt(3.0)  # the broad phase's bounding sphere follows the size
            m.geom_aabb[geom, 3:] = half
            m.geom_rgba[geom] = (*colour_rgb(layout.cube_colour[i]), 1.0)
            yaw = layout.cube_yaw[i]
            qpos = self._cube_joint[i].qposadr[0]
            d.qpos[qpos : qpos + 7] = [*layout.cube_xy[i], half, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        light = m.light("key")
        light.diffuse[:] = layout.light_diffuse
        light.dir[:] = np.asarray(layout.light_dir) / np.linalg.norm(layout.light_dir)

    def _reset(self, seed: int | None) -> dict[str, Any]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        spec = self.spec
        self.layout = sample_layout(
            self._rng, self.split, len(spec.objects.cubes), list(spec.bin_colours), list(spec.cube_colours)
        )
        self.task = spec.instruction(self.layout.cube_colour)
        self._mujoco.mj_resetData(self.model, self.data)
        self._apply_layout(self.layout)
        home = arm.to_radians(arm.HOME, self._gripper_range)
        self.data.qpos[self._qadr] = home
        self.data.ctrl[self._ctrl] = home
        self._mujoco.mj_forward(self.model, self.data)
        self._rest_z = np.array([self.cube_pos(i)[2] for i in range(len(self._cube_geom))])
        self._lifted = [False] * len(self._cube_geom)
        return self._observe()

    def _step(self, action: np.ndarray) -> StepResult:
        target = arm.to_radians(np.clip(action, self.action_low, self.action_high), self._gripper_range)
        self.data.ctrl[self._ctrl] = np.clip(target, self._ctrl_range[:, 0], self._ctrl_range[:, 1])
        self._mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        cubes = [self.cube_pos(i) for i in range(len(self._cube_geom))]
        rises = [p[2] - z0 for p, z0 in zip(cubes, self._rest_z, strict=True)]
        self._lifted = [was or bool(rise > tasks.LIFT_HEIGHT) for was, rise in zip(self._lifted, rises, strict=True)]
        stages, success = tasks.score(self.spec.name, self.scene_state())
        fallen = any(p[2] < FALLEN_Z or np.hypot(*p[:2]) > TABLE_REACH for p in cubes)
        return StepResult(
            obs=self._observe(),
            reward=float(sum(stages.values())),
            success=success,
            failed=fallen and not success,
            stage_scores=stages,
        )

    def _observe(self) -> dict[str, Any]:
        return self._make_obs(self.render(), self.joint_positions())

    def render(self) -> dict[str, np.ndarray]:
        """Current frames at the policy's size: camera name -> uint8[image_size, image_size, 3]."""
        return {cam: self._renderer.render(self.data, cam) for cam in self.cameras}

    def video_frame(self, size: int = VIDEO_SIZE) -> np.ndarray:
        """The cameras side by side at `size` px each, uint8[size, size * n_cams, 3], drawn separately from the
        policy input (crisp rollout videos whatever size the policy sees)."""
        if self._video_renderer is None or self._video_renderer.size != size:
            if self._video_renderer is not None:
                self._video_renderer.close()
            self._video_renderer = CameraRenderer(self.model, size)
        return np.concatenate([self._video_renderer.render(self.data, c) for c in self.cameras], axis=1)

    # The expert takes `approach_noise` (m) and `seed`: off-target approaches it then corrects (datagen
    # --expert-noise).
    expert_options = ("approach_noise", "seed")

    def scripted_expert(self, **options: Any):
        from smolvla.envs.so101_suite.expert import SO101SuiteExpert

        return SO101SuiteExpert(self, **options)

    def close(self) -> None:
        self._renderer.close()
        if self._video_renderer is not None:
            self._video_renderer.close()
