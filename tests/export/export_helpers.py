"""Wire batches and the torch reference of the export tests."""

from __future__ import annotations

import numpy as np
import torch


def wire_batch(camera_keys, state_dim: int, batch: int = 2, hw: tuple[int, int] = (48, 64), seed: int = 0):
    """(uint8 frames per camera, float32 state, tasks) as the server receives them."""
    rng = np.random.default_rng(seed)
    images = {k: rng.integers(0, 256, (batch, *hw, 3), dtype=np.uint8) for k in camera_keys}
    state = rng.standard_normal((batch, state_dim)).astype(np.float32)
    tasks = ["pick up the cube", "open the drawer"][:batch] + ["push"] * max(0, batch - 2)
    return images, state, tasks


def torch_actions(policy, images, state, tasks, noise: np.ndarray) -> np.ndarray:
    """The torch policy's chunk for the same wire arrays and noise (images converted as the server does)."""
    from smolvla.policy.transforms import frames_to_images

    batch = {k: frames_to_images(v) for k, v in images.items()}
    batch["observation.state"] = torch.from_numpy(state)
    batch["task"] = list(tasks)
    return policy.predict_action_chunk(batch, noise=torch.from_numpy(noise)).numpy()
