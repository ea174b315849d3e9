"""Server-side adapter from wire arrays to the policy contract (the only torch code in `smolvla.serve`).

Any object with `config` (camera_keys, state_dim, action_dim, chunk_size, n_action_steps) and
`predict_action_chunk(batch) -> float32[B, chunk, action_dim]` can be served; a `tokenizer` attribute (a
`TaskTokenizer`), when present, is used to check each new task before it joins a batch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from smolvla.policy.rtc import RTCConfig, RTCGuide
from smolvla.policy.transforms import frames_to_images
from smolvla.serve.spec import ServerSpec, split_rtc_requests
from smolvla.types import OBS_STATE, TASK


class PolicyRunner:
    """Turns a batch of wire observations into the policy's batch dict and back.

    `added_latency_s` sleeps after each forward to emulate a slower model or link (benchmarks only).
    `rtc`: the operator's real-time chunking settings, used for clients that send a prefix (policies with
    `supports_rtc` only).
    """

    def __init__(
        self,
        policy: Any,
        *,
        image_shapes: dict[str, tuple[int, int, int]] | None = None,
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
            policy.config,
            image_shapes=image_shapes,
            actions_per_chunk=actions_per_chunk,
            description=description or type(policy).__name__,
        )
        params = getattr(policy, "parameters", None)
        first = next(iter(params()), None) if callable(params) else None
        self.device = first.device if first is not None else torch.device("cpu")

    def check_task(self, task: str) -> None:
        """Raise ValueError (saying why) if the policy's tokenizer cannot encode `task` within its budget.

        A policy without a tokenizer takes any task (it gets pre-tokenised or ignores language)."""
        tokenizer = getattr(self.policy, "tokenizer", None)
        if tokenizer is not None:
            tokenizer([task])

    def predict(
        self,
        images: dict[str, np.ndarray],
        state: np.ndarray,
        tasks: list[str],
        rtc: list[tuple[np.ndarray, int] | None] | None = None,
    ) -> np.ndarray:
        """images uint8[B, H, W, 3] per camera key, state float32[B, state_dim], B tasks
        -> float32[B, spec.chunk_size, action_dim] in raw action units.

        rtc: per element, (prefix float32[n, action_dim] raw, inference delay in timesteps) or None."""
        batch: dict[str, Any] = {}
        for key, frames in images.items():
            batch[key] = frames_to_images(frames, self.device)
        batch[OBS_STATE] = torch.from_numpy(state).to(self.device)
        batch[TASK] = list(tasks)
        if rtc is None:
            with torch.inference_mode():
                chunk = self.policy.predict_action_chunk(batch)
        else:
            prefixes, delays = split_rtc_requests(rtc, state.shape[0], type(self.policy).__name__, self.supports_rtc)
            guide = RTCGuide.build(prefixes, delays, int(self.policy.config.chunk_size), self.rtc)
            with torch.no_grad():  # not inference_mode: the guidance differentiates through the expert
                chunk = self.policy.predict_action_chunk(batch, rtc=guide)
        spec = self.spec
        spec.check_chunk_shape(tuple(chunk.shape), state.shape[0])
        out = chunk[:, : spec.chunk_size].detach().to("cpu", torch.float32).numpy()
        if self.added_latency_s:
            time.sleep(self.added_latency_s)
        return np.ascontiguousarray(out)
