"""Server-side adapter for policies that take wire arrays themselves (the torch-free `OnnxPolicy`).

Such a policy has `config` (camera_keys, state_dim, action_dim, chunk_size, n_action_steps), `check_task`
and `predict(images uint8[B, H, W, 3] per camera, state float32[B, D], tasks[, rtc=PrefixArrays])
-> float32[B, chunk, A]`; this module gives it the server's `Predictor` shape without importing torch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from smolvla.deploy.rtc import PrefixArrays, RTCConfig
from smolvla.serve.spec import ServerSpec, split_rtc_requests


class ArrayRunner:
    """`Predictor` over an array policy; `added_latency_s` sleeps after each forward (benchmarks only).

    `rtc`: the operator's real-time chunking settings, used for clients that send a prefix (policies whose
    `supports_rtc` is true only: an export with guide.onnx).
    """

    def __init__(
        self,
        policy: Any,
        *,
        actions_per_chunk: int | None = None,
        added_latency_s: float = 0.0,
        description: str | None = None,
        rtc: RTCConfig | None = None,
    ) -> None:
        if added_latency_s < 0:
            raise ValueError(f"added_latency_s must be >= 0, got {added_latency_s}")
        self.policy = policy
        self.added_latency_s = added_latency_s
        self.rtc = rtc or RTCConfig()
        self.supports_rtc = bool(getattr(policy, "supports_rtc", False))
        self.spec = ServerSpec.from_policy_config(
            policy.config, actions_per_chunk=actions_per_chunk, description=description or type(policy).__name__
        )

    def check_task(self, task: str) -> None:
        self.policy.check_task(task)

    def predict(
        self,
        images: dict[str, np.ndarray],
        state: np.ndarray,
        tasks: list[str],
        rtc: list[tuple[np.ndarray, int] | None] | None = None,
    ) -> np.ndarray:
        """As `PolicyRunner.predict`: rtc per element, (prefix float32[n, action_dim] raw, delay) or None."""
        if rtc is None:
            chunk = self.policy.predict(images, state, tasks)
        else:
            prefixes, delays = split_rtc_requests(rtc, state.shape[0], type(self.policy).__name__, self.supports_rtc)
            guide = PrefixArrays.build(prefixes, delays, int(self.policy.config.chunk_size), self.rtc)
            chunk = self.policy.predict(images, state, tasks, rtc=guide)
        spec = self.spec
        spec.check_chunk_shape(tuple(chunk.shape), state.shape[0])
        if self.added_latency_s:
            time.sleep(self.added_latency_s)
        return np.ascontiguousarray(chunk[:, : spec.chunk_size], dtype=np.float32)
