"""The paper's SO-100 tasks (pick-place, stacking, sorting) on a simulated SO-101 arm, in MuJoCo.

One file per concept: `arm` (LeRobot joint units and limits), `meshes` (low-poly drawing copies), `scene`
(the MJCF: arm, table, cubes, bins, lights, cameras), `layout` (randomised placements; the `id` and `ood`
splits), `tasks` (instructions and partial-credit scoring), `ik` (damped least squares top-down IK),
`expert` (scripted demonstrations) and `env` (the `SimEnv`). Only `env` and `expert` need mujoco at import.
"""

from smolvla.envs.so101_suite.layout import SPLITS
from smolvla.envs.so101_suite.tasks import TASKS

__all__ = ["SPLITS", "TASKS"]
