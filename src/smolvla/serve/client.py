"""The robot client: executes one action per control tick while the next chunk is computed remotely.

Two asyncio tasks share one event loop (so no locks): the connection task (`smolvla.serve.connection`:
connect with backoff, handshake, receive frames, which this module merges into the queue) and the
control loop run by `run_episode` (pop the action for this tick or hold the last commanded position; send
an observation, `smolvla.serve.client_observe`, when the queue is low). Configuration, statistics and
refusals are in `smolvla.serve.client_types`. Robot-side code: numpy + websockets + msgpack, no torch.

Safety: a chunk holding NaN/inf, longer than the welcome's `chunk_size`, or stamped with a timestep the
client never sent is refused whole (counted in `EpisodeStats.errors`, logged); every action is checked
again just before `robot.send_action` and clamped into the robot's declared range (`action_low`,
`action_high`), so no non-finite or out-of-range action ever reaches the robot.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import websockets

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
from smolvla.serve.client_observe import read_observation, rtc_prefix
from smolvla.serve.client_types import STOP_CODES, ClientConfig, EpisodeStats, HandshakeRefused, ServerRefused
from smolvla.serve.codec import ProtocolError, pack, unpack
from smolvla.serve.connection import Connection
from smolvla.serve.protocol import SERVER_TO_CLIENT, Actions, Error, Hello, Observation, Skipped, Welcome, parse
from smolvla.serve.robot import Robot

__all__ = ["STOP_CODES", "ClientConfig", "EpisodeStats", "HandshakeRefused", "RobotClient", "ServerRefused"]

log = logging.getLogger(__name__)


class RobotClient:
    """Use as `async with RobotClient(robot, cfg) as client: stats = await client.run_episode(...)`."""

    def __init__(self, robot: Robot, config: ClientConfig) -> None:
        self.robot, self.config = robot, config
        self.aggregate = get_aggregator(config.aggregate)
        self.bounds = action_bounds(
            getattr(robot, "action_low", None), getattr(robot, "action_high", None), robot.action_dim
        )
        self.queue: list[TimedAction] = []
        self.next_timestep = 0
        self.last_action: np.ndarray | None = None
        self.episode = 0
        self._link = Connection(config, self._hello, self.receive, self._on_lost, self._count_error)
        self._stop: ServerRefused | None = None  # ends the current episode (see STOP_CODES)
        self._consecutive_errors = 0
        self._conn_task: asyncio.Task | None = None
        self._in_flight: tuple[int, float] | None = None  # (obs_id, sent_at)
        self._sent: dict[int, int] = {}  # obs_id -> timestep of observations not answered yet
        self._next_obs_id = 0
        self._round_trips: list[float] = []  # recent observation -> chunk times (s), across episodes
        self._stats = EpisodeStats()

    @property
    def welcome(self) -> Welcome | None:
        """The server's welcome of the current (or last) session."""
        return self._link.welcome

    @property
    def reconnects(self) -> int:
        """Successful handshakes after the first."""
        return self._link.reconnects

    # -- lifecycle -----------------------------------------------------------------------------------

    async def __aenter__(self) -> RobotClient:
        self._conn_task = asyncio.create_task(self._link.run(), name="smolvla-client-conn")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._link.close()
        if self._conn_task is not None:
            self._conn_task.cancel()
            await asyncio.gather(self._conn_task, return_exceptions=True)

    async def wait_connected(self, timeout: float) -> None:
        """Wait for a handshake; raises HandshakeRefused if the server refused it, TimeoutError after `timeout`."""
        self._raise_if_refused()
        await asyncio.wait_for(self._link.connected.wait(), timeout)
        self._raise_if_refused()

    def attach(self, transport, welcome: Welcome) -> None:
        """Use `transport` (anything with `async send(frame: bytes)`) as an established session that sent
        `welcome`, without a connection task: for `smolvla.serve.lockstep`, whose server answers through
        `receive`."""
        self._link.attach(transport, welcome)

    def _raise_if_refused(self) -> None:
        if self._link.refused is not None:
            raise self._link.refused
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

    def _on_lost(self) -> None:
        # The session is gone: what was in flight will never be answered.
        self._in_flight = None
        self._sent.clear()

    # -- receiving -----------------------------------------------------------------------------------

    def receive(self, frame: bytes) -> None:
        """Handle one frame from the server (the connection task calls this for every frame)."""
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

    def _on_actions(self, msg: Actions, sent_timestep: int | None) -> None:
        if msg.episode != self.episode:
            log.debug("dropping chunk for episode %d (now %d)", msg.episode, self.episode)
            return
        welcome = self.welcome
        limit = welcome.chunk_size if welcome is not None else 0
        problem = chunk_problem(msg.obs_id, msg.timestep, msg.actions, sent_timestep, limit, self.robot.action_dim)
        if problem is not None:
            log.error("refused a chunk from the server (holding instead): %s", problem[1])
            self._count_error(*problem)
            return
        self._consecutive_errors = 0
        actions = msg.actions
        if self.config.mode == "sync" and welcome is not None:
            # The synchronous baseline executes only the first n_action_steps of each chunk, then asks again.
            actions = actions[: welcome.n_action_steps]
        incoming = chunk_to_timed(actions, msg.timestep)
        self.queue = merge_chunk(self.queue, incoming, self.next_timestep, self.aggregate)
        self._stats.merged_at.append(self.next_timestep)
        latency = time.monotonic() - msg.sent_at
        self._stats.chunks += 1
        self._stats.latencies_s.append(latency)
        self._round_trips = [*self._round_trips[-19:], latency]
        if self.config.mode == "async" and welcome is not None:
            dt, chunk = 1.0 / self.config.fps, welcome.chunk_size
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

    def start_episode(self) -> EpisodeStats:
        """Begin an episode driven by `step` (what `run_episode` does first); returns its live stats."""
        self._raise_if_refused()
        self.new_episode()
        self._stats = EpisodeStats()
        return self._stats

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
        ws, welcome = self._link.ws, self.welcome
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
        obs = self._observe(sync or not self.queue, delay)
        try:
            await ws.send(pack(obs.to_wire()))
        except websockets.ConnectionClosed:
            return  # the connection task notices and reconnects
        self._in_flight = (obs.obs_id, obs.sent_at)
        self._sent[obs.obs_id] = obs.timestep
        self._stats.observations_sent += 1

    def _observe(self, must_go: bool, delay: int) -> Observation:
        """The robot's observation for timestep `next_timestep`; an "rtc" client adds its queue and delay."""
        welcome = self.welcome
        use_rtc = self.config.aggregate == "rtc" and welcome is not None
        prefix, delay = rtc_prefix(self.queue, welcome.chunk_size, delay) if use_rtc else (None, 0)
        obs = read_observation(
            self.robot,
            obs_id=self._next_obs_id + 1,
            episode=self.episode,
            timestep=self.next_timestep,
            must_go=must_go,
            default_task=self.config.task,
            prefix=prefix,
            inference_delay=delay,
        )
        self._next_obs_id = obs.obs_id  # only a valid observation takes an id
        return obs

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no observation is in flight (True) or `timeout` s pass (False).

        Call between episodes (a reset period): an observation sent near the end of an episode keeps the
        server's forward busy, and the next episode's first request would queue behind it."""
        deadline = time.monotonic() + timeout
        while self._in_flight is not None and self._link.ws is not None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True
