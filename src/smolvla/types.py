"""Small shared constants: the LeRobot batch keys, spelled once.

LeRobot's string keys appear here and in the code that converts dicts to typed objects, nowhere else.
"""

from __future__ import annotations

OBS_IMAGES_PREFIX = "observation.images."
OBS_STATE = "observation.state"
# Privileged simulator state a scripted episode records beside the observation (object positions); policies
# never take it as input, training may regress it as an auxiliary target (`smolvla.train.aux_state`).
OBS_ENV_STATE = "observation.environment_state"
OBS_LANG_TOKENS = "observation.language.tokens"
OBS_LANG_MASK = "observation.language.attention_mask"
ACTION = "action"
ACTION_IS_PAD = "action_is_pad"
# Per-sample masks of mixture batches (True = padding): camera slots a dataset lacks, bool[B, cameras], and
# action dims beyond a dataset's real size, bool[B, action_dim]. Outside the "observation.images." namespace
# on purpose: every key in it is a camera.
OBS_IMAGES_IS_PAD = "observation.images_is_pad"
ACTION_DIM_IS_PAD = "action_dim_is_pad"
TASK = "task"
