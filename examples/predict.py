import sys

import torch

from smolvla import SmolVLAPolicy

# A directory written by `smolvla train` (or `save_pretrained`): weights, config, stats and tokenizer.
path = sys.argv[1] if len(sys.argv) > 1 else "runs/mt10/checkpoints/last/pretrained_model"
policy = SmolVLAPolicy.from_pretrained(path)
cfg = policy.config

# One observation per batch row B, in the robot's raw units, under LeRobot's keys:
batch = {
    # every camera the policy was trained with: float32[B, 3, H, W] in [0, 1] (any H, W: resized with padding)
    **{camera: torch.rand(1, 3, 64, 64) for camera in cfg.camera_keys},
    "observation.state": torch.zeros(1, cfg.state_dim),  # float32[B, state_dim]
    "task": ["push the drawer shut"],  # B instructions (or one, shared by every row)
}
actions = policy.predict_action_chunk(batch)  # float32[B, chunk_size, action_dim], raw units
print(cfg.camera_keys, tuple(actions.shape))

# On a robot, call `policy.select_action(batch)` every control tick instead: it returns float32[B, action_dim],
# planning a new chunk when the queue of cfg.n_action_steps actions runs out (`policy.reset()` per episode).
