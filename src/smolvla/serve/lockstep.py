"""The async engine on a virtual clock: the real `RobotClient` and the server's per-observation logic, in
lockstep, with inference latency counted in control ticks instead of wall time.

Wall-clock runs measure the machine as much as the engine: on a loaded CPU the forward pass and the
client's tick loop both run late, so "0.1 s of latency" is whatever the scheduler made of it. Here every
tick is one `RobotClient.step()`; the forward runs at once (its wall time does not count) and its reply is
delivered `latency_ticks` ticks after the server's one forward worker became free, exactly as the real
server serialises forwards. The similarity filter is the real `Session`; replies carry a `sent_at` moved
back by the virtual latency, so the client measures round trips (and RTC delays) in ticks as on a robot.

    client.step()  tick t: merge replies due at t, execute queue[next_timestep] or hold, maybe send
    server.send()  Session.admit -> skipped (delivered at t + 1) or forward now, delivered at
                   max(t, worker free) + latency_ticks

No torch here: the predictor (a `PolicyRunner` or any object with `predict`) brings its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from smolvla.serve.client import EpisodeStats, RobotClient
from smolvla.serve.codec import pack, unpack
from smolvla.serve.protocol import CLIENT_TO_SERVER, RTC_FEATURE, Actions, Hello, Observation, Skipped, Welcome, parse
from smolvla.serve.session import Session


class LockstepServer:
    """A server for one client on a virtual clock (see module docstring); also the client's transport.

    predictor: `predict(images, state, tasks[, rtc=...])` -> float32[1, chunk, action_dim] and `spec`
    (chunk_size, n_action_steps, action_dim; `supports_rtc` optional). `forwards` lists the observations
    that went to the predictor, `sent` every observation received.
    """

    def __init__(self, predictor: Any, hello: Hello, latency_ticks: int, fps: float, epsilon: float = 0.05) -> None:
        if latency_ticks < 0 or fps <= 0 or epsilon < 0:
            raise ValueError(f"need latency_ticks >= 0, fps > 0, epsilon >= 0; got {latency_ticks}, {fps}, {epsilon}")
        self.predictor, self.latency_ticks, self.fps, self.epsilon = predictor, latency_ticks, fps, epsilon
        self.session = Session("lockstep", hello, accepted_task=hello.task)
        self.tick = 0
        self._worker_free = 0
        self._pending: list[tuple[int, Any]] = []
        self.sent: list[Observation] = []
        self.forwards: list[Observation] = []

    def welcome(self) -> Welcome:
        spec = self.predictor.spec
        rtc = getattr(self.predictor, "supports_rtc", False)
        return Welcome(
            session_id=self.session.session_id,
            chunk_size=spec.chunk_size,
            n_action_steps=spec.n_action_steps,
            action_dim=spec.action_dim,
            fps_hint=self.fps,
            max_message_bytes=1 << 30,
            policy="lockstep",
            features=(RTC_FEATURE,) if rtc else (),
        )

    async def send(self, frame: bytes) -> None:
        """The client's `ws.send`: admit the observation, run its forward now, schedule the reply."""
        obs = parse(unpack(frame), CLIENT_TO_SERVER)
        self.sent.append(obs)
        reason = self.session.admit(obs, self.epsilon)
        if reason is not None:
            self._pending.append((self.tick + 1, Skipped(obs.obs_id, obs.episode, reason)))
            return
        self.session.mark_processed(obs)
        self.forwards.append(obs)
        images = {k: v[None] for k, v in obs.images.items()}
        kwargs = {} if obs.prefix is None else {"rtc": [(obs.prefix, obs.inference_delay)]}
        chunk = self.predictor.predict(images, obs.state[None], [obs.task], **kwargs)[0]
        due = max(self.tick, self._worker_free) + self.latency_ticks
        self._worker_free = due
        # Half a tick less than the whole ticks waited: the reply lands between two ticks.
        waited = max(0.0, due - self.tick - 0.5) / self.fps
        self._pending.append((due, Actions(obs.obs_id, obs.episode, obs.timestep, chunk, sent_at=waited)))

    def due(self) -> list[bytes]:
        """Frames of the replies due at the current tick. An `actions` reply's `sent_at` is set now to the
        client's clock less the virtual wait, so the round trip it measures is the virtual one."""
        now = time.monotonic()
        ready = [msg for at, msg in self._pending if at <= self.tick]
        self._pending = [(at, msg) for at, msg in self._pending if at > self.tick]
        ready = [replace(m, sent_at=now - m.sent_at) if isinstance(m, Actions) else m for m in ready]
        return [pack(msg.to_wire()) for msg in ready]

    def drain(self) -> None:
        """Between episodes (a reset period): the worker finishes, unanswered replies are dropped."""
        self._pending.clear()
        self._worker_free = self.tick


def connect_lockstep(client: RobotClient, server: LockstepServer) -> None:
    """Attach `client` to `server` as an established session."""
    client.attach(server, server.welcome())


async def run_lockstep_episode(
    client: RobotClient, server: LockstepServer, max_ticks: int, until: Callable[[], bool] | None = None
) -> EpisodeStats:
    """One episode of at most `max_ticks` ticks (ends early when `until()` is true); `duration_s` is the
    virtual time ticks / fps."""
    stats = client.start_episode()
    server.drain()
    for _ in range(max_ticks):
        for frame in server.due():
            client.receive(frame)
        if until is not None and until():
            stats.done = True
            break
        await client.step()
        server.tick += 1
    else:
        stats.done = until is not None and bool(until())
    stats.duration_s = stats.ticks / server.fps
    return stats
