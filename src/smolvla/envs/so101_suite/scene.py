"""The MJCF scene of the suite: the SO-101 arm on a table, cubes, bins, lights and the two cameras.

One model is compiled per task (its cubes and bins) and kept for every episode: a reset moves bins and
cubes and recolours/resizes them in place (`SO101SuiteEnv._apply_layout`), much cheaper than recompiling.

    seen from above; table top at z = 0, the arm's base at the origin, its workspace a fan in front of it

              y
              ^     [bin]
              |            [cube]
     arm base o-------------------------> x          <- top camera at x = 0.44 m, 0.34 m up,
              |        [cube]                           looking down and back at the fan
              |     [bin]

The wrist camera rides on the gripper, beside the jaws and behind their tips, and looks between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smolvla.envs.rendering import load_mujoco
from smolvla.envs.so101_suite.arm import JAW_PADS, arm_xml
from smolvla.envs.so101_suite.meshes import use_low_poly_meshes

# 8 physics steps of 1/240 s per 30 fps control step. The experts succeed as well with 4 (1/120 s) but not
# with 2 (cubes slip; `benchmarks/sim_envs.py timestep`); 8 keeps a margin for learned policies' rougher
# grasps at ~0.4 ms of physics per control step, a small share next to rendering the two cameras.
PHYSICS_DT = 1.0 / 240.0
CUBE_HALF = 0.015  # default cube: 3 cm, narrower than the jaws' 4 cm grasp opening
BIN_INNER_HALF = 0.045  # 9 x 9 cm inside
BIN_WALL_HALF_HEIGHT = 0.015  # 3 cm walls
BIN_WALL_HALF_THICKNESS = 0.003
BIN_FLOOR_HALF_THICKNESS = 0.002
TABLE_RGBA = (0.72, 0.66, 0.56, 1.0)
# Above the table in front of the arm, looking down and back at the workspace: cubes and bins stay in view
# while the arm works from behind them (a camera straight above sees mostly the arm during a grasp).
TOP_CAMERA = {"pos": (0.44, 0.0, 0.34), "target": (0.16, 0.0, 0.0), "fovy": 58.0}
WRIST_CAMERA_FOVY = 80.0


@dataclass(frozen=True)
class SceneObjects:
    """The movable things of one task: cube body names and bin body names (each cube/bin has one colour)."""

    cubes: tuple[str, ...]
    bins: tuple[str, ...] = ()


def look_at(pos: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """MuJoCo camera `xyaxes` float64[6] for a camera at `pos` looking at `target` with `up` upwards."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    return np.concatenate([right, np.cross(right, forward)])


def _add_bin(world, mujoco, name: str) -> None:
    body = world.add_body(name=name, pos=[0.2, 0.0, 0.0])
    box = mujoco.mjtGeom.mjGEOM_BOX
    t, h, r = BIN_WALL_HALF_THICKNESS, BIN_WALL_HALF_HEIGHT, BIN_INNER_HALF
    body.add_geom(name=f"{name}_floor", type=box, size=[r, r, BIN_FLOOR_HALF_THICKNESS], pos=[0, 0, 0.002])
    for i, (dx, dy) in enumerate(((1, 0), (-1, 0), (0, 1), (0, -1))):
        size = [t, r + 2 * t, h] if dx else [r + 2 * t, t, h]
        body.add_geom(name=f"{name}_wall{i}", type=box, size=size, pos=[dx * (r + t), dy * (r + t), h])


def _add_cube(world, mujoco, name: str) -> None:
    body = world.add_body(name=name, pos=[0.2, 0.0, CUBE_HALF])
    body.add_freejoint(name=name)
    # condim 4: torsional friction too, so a cube held by its two faces does not spin in the jaws.
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[CUBE_HALF] * 3, mass=0.03, condim=4)


def _add_wrist_camera(spec, mujoco) -> None:
    """A camera on the gripper body, beside the jaws and behind their tips, looking at the grasp point.

    Gripper-body frame (from the `gripperframe` site): the jaws point along -z and close along x; the
    camera sits off to the side (+y), where the gripper's body does not block the view of both jaws.
    """
    tip = np.asarray(spec.site("gripperframe").pos)  # on the fixed jaw's inner face near the tips
    pos = tip + np.array([0.0, 0.05, 0.06])
    target = tip + np.array([0.01, 0.0, -0.01])
    spec.body("gripper").add_camera(
        name="wrist", pos=pos, xyaxes=look_at(pos, target, np.array([0.0, 0.0, 1.0])), fovy=WRIST_CAMERA_FOVY
    )


def build_model(objects: SceneObjects):
    """Compile the scene with `objects` -> mujoco.MjModel (cubes and bins at placeholder poses)."""
    mujoco = load_mujoco()
    spec = mujoco.MjSpec.from_file(str(arm_xml()))
    use_low_poly_meshes(spec, arm_xml().parent / spec.meshdir)
    spec.option.timestep = PHYSICS_DT
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0  # stiffer friction constraints: a grasped cube does not creep out of the jaws
    for pad in JAW_PADS:  # the package leaves the fingertip pads inert; they are what holds a cube
        spec.geom(pad).contype = 1
        spec.geom(pad).conaffinity = 1
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.3, 0.3, 0.3]
    spec.visual.headlight.specular = [0.0, 0.0, 0.0]

    # A pale backdrop for views that look past the table (the wrist camera at the start pose).
    spec.add_texture(
        name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX, builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        rgb1=[0.85, 0.88, 0.92], rgb2=[0.6, 0.65, 0.7], width=32, height=192,
    )  # fmt: skip
    world = spec.worldbody
    world.add_geom(
        name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[1.2, 1.2, 0.01], pos=[0.2, 0.0, -0.01], rgba=TABLE_RGBA
    )
    world.add_light(name="key", pos=[0.3, -0.2, 1.2], dir=[-0.1, 0.15, -1.0], diffuse=[0.7, 0.7, 0.7], directional=True)
    cam = TOP_CAMERA
    world.add_camera(
        name="top",
        pos=cam["pos"],
        xyaxes=look_at(np.array(cam["pos"]), np.array(cam["target"]), np.array([0.0, 0.0, 1.0])),
        fovy=cam["fovy"],
    )
    _add_wrist_camera(spec, mujoco)
    for name in objects.bins:
        _add_bin(world, mujoco, name)
    for name in objects.cubes:
        _add_cube(world, mujoco, name)
    return spec.compile()
