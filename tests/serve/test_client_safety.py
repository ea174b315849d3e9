"""The robot client against a broken or hostile server: no non-finite, out-of-range or mistimed action reaches
the robot, a malformed frame never kills the connection task, and a server that cannot serve stops the episode."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
import websockets
from serve_helpers import CAM, ScriptedPolicy, run
from websockets.asyncio.server import serve

from smolvla.serve.action_queue import AGGREGATORS
from smolvla.serve.client import ClientConfig, RobotClient, ServerRefused
from smolvla.serve.codec import encode_array, pack, unpack
from smolvla.serve.protocol import Actions, Error, Welcome
from smolvla.serve.robot import ReachingRobot
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import PolicyServer, ServerConfig

CHUNK = 4


def _chunk(obs: dict, value: float, timestep: int | None = None) -> dict:
    """An `actions` reply to the observation map `obs`: every action `value`, stamped with its timestep."""
    start = obs["timestep"] if timestep is None else timestep
    actions = np.full((CHUNK, 4), value, np.float32)
    return Actions(obs["obs_id"], obs["episode"], start, actions, sent_at=obs["sent_at"]).to_wire()


async def _rogue_server(reply):
    """A server speaking the protocol but answering observation n (1-based) with `reply(obs, n)` maps."""

    async def handler(ws) -> None:
        unpack(await ws.recv())  # the hello, accepted as it is
        welcome = Welcome("rogue", CHUNK, CHUNK, 4, fps_hint=None, max_message_bytes=1 << 20, policy="rogue")
        await ws.send(pack(welcome.to_wire()))
        n = 0
        async for frame in ws:
            n += 1
            for message in reply(unpack(frame), n):
                await ws.send(pack(message))

    return await serve(handler, "127.0.0.1", 0, compression=None)


def _client(robot: ReachingRobot, port: int, **kw) -> RobotClient:
    base = dict(uri=f"ws://127.0.0.1:{port}", task="reach goal", fps=100.0, reconnect_initial_s=0.05)
    return RobotClient(robot, ClientConfig(**{**base, **kw}))


async def _episode(reply, ticks: int = 40, **kw):
    server = await _rogue_server(reply)
    robot = ReachingRobot(seed=0)
    async with _client(robot, server.sockets[0].getsockname()[1], **kw) as client:
        await client.wait_connected(5)
        stats = await client.run_episode(max_ticks=ticks)
        alive = not client._conn_task.done()
    server.close()
    await server.wait_closed()
    return robot, stats, alive


def _all_finite_and_in_range(robot: ReachingRobot) -> bool:
    sent = np.array(robot.sent_actions)
    return bool(np.isfinite(sent).all() and (np.abs(sent) <= 1.0).all())


def test_a_non_finite_chunk_is_refused_and_the_robot_holds() -> None:
    # The first two chunks hold NaN / inf: the robot must hold (never see them), the errors are counted.
    def reply(obs: dict, n: int) -> list[dict]:
        bad = {1: np.nan, 2: np.inf}
        return [_chunk(obs, bad.get(n, 0.5))]

    robot, stats, alive = run(_episode(reply))
    assert _all_finite_and_in_range(robot) and alive
    assert stats.error_codes == {"non_finite_action": 2} and stats.errors == 2
    assert stats.last_error == "non_finite_action: chunk for observation 2 holds NaN or inf"
    assert stats.hold_ticks >= 2 and stats.executed > 0 and stats.chunks >= 1


def test_actions_outside_the_robots_range_are_clamped_and_counted() -> None:
    robot, stats, _ = run(_episode(lambda obs, n: [_chunk(obs, 7.5 if n % 2 else -3e38)]))
    assert _all_finite_and_in_range(robot) and stats.executed > 0
    assert stats.clipped_actions == stats.executed  # every action was outside [-1, 1]
    assert {float(a[0]) for a in robot.sent_actions} <= {1.0, -1.0}


def test_a_chunk_stamped_with_a_timestep_the_client_never_sent_is_refused() -> None:
    def reply(obs: dict, n: int) -> list[dict]:
        return [_chunk(obs, 0.5, timestep=9_000_032 if n == 1 else None)]

    robot, stats, _ = run(_episode(reply))
    assert stats.error_codes == {"bad_timestep": 1}
    assert "chunk for observation 1 starts at timestep 9000032, but answers timestep 0" in stats.last_error
    assert stats.executed_timesteps == list(range(stats.executed)) and stats.executed > 0


def test_a_malformed_actions_frame_does_not_kill_the_connection_task() -> None:
    def reply(obs: dict, n: int) -> list[dict]:
        if n == 1:  # an unhashable dtype, then a shape whose size overflows int64, then a good chunk
            bad = _chunk(obs, 0.5)
            bad["actions"] = {"dtype": ["float32"], "shape": [4, 4], "data": b""}
            huge = _chunk(obs, 0.5)
            huge["actions"] = {"dtype": "float32", "shape": [2**62, 4], "data": b""}
            return [bad, huge, _chunk(obs, 0.5)]
        return [_chunk(obs, 0.5)]

    robot, stats, alive = run(_episode(reply))
    assert alive and stats.error_codes == {"bad_dtype": 1, "bad_message": 1}
    assert stats.executed > 0 and _all_finite_and_in_range(robot)


def test_a_chunk_longer_than_announced_is_refused() -> None:
    def reply(obs: dict, n: int) -> list[dict]:
        msg = _chunk(obs, 0.5)
        if n == 1:
            msg["actions"] = encode_array(np.full((CHUNK + 1, 4), 0.5, np.float32))
        return [msg]

    _, stats, _ = run(_episode(reply))
    assert (
        stats.error_codes == {"bad_chunk": 1} and "chunk of shape [5, 4]; expected at most [4, 4]" in stats.last_error
    )


def test_a_task_the_server_refuses_stops_the_episode_with_the_reason() -> None:
    def reply(obs: dict, n: int) -> list[dict]:
        text = f"observation {obs['obs_id']}: task refused: task 0 is 101 tokens, more than the budget of 48"
        return [Error("bad_task", text, obs_id=obs["obs_id"]).to_wire()]

    with pytest.raises(ServerRefused, match="bad_task: observation 1: task refused: task 0 is 101 tokens"):
        run(_episode(reply, ticks=500))


def test_a_server_answering_only_errors_stops_the_episode() -> None:
    class Broken(ScriptedPolicy):
        def predict_action_chunk(self, batch: dict) -> torch.Tensor:
            raise RuntimeError("weights on fire")

    async def body() -> None:
        server = PolicyServer(PolicyRunner(Broken()), ServerConfig(port=0))
        await server.start()
        robot = ReachingRobot()
        try:
            async with _client(robot, server.port, max_consecutive_errors=3) as client:
                await client.wait_connected(5)
                with pytest.raises(ServerRefused, match=r"too_many_errors: 3 errors in a row without a usable chunk"):
                    await client.run_episode(max_ticks=10_000)
                assert client._stats.last_error == "internal: policy forward failed: weights on fire"
                assert client._stats.errors == 3 and not robot.sent_actions
        finally:
            await server.stop()

    run(body())


def test_a_busy_server_is_retried_not_fatal() -> None:
    async def body() -> None:
        server = PolicyServer(PolicyRunner(ScriptedPolicy()), ServerConfig(port=0, max_pending_connections=1))
        await server.start()
        squatter = await websockets.asyncio.client.connect(f"ws://127.0.0.1:{server.port}", proxy=None)
        robot = ReachingRobot()
        async with _client(robot, server.port) as client:
            await asyncio.sleep(0.3)  # refused as busy, retrying with backoff
            assert client.welcome is None
            await squatter.close()
            await client.wait_connected(5)
            stats = await client.run_episode(max_ticks=10)
        await server.stop()
        assert stats.chunks >= 1 and robot.camera_shapes == {CAM: (32, 32, 3)}

    run(body())


def test_client_config_refuses_a_task_over_the_protocol_limit() -> None:
    with pytest.raises(ValueError, match=r"task is 2000 bytes \(UTF-8\), over the protocol's limit of 1024"):
        ClientConfig(uri="ws://127.0.0.1:1", task="x" * 2000)
    with pytest.raises(ValueError, match="max_consecutive_errors must be >= 1, got 0"):
        ClientConfig(uri="ws://127.0.0.1:1", task="t", max_consecutive_errors=0)


def test_a_non_finite_action_made_by_aggregation_is_skipped_at_the_last_gate(monkeypatch) -> None:
    # Chunks are finite, but a (custom) aggregator turns every overlapping action into NaN: the gate just
    # before send_action skips those timesteps and holds, so the robot still never sees a NaN.
    monkeypatch.setitem(AGGREGATORS, "broken", lambda old, new: old * np.nan)
    robot, stats, _ = run(_episode(lambda obs, n: [_chunk(obs, 0.5)], aggregate="broken", g=1.0))
    assert _all_finite_and_in_range(robot) and stats.executed > 0
    assert stats.error_codes.get("non_finite_action", 0) >= 1
    assert stats.executed_timesteps == sorted(set(stats.executed_timesteps))  # skipped, never replayed
