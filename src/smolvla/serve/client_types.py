"""The robot client's plain data: its configuration, the statistics of an episode, and the refusals that end
one. Torch-free (robot side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from smolvla.serve.action_queue import get_aggregator
from smolvla.serve.codec import DEFAULT_MAX_MESSAGE_BYTES
from smolvla.serve.protocol import MAX_TASK_BYTES


@dataclass(frozen=True)
class ClientConfig:
    uri: str  # ws://host:port or wss://host:port
    task: str
    fps: float = 30.0
    g: float = 0.7  # send an observation when the queue holds <= g * chunk_size actions
    # How a new chunk merges with the queued actions (action_queue.AGGREGATORS). "rtc": real-time chunking,
    # the server inpaints the new chunk against the queued actions sent with each observation.
    aggregate: str = "weighted"
    mode: Literal["async", "sync"] = "async"  # sync: observe -> infer -> execute n_action_steps -> repeat
    token: str | None = None
    ca_file: str | None = None  # certificate (or CA) to trust for wss://
    client_name: str = "robot"
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    reconnect_initial_s: float = 0.1
    reconnect_max_s: float = 2.0
    open_timeout_s: float = 5.0
    reply_timeout_s: float = 10.0  # an observation unanswered this long is given up and may be re-sent
    # A server that answers this many observations in a row with errors (no chunk between) cannot drive the
    # robot: the episode stops with ServerRefused instead of retrying for ever.
    max_consecutive_errors: int = 20

    def __post_init__(self) -> None:
        if self.fps <= 0 or not 0.0 <= self.g <= 1.0:
            raise ValueError(f"need fps > 0 and 0 <= g <= 1; got fps={self.fps}, g={self.g}")
        if self.mode not in ("async", "sync"):
            raise ValueError(f"mode must be 'async' or 'sync', got {self.mode!r}")
        if not self.uri.startswith(("ws://", "wss://")):
            raise ValueError(f"uri must start with ws:// or wss://, got {self.uri!r}")
        get_aggregator(self.aggregate)
        size = len(self.task.encode("utf-8"))
        if size > MAX_TASK_BYTES:
            raise ValueError(f"task is {size} bytes (UTF-8), over the protocol's limit of {MAX_TASK_BYTES}")
        if self.max_consecutive_errors < 1:
            raise ValueError(f"max_consecutive_errors must be >= 1, got {self.max_consecutive_errors}")


class ServerRefused(ConnectionError):
    """The server cannot serve this client as it is (`code` says why); retrying the same request cannot help.

    A ConnectionError, so command-line tools report it as the one-line reason it is, not as a crash."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class HandshakeRefused(ServerRefused):
    """The server refused the hello (version, auth, policy mismatch or a task the policy cannot take)."""


# Error replies to an observation that the same observation would get again: the episode stops at once.
STOP_CODES = frozenset({"bad_task"})


@dataclass
class EpisodeStats:
    ticks: int = 0
    executed: int = 0  # actions executed (timesteps advanced)
    hold_ticks: int = 0  # ticks with an empty queue (last position held)
    observations_sent: int = 0
    chunks: int = 0
    skipped: int = 0
    errors: int = 0  # error replies, refused chunks and bad frames
    error_codes: dict[str, int] = field(default_factory=dict)  # errors by code ("internal", "non_finite_action", ...)
    last_error: str = ""  # "code: message" of the latest error
    clipped_actions: int = 0  # actions clamped into the robot's declared range
    duration_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)  # observation sent -> chunk received
    over_budget: int = 0  # chunks whose latency exceeded chunk_size * dt * (1 - g) (async mode)
    executed_timesteps: list[int] = field(default_factory=list)  # strictly increasing by construction
    # next_timestep when each chunk was merged: the first timestep a new chunk may change (a chunk boundary).
    merged_at: list[int] = field(default_factory=list)
    done: bool = False  # the `until` predicate fired
