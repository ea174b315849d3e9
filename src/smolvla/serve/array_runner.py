"""Server-side adapter for policies that take wire arrays themselves (the torch-free `OnnxPolicy`).

Such a policy has `config` (camera_keys, state_dim, action_dim, chunk_size, n_action_steps), `check_task`
and `predict(images uint8[B, H, W, 3] per camera, state float32[B, D], tasks) -> float32[B, chunk, A]`;
this module gives it the server's `Predictor` shape without importing torch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from smolvla.serve.spec import ServerSpec


class ArrayRunner:
    """`Predictor` over an array policy; `added_latency_s` sleeps after each forward (benchmarks only)."""

    def __init__(
        self,
        policy: Any,
        *,
        actions_per_chunk: int | None = None,
        added_latency_s: float = 0.0,
        description: str | None = None,
    ) -> None:
        if added_latency_s < 0:
            raise ValueError(f"added_latency_s must be >= 0, got {added_latency_s}")
        self.policy = policy
        self.added_latency_s = added_latency_s
        self.spec = ServerSpec.from_policy_config(
            policy.config, actions_per_chunk=actions_per_chunk, description=description or type(policy).__name__
        )

    def check_task(self, task: str) -> None:
        self.policy.check_task(task)

    def predict(self, images: dict[str, np.ndarray], state: np.ndarray, tasks: list[str]) -> np.ndarray:
        chunk = self.policy.predict(images, state, tasks)
        spec = self.spec
        spec.check_chunk_shape(tuple(chunk.shape), state.shape[0])
        if self.added_latency_s:
            time.sleep(self.added_latency_s)
        return np.ascontiguousarray(chunk[:, : spec.chunk_size], dtype=np.float32)
