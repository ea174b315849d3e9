"""`RobotClient.wait_idle`: between episodes, the observation still in flight is waited out, so the next
episode's first request does not queue behind a forward for the episode that ended (one forward worker)."""

from __future__ import annotations

import time

import pytest
from serve_helpers import ScriptedPolicy, run

from smolvla.serve.client import ClientConfig, RobotClient
from smolvla.serve.robot import ReachingRobot
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import PolicyServer, ServerConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_wait_idle_lets_the_next_episode_start_with_a_free_server() -> None:
    async def body():
        server = PolicyServer(PolicyRunner(ScriptedPolicy(delay_s=0.15)), ServerConfig(port=0, batch_window_s=0.0))
        await server.start()
        robot = ReachingRobot(seed=0)
        config = ClientConfig(uri=f"ws://127.0.0.1:{server.port}", task="reach goal", fps=50.0, g=1.0)
        async with RobotClient(robot, config) as client:
            await client.wait_connected(5)
            # The episode ends (as on reaching a goal) while an observation is in flight.
            busy = lambda: client._stats.chunks >= 2 and client._in_flight is not None
            first = await client.run_episode(max_ticks=200, until=busy)
            in_flight = client._in_flight is not None
            start = time.monotonic()
            idle = await client.wait_idle(timeout=5.0)
            waited = time.monotonic() - start
            after = client._in_flight is None
            second = await client.run_episode(max_ticks=30)
        await server.stop()
        return first, in_flight, idle, waited, after, second

    first, in_flight, idle, waited, after, second = run(body(), timeout=30)
    assert first.done
    assert in_flight and idle and after and 0.0 < waited < 1.0  # it waited for the reply, then returned
    # The next episode's first chunk comes after its own forward only (0.15 s), not a leftover one too.
    assert second.chunks >= 1 and second.latencies_s[0] < 0.28
