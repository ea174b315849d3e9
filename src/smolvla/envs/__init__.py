"""Simulation environments behind one interface (`SimEnv`), scripted experts and demonstration generation.

`make_env("metaworld/reach-v3", image_size=64)` builds an env; simulators are optional extras
(`pip install 'smolvla[sim]'`) imported only when an env is built.
"""

from smolvla.envs import rendering as _rendering  # noqa: F401  (selects the headless GL backend first)
from smolvla.envs.base import Expert, SimEnv, StepResult
from smolvla.envs.registry import list_envs, make_env, resolve_tasks
from smolvla.envs.rollout import Episode, collect_episode, expert_episode

__all__ = [
    "Episode",
    "Expert",
    "SimEnv",
    "StepResult",
    "collect_episode",
    "expert_episode",
    "list_envs",
    "make_env",
    "resolve_tasks",
]
