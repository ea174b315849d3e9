"""The async engine tick by tick, without sockets: the real `RobotClient` decisions and the real server
`Session` filter, joined by an in-memory link that answers each observation a set number of ticks later
(one forward at a time, as the server's single worker). Proves that g, the similarity filter and the
timestep alignment act as documented, and where latency stops being hidden."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from smolvla.serve.client import ClientConfig, EpisodeStats, RobotClient
from smolvla.serve.codec import pack, unpack
from smolvla.serve.protocol import CLIENT_TO_SERVER, RTC_FEATURE, Actions, Hello, Observation, Skipped, Welcome, parse
from smolvla.serve.robot import ReachingRobot, reaching_expert_chunk
from smolvla.serve.session import Session

FPS = 30.0


class _Link:
    """The client's socket and a scripted server: `send` queues the reply `latency` ticks after the worker
    is free (Skipped replies come on the next tick). Replies echo a `sent_at` moved back by the simulated
    latency (less half a tick: a reply lands between two ticks), so the client measures round trips in
    ticks as it would in wall time."""

    def __init__(self, robot: ReachingRobot, latency: int, chunk: int, epsilon: float, max_step: float) -> None:
        hello = Hello((ReachingRobot.CAMERA,), dict(robot.camera_shapes), robot.state_dim, robot.action_dim, "t")
        self.session = Session("s", hello)
        self.latency, self.chunk, self.epsilon, self.max_step = latency, chunk, epsilon, max_step
        self.tick, self.worker_free = 0, 0
        self.pending: list[tuple[int, object]] = []
        self.sent: list[Observation] = []
        self.processed: list[Observation] = []

    async def send(self, frame: bytes) -> None:
        obs = parse(unpack(frame), CLIENT_TO_SERVER)
        self.sent.append(obs)
        reason = self.session.admit(obs, self.epsilon)
        if reason is not None:
            self.pending.append((self.tick + 1, Skipped(obs.obs_id, obs.episode, reason)))
            return
        self.session.mark_processed(obs)
        self.processed.append(obs)
        due = max(self.tick, self.worker_free) + self.latency
        self.worker_free = due
        plan = reaching_expert_chunk(obs.state, self.chunk, self.max_step)
        reply = Actions(
            obs.obs_id, obs.episode, obs.timestep, plan, sent_at=obs.sent_at - (due - self.tick - 0.5) / FPS
        )
        self.pending.append((due, reply))

    def due(self) -> list[bytes]:
        ready = [msg for at, msg in self.pending if at <= self.tick]
        self.pending = [(at, msg) for at, msg in self.pending if at > self.tick]
        return [pack(msg.to_wire()) for msg in ready]


def _drive(
    ticks: int,
    *,
    latency: int,
    g: float,
    chunk: int = 20,
    epsilon: float = 0.05,
    max_step: float = 0.04,
    aggregate: str = "weighted",
    seed: int = 0,
) -> tuple[EpisodeStats, _Link, ReachingRobot]:
    """Run `ticks` control ticks (or until the goal is reached) of one episode."""
    robot = ReachingRobot(max_step=max_step, seed=seed)
    client = RobotClient(robot, ClientConfig(uri="ws://link", task="t", fps=FPS, g=g, aggregate=aggregate))
    link = _Link(robot, latency, chunk, epsilon, max_step)
    client.welcome = Welcome("s", chunk, chunk, robot.action_dim, None, 1 << 20, "scripted", features=(RTC_FEATURE,))
    client._ws = link
    client.new_episode()
    stats = client._stats = EpisodeStats()

    async def run() -> None:
        for link.tick in range(ticks):
            for frame in link.due():
                client._on_frame(frame)
            if robot.success:
                break
            client._tick(stats)
            await client._maybe_send_observation()

    asyncio.run(run())
    return stats, link, robot


def test_a_larger_g_sends_more_requests() -> None:
    # epsilon 0: every request is a forward, so the count is g's doing alone.
    counts = [len(_drive(150, latency=3, g=g, max_step=0.005, epsilon=0.0)[1].processed) for g in (0.2, 0.5, 0.9)]
    assert counts[0] < counts[1] < counts[2], counts
    # g = 0.2 asks with 4 of 20 actions left (every ~16 ticks), g = 0.9 with 18 left (every round trip).
    assert counts[2] >= 3 * counts[0], counts


def test_a_near_identical_observation_is_skipped_unless_the_queue_ran_dry() -> None:
    # A robot that barely moves: every state is within epsilon of the last processed one.
    stats, link, _ = _drive(120, latency=2, g=1.0, max_step=1e-6)
    assert stats.skipped > 10  # g = 1 asks at every tick; the server skips the near-identical states
    assert all(obs.must_go for obs in link.processed)  # only must-go (empty queue) observations ran
    skipped = [obs for obs in link.sent if obs not in link.processed]
    assert skipped and not any(obs.must_go for obs in skipped)
    # With epsilon 0 nothing is similar: the same robot gets a forward for most ticks' observations.
    _, open_link, _ = _drive(120, latency=2, g=1.0, max_step=1e-6, epsilon=0.0)
    assert len(open_link.processed) > 3 * len(link.processed)


def test_a_moving_robot_passes_the_filter_before_its_queue_runs_dry() -> None:
    stats, link, robot = _drive(400, latency=3, g=0.7)
    assert robot.success and stats.skipped == 0
    assert sum(not obs.must_go for obs in link.processed) >= 2  # refills arrive while the queue still runs


@pytest.mark.parametrize("latency", [4, 8])
def test_latency_within_half_a_chunk_is_hidden_after_the_first_chunk(latency: int) -> None:
    # chunk 20, g = 0.7: requests go out with 14 actions queued. Each chunk arrives `latency` ticks after
    # its observation, its head (timesteps already executed) is dropped and the rest aligned by timestep.
    stats, _, robot = _drive(400, latency=latency, g=0.7, max_step=0.01)
    base, _, _ = _drive(400, latency=0, g=0.7, max_step=0.01)
    assert robot.success and stats.executed > 5 * 20
    assert stats.executed_timesteps == list(range(stats.executed))
    assert stats.hold_ticks == latency  # only the wait for the very first chunk
    assert stats.executed == base.executed  # aligned plans: the same path as without latency
    # Chunk boundaries: the first at timestep 0, then one per refill, each while actions were still queued.
    assert stats.merged_at[0] == 0 and stats.merged_at == sorted(stats.merged_at)
    assert len(stats.merged_at) == stats.chunks


def test_latency_over_half_a_chunk_starves_the_queue_one_forward_at_a_time() -> None:
    # 14 ticks > 20 / 2: a chunk sent with q actions queued brings 20 - q new ones, and the next request
    # goes out at once with 20 - q queued, so a 14-tick forward yields 10 actions on average (chunk / 2):
    # the robot holds ~4 ticks in 14 whatever g is; only a longer chunk or a faster forward hides this.
    stats, _, robot = _drive(600, latency=14, g=0.7, max_step=0.01)
    assert robot.success
    # After the first chunk's wait and its 20 actions: ~0.4 holds per executed action.
    assert (stats.hold_ticks - 14) / (stats.executed - 20) == pytest.approx(0.4, abs=0.08)


def test_a_round_trip_longer_than_the_chunk_waits_for_the_empty_queue() -> None:
    # 30 ticks > chunk 20: a request sent with 14 queued would bring 6 new actions per 16-tick cycle;
    # sent at empty it brings 20 per 50 ticks. The client switches once it has measured a round trip.
    stats, link, robot = _drive(900, latency=30, g=0.7, max_step=0.01)
    assert robot.success
    assert all(obs.must_go for obs in link.sent[2:])  # every later request found the queue empty
    assert stats.executed / stats.ticks > 20 / 50 - 0.05


def test_an_rtc_client_sends_its_queue_and_its_measured_delay() -> None:
    stats, link, robot = _drive(400, latency=5, g=0.7, aggregate="rtc")
    assert robot.success and stats.chunks >= 3
    first, later = link.sent[0], link.sent[1:]
    assert first.prefix is None  # nothing queued yet
    for obs in later:
        assert obs.prefix is not None and obs.prefix.dtype == np.float32 and obs.prefix.shape[1] == 4
        assert 1 <= obs.prefix.shape[0] <= 14  # the queued actions at the send threshold
    # Measured round trips of 4.5 ticks: 5 queued actions run before a chunk is merged.
    assert {obs.inference_delay for obs in later} == {5}
