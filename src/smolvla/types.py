"""Small shared constants: the LeRobot batch keys, spelled once.

LeRobot's string keys appear here and in the code that converts dicts to typed objects, nowhere else.
"""

from __future__ import annotations

OBS_IMAGES_PREFIX = "observation.images."
OBS_STATE = "observation.state"
OBS_LANG_TOKENS = "observation.language.tokens"
OBS_LANG_MASK = "observation.language.attention_mask"
ACTION = "action"
ACTION_IS_PAD = "action_is_pad"
TASK = "task"
