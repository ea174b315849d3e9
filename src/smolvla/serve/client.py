"""The robot client: executes one action per control tick while the next chunk is computed remotely.

Two asyncio tasks share one event loop (so no locks): the connection task (connect with backoff,
handshake, receive chunks, merge them into the queue) and the control loop run by `run_episode` (pop
the action for this tick or hold the last commanded position; send an observation when the queue is
low). Robot-side code: numpy + websockets + msgpack, no torch.

Safety: a chunk holding NaN/inf, longer than the welcome's `chunk_size`, or stamped with a timestep the
client never sent is refused whole (counted in `EpisodeStats.errors`, logged); every action is checked
again just before `robot.send_action` and clamped into the robot's declared range (`action_low`,
`action_high`), so no non-finite or out-of-range action ever reaches the robot.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import websockets
from websockets.asyncio.client import connect

from smolvla.serve.action_queue import (
    TimedAction,
    action_bounds,
    chunk_problem,
    chunk_to_timed,
    get_aggregator,
    inference_delay_ticks,
    latency_budget_s,
    merge_chunk,
    pop_next,
    safe_action,
    should_send_observation,
    within_latency_budget,
)
from smolvla.serve.codec import DEFAULT_MAX_MESSAGE_BYTES, ProtocolError, pack, unpack
from smolvla.serve.protocol import (
    MAX_TASK_BYTES,
    RTC_FEATURE,
    SERVER_TO_CLIENT,
    Actions,
    Error,
    Hello,
    Observation,
    Skipped,
    Welcome,
    parse,
)
from smolvla.serve.robot import Robot
from smolvla.types import OBS_STATE, TASK

log = logging.getLogger(__name__)


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


class RobotClient:
    """Use as `async with RobotClient(robot, cfg) as client: stats = await client.run_episode(...)`."""

    def __init__(self, robot: Robot, config: ClientConfig) -> None:
        self.robot, self.config = robot, config
        self.aggregate = get_aggregator(config.aggregate)
        self.bounds = action_bounds(
            getattr(robot, "action_low", None), getattr(robot, "action_high", None), robot.action_dim
        )
        self.welcome: Welcome | None = None
        self.reconnects = 0  # successful handshakes after the first
        self.queue: list[TimedAction] = []
        self.next_timestep = 0
        self.last_action: np.ndarray | None = None
        self.episode = 0
        self._ws = None
        self._connected = asyncio.Event()
        self._fatal: HandshakeRefused | None = None
        self._stop: ServerRefused | None = None  # ends the current episode (see STOP_CODES)
        self._consecutive_errors = 0
        self._closing = False
        self._conn_task: asyncio.Task | None = None
        self._in_flight: tuple[int, float] | None = None  # (obs_id, sent_at)
        self._sent: dict[int, int] = {}  # obs_id -> timestep of observations not answered yet
        self._next_obs_id = 0
        self._round_trips: list[float] = []  # recent observation -> chunk times (s), across episodes
        self._stats = EpisodeStats()

    # -- lifecycle -----------------------------------------------------------------------------------

    async def __aenter__(self) -> RobotClient:
        self._conn_task = asyncio.create_task(self._connection_loop(), name="smolvla-client-conn")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._conn_task is not None:
            self._conn_task.cancel()
            await asyncio.gather(self._conn_task, return_exceptions=True)

    async def wait_connected(self, timeout: float) -> None:
        """Wait for a handshake; raises HandshakeRefused if the server refused it, TimeoutError after `timeout`."""
        self._raise_if_refused()
        await asyncio.wait_for(self._connected.wait(), timeout)
        self._raise_if_refused()

    def _raise_if_refused(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._stop is not None:
            raise self._stop

    def _hello(self) -> Hello:
        robot = self.robot
        return Hello(
            camera_keys=tuple(robot.camera_shapes),
            image_shapes={k: tuple(v) for k, v in robot.camera_shapes.items()},
            state_dim=robot.state_dim,
            action_dim=robot.action_dim,
            task=self.config.task,
            token=self.config.token,
            client_name=self.config.client_name,
        )

    async def _connection_loop(self) -> None:
        cfg, delay, first = self.config, self.config.reconnect_initial_s, True
        context = ssl.create_default_context(cafile=cfg.ca_file) if cfg.uri.startswith("wss://") else None
        while not self._closing:
            try:
                # proxy=None: robot traffic goes straight to the server, never through an environment proxy.
                async with connect(
                    cfg.uri,
                    ssl=context,
                    proxy=None,
                    max_size=2 * cfg.max_message_bytes,
                    open_timeout=cfg.open_timeout_s,
                    compression=None,
                ) as ws:
                    await ws.send(pack(self._hello().to_wire()))
                    frame = await asyncio.wait_for(ws.recv(), cfg.open_timeout_s)
                    reply = parse(unpack(frame, max_bytes=cfg.max_message_bytes), {"welcome": Welcome, "error": Error})
                    if isinstance(reply, Error) and reply.code == "busy":
                        raise ConnectionRefusedError(f"server busy: {reply.message}")  # retried with backoff
                    if isinstance(reply, Error):
                        raise HandshakeRefused(reply.code, reply.message)
                    if cfg.aggregate == "rtc" and RTC_FEATURE not in reply.features:
                        raise HandshakeRefused(
                            "rtc_unsupported", f"aggregate 'rtc' needs real-time chunking, which {cfg.uri} lacks"
                        )
                    self.welcome, self._ws, delay = reply, ws, cfg.reconnect_initial_s
                    self.reconnects += 0 if first else 1
                    first = False
                    self._connected.set()
                    log.info("connected to %s (session %s, %s)", cfg.uri, reply.session_id, reply.policy)
                    async for frame in ws:
                        self.receive(frame)
            except HandshakeRefused as err:
                log.error("server refused the handshake: %s", err)
                self._fatal = err
                self._connected.set()  # wake waiters so they see the refusal
                return
            except (OSError, TimeoutError, websockets.ConnectionClosed, websockets.InvalidHandshake) as err:
                log.warning("connection to %s lost or refused (%s); retrying in %.2f s", cfg.uri, err, delay)
            except ProtocolError as err:
                log.warning("bad frame from server (%s); reconnecting in %.2f s", err, delay)
            except Exception as err:  # this task must never die silently: the robot would hold for ever
                log.exception("connection task error; reconnecting in %.2f s", delay)
                self._count_error("client_error", f"{type(err).__name__}: {err}")
            finally:
                self._ws, self._in_flight = None, None
                self._sent.clear()
                if self._fatal is None:  # a refusal keeps the event set so later waiters see it at once
                    self._connected.clear()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(2 * delay, cfg.reconnect_max_s)

    # -- receiving -----------------------------------------------------------------------------------

    def _count_error(self, code: str, message: str) -> None:
        stats = self._stats
        stats.errors += 1
        stats.error_codes[code] = stats.error_codes.get(code, 0) + 1
        stats.last_error = f"{code}: {message}"
        self._consecutive_errors += 1
        if self._consecutive_errors >= self.config.max_consecutive_errors and self._stop is None:
            self._stop = ServerRefused(
                "too_many_errors",
                f"{self._consecutive_errors} errors in a row without a usable chunk; last: {stats.last_error}",
            )

    def _on_frame(self, frame: bytes) -> None:
        try:
            msg = parse(unpack(frame, max_bytes=self.config.max_message_bytes), SERVER_TO_CLIENT)
        except ProtocolError as err:
            log.warning("ignoring bad frame from server: %s", err)
            self._count_error(err.code, str(err))
            return
        answered = getattr(msg, "obs_id", None)
        if self._in_flight is not None and (answered == self._in_flight[0] or answered is None):
            self._in_flight = None
        sent_timestep = self._sent.pop(answered, None) if answered is not None else None
        if isinstance(msg, Actions):
            self._on_actions(msg, sent_timestep)
        elif isinstance(msg, Skipped):
            self._stats.skipped += 1
        elif isinstance(msg, Error):
            log.warning("server error %s: %s", msg.code, msg.message)
            self._count_error(msg.code, msg.message)
            if msg.code in STOP_CODES and self._stop is None:
                self._stop = ServerRefused(msg.code, msg.message)

    def _on_actions(self, msg: Actions, sent_timestep: int | None) -> None:
        if msg.episode != self.episode:
            log.debug("dropping chunk for episode %d (now %d)", msg.episode, self.episode)
            return
        limit = self.welcome.chunk_size if self.welcome is not None else 0
        problem = chunk_problem(msg.obs_id, msg.timestep, msg.actions, sent_timestep, limit, self.robot.action_dim)
        if problem is not None:
            log.error("refused a chunk from the server (holding instead): %s", problem[1])
            self._count_error(*problem)
            return
        self._consecutive_errors = 0
        actions = msg.actions
        if self.config.mode == "sync" and self.welcome is not None:
            # The synchronous baseline executes only the first n_action_steps of each chunk, then asks again.
            actions = actions[: self.welcome.n_action_steps]
        incoming = chunk_to_timed(actions, msg.timestep)
        self.queue = merge_chunk(self.queue, incoming, self.next_timestep, self.aggregate)
        self._stats.merged_at.append(self.next_timestep)
        latency = time.monotonic() - msg.sent_at
        self._stats.chunks += 1
        self._stats.latencies_s.append(latency)
        self._round_trips = [*self._round_trips[-19:], latency]
        if self.config.mode == "async" and self.welcome is not None:
            dt, chunk = 1.0 / self.config.fps, self.welcome.chunk_size
            if not within_latency_budget(latency, chunk, dt, self.config.g):
                self._stats.over_budget += 1
                log.debug(
                    "chunk latency %.3f s over the budget %.3f s", latency, latency_budget_s(chunk, dt, self.config.g)
                )

    # -- control loop --------------------------------------------------------------------------------

    def new_episode(self) -> None:
        """Forget the queue and timestep clock; the server resets its session when it sees the new number."""
        self.episode += 1
        self.queue, self.next_timestep, self.last_action = [], 0, None
        self._in_flight, self._stop, self._consecutive_errors = None, None, 0
        self._sent.clear()

    async def run_episode(self, max_ticks: int, until=None) -> EpisodeStats:
        """Run control ticks at `fps` until `until()` is true or `max_ticks` ticks have passed.

        Starts a new episode (fresh queue and clock). Network loss never ends the episode: the robot
        holds its last commanded position until the client reconnects and a new chunk arrives. A server
        that cannot serve the episode does end it: ServerRefused (a task the policy cannot take, or
        `max_consecutive_errors` errors in a row), with the server's reason.
        """
        stats = self.start_episode()
        dt, start = 1.0 / self.config.fps, time.monotonic()
        deadline = start
        for _ in range(max_ticks):
            if until is not None and until():
                stats.done = True
                break
            await self.step()
            deadline += dt
            delay = deadline - time.monotonic()
            if delay < 0:  # behind schedule: do not burst to catch up, restart the schedule from now
                deadline, delay = time.monotonic(), 0.0
            await asyncio.sleep(delay)
        else:
            stats.done = until is not None and bool(until())
        stats.duration_s = time.monotonic() - start
        return stats

    async def step(self) -> None:
        """One control tick of the current episode: execute the next action (or hold), then send an
        observation if the queue is low. `run_episode` calls it at `fps`; `smolvla.serve.lockstep` on a
        virtual clock."""
        self._tick(self._stats)
        await self._maybe_send_observation()
        self._raise_if_refused()

    def start_episode(self) -> EpisodeStats:
        """Begin an episode driven by `step` (what `run_episode` does first); returns its live stats."""
        self._raise_if_refused()
        self.new_episode()
        self._stats = EpisodeStats()
        return self._stats

    def attach(self, transport, welcome: Welcome) -> None:
        """Use `transport` (anything with `async send(frame: bytes)`) as an established session that sent
        `welcome`, without a connection task: for `smolvla.serve.lockstep`, whose server answers through
        `receive`."""
        self._ws, self.welcome = transport, welcome
        self._connected.set()

    def receive(self, frame: bytes) -> None:
        """Handle one frame from the server (the connection task calls this for every frame)."""
        self._on_frame(frame)

    def _tick(self, stats: EpisodeStats) -> None:
        stats.ticks += 1
        item, self.queue = pop_next(self.queue, self.next_timestep)
        if item is not None:
            action, clipped = safe_action(item.action, self.bounds)
            if action is not None:
                self.robot.send_action(action)
                self.last_action, self.next_timestep = action, item.timestep + 1
                stats.executed += 1
                stats.clipped_actions += clipped
                stats.executed_timesteps.append(item.timestep)
                return
            # Only a custom aggregator can make a non-finite action from finite chunks; skip it and hold.
            self.next_timestep = item.timestep + 1
            self._count_error("non_finite_action", f"action for timestep {item.timestep} is not finite")
        # Hold: the robot keeps its last commanded position; the clock does not advance, so nothing is replayed.
        stats.hold_ticks += 1
        self.robot.hold()

    async def _maybe_send_observation(self) -> None:
        ws, welcome = self._ws, self.welcome
        if ws is None or welcome is None:
            return
        if self._in_flight is not None:
            waited = time.monotonic() - self._in_flight[1]
            if waited > self.config.reply_timeout_s:
                log.warning("observation %d unanswered for %.1f s; sending a new one", self._in_flight[0], waited)
                self._in_flight = None
        sync = self.config.mode == "sync"
        g = 0.0 if sync else self.config.g
        delay = inference_delay_ticks(self._round_trips, self.config.fps)
        lookahead = 0 if sync else delay
        if not should_send_observation(len(self.queue), welcome.chunk_size, g, self._in_flight is not None, lookahead):
            return
        # Must-go whenever the queue is empty: the server may not skip it. With at most one observation in
        # flight this sends one must-go per round trip, never one per tick.
        must_go = self.config.mode == "sync" or not self.queue
        obs = self._observe(must_go, delay)
        try:
            await ws.send(pack(obs.to_wire()))
        except websockets.ConnectionClosed:
            return  # the connection task notices and reconnects
        self._in_flight = (obs.obs_id, obs.sent_at)
        self._sent[obs.obs_id] = obs.timestep
        self._stats.observations_sent += 1

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no observation is in flight (True) or `timeout` s pass (False).

        Call between episodes (a reset period): an observation sent near the end of an episode keeps the
        server's forward busy, and the next episode's first request would queue behind it."""
        deadline = time.monotonic() + timeout
        while self._in_flight is not None and self._ws is not None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def _rtc_prefix(self, delay: int) -> tuple[np.ndarray | None, int]:
        """(queued actions float32[n, action_dim] from `next_timestep` on, delay) for an "rtc" client with
        a non-empty queue; (None, 0) otherwise. Capped at the chunk size the server accepts."""
        if self.config.aggregate != "rtc" or not self.queue or self.welcome is None:
            return None, 0
        # The queue is contiguous from next_timestep by construction (merge_chunk, pop_next).
        rows = [item.action for item in self.queue[: self.welcome.chunk_size]]
        return np.stack(rows).astype(np.float32), min(delay, self.welcome.chunk_size)

    def _observe(self, must_go: bool, delay: int = 0) -> Observation:
        raw = self.robot.get_observation()
        images = {}
        for key, shape in self.robot.camera_shapes.items():
            image = raw.get(key)
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != tuple(shape):
                got = f"{image.dtype}{list(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
                raise ValueError(f"robot observation {key!r}: expected uint8{list(shape)}, got {got}")
            images[key] = image
        state = np.asarray(raw[OBS_STATE], dtype=np.float32)
        if state.shape != (self.robot.state_dim,):
            raise ValueError(
                f"robot observation {OBS_STATE!r}: expected [{self.robot.state_dim}], got {list(state.shape)}"
            )
        self._next_obs_id += 1
        prefix, delay = self._rtc_prefix(delay)
        return Observation(
            obs_id=self._next_obs_id,
            episode=self.episode,
            timestep=self.next_timestep,
            must_go=must_go,
            images=images,
            state=state,
            task=str(raw.get(TASK, self.config.task)),
            sent_at=time.monotonic(),
            prefix=prefix,
            inference_delay=delay,
        )
