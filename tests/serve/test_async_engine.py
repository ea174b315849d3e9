"""The async engine tick by tick, without sockets: the real `RobotClient` decisions and the real server
`Session` filter on the virtual clock of `smolvla.serve.lockstep` (one forward at a time, answered a set
number of ticks later). Proves that g, the similarity filter and the timestep alignment act as
documented, and where latency stops being hidden."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from smolvla.serve.client import ClientConfig, EpisodeStats, RobotClient
from smolvla.serve.lockstep import LockstepServer, connect_lockstep, run_lockstep_episode
from smolvla.serve.protocol import Hello
from smolvla.serve.robot import ReachingRobot, reaching_expert_chunk
from smolvla.serve.spec import ServerSpec

FPS = 30.0


class _Planner:
    """A numpy predictor: the reaching planner's chunk for each state (RTC prefixes accepted, unused)."""

    supports_rtc = True

    def __init__(self, chunk: int, max_step: float) -> None:
        self.spec = ServerSpec((ReachingRobot.CAMERA,), 8, 4, chunk, chunk)
        self.max_step = max_step

    def predict(self, images, state, tasks, rtc=None) -> np.ndarray:
        return np.stack([reaching_expert_chunk(s, self.spec.chunk_size, self.max_step) for s in state])


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
) -> tuple[EpisodeStats, LockstepServer, ReachingRobot]:
    """Run `ticks` control ticks (or until the goal is reached) of one episode."""
    robot = ReachingRobot(max_step=max_step, seed=seed)
    client = RobotClient(robot, ClientConfig(uri="ws://lockstep", task="t", fps=FPS, g=g, aggregate=aggregate))
    hello = Hello((ReachingRobot.CAMERA,), dict(robot.camera_shapes), robot.state_dim, robot.action_dim, "t")
    server = LockstepServer(_Planner(chunk, max_step), hello, latency, FPS, epsilon)
    connect_lockstep(client, server)
    stats = asyncio.run(run_lockstep_episode(client, server, ticks, until=lambda: robot.success))
    return stats, server, robot


def test_a_larger_g_sends_more_requests() -> None:
    # epsilon 0: every request is a forward, so the count is g's doing alone.
    counts = [len(_drive(150, latency=3, g=g, max_step=0.005, epsilon=0.0)[1].forwards) for g in (0.2, 0.5, 0.9)]
    assert counts[0] < counts[1] < counts[2], counts
    # g = 0.2 asks with 4 of 20 actions left (every ~16 ticks), g = 0.9 with 18 left (every round trip).
    assert counts[2] >= 3 * counts[0], counts


def test_a_near_identical_observation_is_skipped_unless_the_queue_ran_dry() -> None:
    # A robot that barely moves: every state is within epsilon of the last processed one.
    stats, server, _ = _drive(120, latency=2, g=1.0, max_step=1e-6)
    assert stats.skipped > 10  # g = 1 asks at every tick; the server skips the near-identical states
    assert all(obs.must_go for obs in server.forwards)  # only must-go (empty queue) observations ran
    skipped = [obs for obs in server.sent if obs not in server.forwards]
    assert skipped and not any(obs.must_go for obs in skipped)
    # With epsilon 0 nothing is similar: the same robot gets a forward for most ticks' observations.
    _, open_server, _ = _drive(120, latency=2, g=1.0, max_step=1e-6, epsilon=0.0)
    assert len(open_server.forwards) > 3 * len(server.forwards)


def test_a_moving_robot_passes_the_filter_before_its_queue_runs_dry() -> None:
    stats, server, robot = _drive(400, latency=3, g=0.7)
    assert robot.success and stats.skipped == 0
    assert sum(not obs.must_go for obs in server.forwards) >= 2  # refills arrive while the queue still runs


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
    stats, server, robot = _drive(900, latency=30, g=0.7, max_step=0.01)
    assert robot.success
    assert all(obs.must_go for obs in server.sent[2:])  # every later request found the queue empty
    assert stats.executed / stats.ticks > 20 / 50 - 0.05


def test_an_rtc_client_sends_its_queue_and_its_measured_delay() -> None:
    stats, server, robot = _drive(400, latency=5, g=0.7, aggregate="rtc")
    assert robot.success and stats.chunks >= 3
    first, later = server.sent[0], server.sent[1:]
    assert first.prefix is None  # nothing queued yet
    for obs in later:
        assert obs.prefix is not None and obs.prefix.dtype == np.float32 and obs.prefix.shape[1] == 4
        assert 1 <= obs.prefix.shape[0] <= 14  # the queued actions at the send threshold
    # Measured round trips of 4.5 ticks: 5 queued actions run before a chunk is merged.
    assert {obs.inference_delay for obs in later} == {5}


def test_the_lockstep_clock_is_what_the_client_measures() -> None:
    stats, server, _ = _drive(200, latency=6, g=0.7, max_step=0.01)
    # Replies land half a tick before the tick that merges them: 5.5 ticks measured, wall time aside.
    assert all(abs(lat - 5.5 / FPS) < 0.05 for lat in stats.latencies_s)
    assert stats.duration_s == stats.ticks / FPS
    with pytest.raises(ValueError, match="need latency_ticks >= 0, fps > 0, epsilon >= 0; got -1, 30.0, 0.05"):
        LockstepServer(server.predictor, server.session.hello, -1, FPS)
