"""What the server's policy expects, and the handshake check of a client's `hello` against it.

The spec is derived from the policy the operator started the server with; a client never names a
policy or a checkpoint, it only declares what it will send, and the server refuses a mismatch.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from smolvla.serve.codec import ProtocolError, brief
from smolvla.serve.protocol import Hello, Observation


@dataclass(frozen=True)
class ServerSpec:
    """The served policy's interface. `image_shapes` (uint8[H, W, 3] per camera) is None when the policy
    accepts any resolution (it resizes with padding); a session then pins the shapes its hello declared."""

    camera_keys: tuple[str, ...]
    state_dim: int
    action_dim: int
    chunk_size: int
    n_action_steps: int
    image_shapes: dict[str, tuple[int, int, int]] | None = None
    description: str = "policy"

    def check_chunk_shape(self, shape: tuple[int, ...], batch: int) -> None:
        """A predictor's chunk must be [batch, >= chunk_size, action_dim] (the server cuts it to chunk_size)."""
        if len(shape) != 3 or shape[0] != batch or shape[2] != self.action_dim or shape[1] < self.chunk_size:
            raise ValueError(
                f"policy returned shape {list(shape)}, expected [{batch}, >={self.chunk_size}, {self.action_dim}]"
            )

    def __post_init__(self) -> None:
        for name in ("state_dim", "action_dim", "chunk_size", "n_action_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ServerSpec.{name} must be > 0, got {getattr(self, name)}")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"ServerSpec.n_action_steps ({self.n_action_steps}) > chunk_size ({self.chunk_size})")
        if self.image_shapes is not None and set(self.image_shapes) != set(self.camera_keys):
            raise ValueError(
                f"ServerSpec.image_shapes keys {sorted(self.image_shapes)} != camera_keys {sorted(self.camera_keys)}"
            )

    @classmethod
    def from_policy_config(
        cls,
        config: Any,
        *,
        image_shapes: dict[str, tuple[int, int, int]] | None = None,
        actions_per_chunk: int | None = None,
        description: str = "policy",
    ) -> ServerSpec:
        """From a policy config with `camera_keys, state_dim, action_dim, chunk_size, n_action_steps`.

        `actions_per_chunk` (operator's choice) sends only the first k actions of each chunk.
        """
        chunk = config.chunk_size
        if actions_per_chunk is not None:
            if not 0 < actions_per_chunk <= chunk:
                raise ValueError(
                    f"actions_per_chunk must be in [1, {chunk}] (the policy's chunk_size), got {actions_per_chunk}"
                )
            chunk = actions_per_chunk
        return cls(
            camera_keys=tuple(config.camera_keys),
            state_dim=int(config.state_dim),
            action_dim=int(config.action_dim),
            chunk_size=chunk,
            n_action_steps=min(int(config.n_action_steps), chunk),
            image_shapes=image_shapes,
            description=description,
        )


# Raises ValueError (saying why) when the served policy cannot take `task`, e.g. over its token budget.
TaskCheck = Callable[[str], None]


def check_hello(hello: Hello, spec: ServerSpec, token: str | None, check_task: TaskCheck | None = None) -> None:
    """Raise ProtocolError (code "unauthorized" or "handshake_mismatch") unless `hello` fits `spec` and the
    policy can take its task (`check_task`): a task the policy cannot tokenise is refused here, once, rather
    than on every observation of the session."""
    if token is not None:
        # Constant-time compare so a wrong token's timing does not leak how many characters matched.
        sent = (hello.token or "").encode()
        if not hmac.compare_digest(sent, token.encode()):
            raise ProtocolError("unauthorized", "hello: missing or wrong token")
    problems = []
    missing = sorted(set(spec.camera_keys) - set(hello.camera_keys))
    extra = sorted(set(hello.camera_keys) - set(spec.camera_keys))
    if missing or extra:
        problems.append(
            f"camera keys: policy expects {sorted(spec.camera_keys)}, client sent {brief(sorted(hello.camera_keys))}"
            f" (missing {missing}, unexpected {brief(extra)})"
        )
    elif spec.image_shapes is not None:
        for key in spec.camera_keys:
            if tuple(spec.image_shapes[key]) != tuple(hello.image_shapes[key]):
                problems.append(
                    f"image shape of {key!r}: policy expects {list(spec.image_shapes[key])}, "
                    f"client sent {list(hello.image_shapes[key])}"
                )
    if hello.state_dim != spec.state_dim:
        problems.append(f"state_dim: policy expects {spec.state_dim}, client sent {hello.state_dim}")
    if hello.action_dim != spec.action_dim:
        problems.append(f"action_dim: policy expects {spec.action_dim}, client sent {hello.action_dim}")
    if not hello.task.strip():
        problems.append("task: must be a non-empty instruction")
    elif check_task is not None:
        try:
            check_task(hello.task)
        except ValueError as err:
            problems.append(f"task: {err}")
    if problems:
        raise ProtocolError("handshake_mismatch", "handshake mismatch: " + "; ".join(problems))


def check_observation(obs: Observation, hello: Hello) -> None:
    """Raise ProtocolError ("observation_mismatch") unless `obs` matches what the session's hello declared."""
    where = f"observation {obs.obs_id}"
    if set(obs.images) != set(hello.camera_keys):
        raise ProtocolError(
            "observation_mismatch",
            f"{where}: camera keys {brief(list(obs.images))} != declared {sorted(hello.camera_keys)}",
        )
    for key, image in obs.images.items():
        expected = hello.image_shapes[key]
        if image.dtype.name != "uint8" or tuple(image.shape) != tuple(expected):
            raise ProtocolError(
                "observation_mismatch",
                f"{where}: image {key!r} must be uint8{list(expected)}, got {image.dtype}{list(image.shape)}",
            )
    if obs.state.dtype.name != "float32" or obs.state.shape != (hello.state_dim,):
        raise ProtocolError(
            "observation_mismatch",
            f"{where}: state must be float32[{hello.state_dim}], got {obs.state.dtype}{list(obs.state.shape)}",
        )
    if not np.isfinite(obs.state).all():
        raise ProtocolError(
            "observation_mismatch", f"{where}: state holds non-finite values: {brief(obs.state.tolist())}"
        )
    if not obs.task.strip():
        raise ProtocolError("observation_mismatch", f"{where}: task must be a non-empty instruction")
    if obs.prefix is not None and obs.prefix.shape[1] != hello.action_dim:
        raise ProtocolError(
            "observation_mismatch",
            f"{where}: prefix must be float32[n, {hello.action_dim}], got {list(obs.prefix.shape)}",
        )


def split_rtc_requests(
    rtc: list[tuple[np.ndarray, int] | None], batch: int, runner: str, supports_rtc: bool
) -> tuple[list[np.ndarray | None], list[int]]:
    """A batch's per-element RTC requests, (prefix float32[n, action_dim], delay) or None, as the prefix and
    delay lists both engines' guides are built from; a runner without RTC or a length mismatch is an error."""
    if not supports_rtc:
        raise ValueError(f"{runner} cannot do real-time chunking")
    if len(rtc) != batch:
        raise ValueError(f"rtc has {len(rtc)} entries for a batch of {batch}")
    return [None if r is None else r[0] for r in rtc], [0 if r is None else int(r[1]) for r in rtc]
