"""Server and client over real sockets on 127.0.0.1: end to end, batching, errors, reconnection, auth, TLS."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import torch
import websockets
import websockets.asyncio.client
from serve_helpers import (
    CAM,
    ScriptedConfig,
    ScriptedPolicy,
    raw_session,
    recv_message,
    robot_hello,
    robot_observation,
    run,
)

from smolvla.serve.client import ClientConfig, HandshakeRefused, RobotClient
from smolvla.serve.codec import pack
from smolvla.serve.protocol import Actions, Error, Skipped, Welcome
from smolvla.serve.robot import ReachingRobot, reaching_expert_chunk
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import PolicyServer, ServerConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


async def _start(policy, **kw) -> PolicyServer:
    server = PolicyServer(PolicyRunner(policy), ServerConfig(port=kw.pop("port", 0), **kw))
    await server.start()
    return server


def _client(robot: ReachingRobot, port: int, **kw) -> RobotClient:
    base = dict(
        uri=f"ws://127.0.0.1:{port}", task="reach goal", fps=100.0, reconnect_initial_s=0.05, reconnect_max_s=0.2
    )
    return RobotClient(robot, ClientConfig(**{**base, **kw}))


def test_scripted_policy_reaches_the_goal_through_the_server() -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy())
        robot = ReachingRobot(seed=0)
        async with _client(robot, server.port) as client:
            await client.wait_connected(5)
            stats = await client.run_episode(max_ticks=400, until=lambda: robot.success)
        await server.stop()
        assert stats.done and robot.success
        assert stats.executed_timesteps == list(range(stats.executed))  # one action per timestep, none replayed
        assert stats.chunks >= 2  # 1 rad at 0.04 rad/tick needs >= 25 ticks, chunks hold 20
        assert all(lat < 1.0 for lat in stats.latencies_s)

    run(body())


def test_sync_mode_executes_n_action_steps_then_waits() -> None:
    async def body() -> None:
        policy = ScriptedPolicy(ScriptedConfig(chunk_size=20, n_action_steps=5), delay_s=0.05)
        server = await _start(policy)
        robot = ReachingRobot(seed=1)
        async with _client(robot, server.port, mode="sync") as client:
            await client.wait_connected(5)
            stats = await client.run_episode(max_ticks=60)
        await server.stop()
        # Every chunk contributes exactly 5 actions (the last possibly cut by max_ticks); the robot waits
        # (holds) for every inference, ~5 ticks of 10 ms per 50 ms forward.
        assert stats.executed_timesteps == list(range(stats.executed))
        assert 5 * (stats.chunks - 1) <= stats.executed <= 5 * stats.chunks
        assert stats.hold_ticks >= stats.chunks  # at least the tick that found the queue empty, per chunk
        assert stats.observations_sent == stats.chunks or stats.observations_sent == stats.chunks + 1

    run(body())


def test_loopback_with_the_real_tiny_policy_matches_a_direct_call() -> None:
    testing = pytest.importorskip("smolvla.policy.testing")
    torch.manual_seed(0)
    policy = testing.make_tiny_policy(camera_keys=(CAM,), state_dim=8, action_dim=4, seed=0)
    noise = torch.randn(1, policy.config.chunk_size, policy.config.model.max_action_dim)

    class FixedNoise:
        """The real policy with fixed flow-matching noise, so the served chunk can be compared exactly."""

        config = policy.config

        def predict_action_chunk(self, batch: dict) -> torch.Tensor:
            return policy.predict_action_chunk(batch, noise=noise.expand(len(batch["task"]), -1, -1))

    robot = ReachingRobot(seed=2)
    obs = robot_observation(robot)

    async def body() -> tuple[Actions, object]:
        server = await _start(FixedNoise())
        ws, welcome = await raw_session(server.port, robot_hello(robot))
        await ws.send(pack(obs.to_wire()))
        reply = await recv_message(ws)
        await ws.close()
        # ... and a full client episode on the same server.
        async with _client(robot, server.port) as client:
            await client.wait_connected(5)
            stats = await client.run_episode(max_ticks=3000, until=lambda: client._stats.executed >= 25)
        await server.stop()
        return reply, (welcome, stats)

    reply, (welcome, stats) = run(body(), timeout=30)
    assert isinstance(welcome, Welcome) and welcome.chunk_size == policy.config.chunk_size == 10
    assert isinstance(reply, Actions) and reply.actions.shape == (10, 4) and reply.timestep == 0
    batch = {
        CAM: torch.from_numpy(obs.images[CAM]).permute(2, 0, 1)[None].float() / 255.0,
        "observation.state": torch.from_numpy(obs.state)[None],
        "task": ["reach goal"],
    }
    with torch.inference_mode():
        direct = policy.predict_action_chunk(batch, noise=noise)[0].numpy()
    np.testing.assert_allclose(reply.actions, direct, rtol=1e-5, atol=1e-5)
    assert stats.done and stats.chunks >= 3  # chunks of 10: at least 3 were needed for 25 actions
    assert stats.executed_timesteps == list(range(stats.executed))


def test_two_clients_share_one_forward_pass() -> None:
    async def body() -> None:
        policy = ScriptedPolicy()
        server = await _start(policy, batch_window_s=0.3)
        robots = [ReachingRobot(seed=s) for s in (0, 1)]
        sessions = [await raw_session(server.port, robot_hello(r, client_name=f"c{i}")) for i, r in enumerate(robots)]
        for (ws, _), robot in zip(sessions, robots, strict=True):
            await ws.send(pack(robot_observation(robot).to_wire()))
        replies = [await recv_message(ws) for ws, _ in sessions]
        for ws, _ in sessions:
            await ws.close()
        await server.stop()
        assert policy.batch_sizes == [2] and server.forward_batch_sizes == [2]
        assert all(isinstance(r, Actions) and r.batch_size == 2 for r in replies)
        # Each client got the chunk planned from its own state.
        for reply, robot in zip(replies, robots, strict=True):
            expected = reaching_expert_chunk(robot.get_observation()["observation.state"], 20, 0.04)
            np.testing.assert_array_equal(reply.actions, expected)

    run(body())


def test_bad_frames_get_error_replies_and_the_server_keeps_serving() -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy(), max_message_bytes=4096)
        robot = ReachingRobot(seed=0)
        bad_ws, _ = await raw_session(server.port, robot_hello(robot))
        good_ws, _ = await raw_session(server.port, robot_hello(robot))
        await bad_ws.send(b"\xc1")
        err = await recv_message(bad_ws)
        assert isinstance(err, Error) and err.code == "bad_message" and not err.fatal
        await bad_ws.send("text frame")
        assert (await recv_message(bad_ws)).code == "bad_message"
        await bad_ws.send(b"\x00" * 5000)
        err = await recv_message(bad_ws)
        assert err.code == "too_large" and "exceeds the limit of 4096 bytes" in err.message
        wrong = robot_observation(robot, obs_id=7)
        wrong = type(wrong)(**{**wrong.__dict__, "state": np.zeros(3, np.float32)})
        await bad_ws.send(pack(wrong.to_wire()))
        err = await recv_message(bad_ws)
        assert (err.code, err.obs_id) == ("observation_mismatch", 7) and r"float32[8], got float32[3]" in err.message
        # The same connection still gets served after its errors, and so does the other one.
        await bad_ws.send(pack(robot_observation(robot, obs_id=8).to_wire()))
        assert isinstance(await recv_message(bad_ws), Actions)
        await good_ws.send(pack(robot_observation(robot, obs_id=1).to_wire()))
        assert isinstance(await recv_message(good_ws), Actions)
        # Beyond twice the limit the transport closes that connection (1009) ... and only that one.
        await bad_ws.send(b"\x00" * 9000)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_message(bad_ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await good_ws.send(pack(robot_observation(robot, obs_id=2, timestep=3).to_wire()))
        assert isinstance(await recv_message(good_ws), Actions)
        await good_ws.close()
        await server.stop()

    run(body())


def test_similar_observations_are_skipped_unless_must_go() -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy(), similarity_epsilon=0.05)
        robot = ReachingRobot(seed=0)
        ws, _ = await raw_session(server.port, robot_hello(robot))
        await ws.send(pack(robot_observation(robot, obs_id=1, timestep=0, must_go=False).to_wire()))
        assert isinstance(await recv_message(ws), Actions)
        await ws.send(pack(robot_observation(robot, obs_id=2, timestep=4, must_go=False).to_wire()))
        assert await recv_message(ws) == Skipped(2, 0, "similar_state")
        await ws.send(pack(robot_observation(robot, obs_id=3, timestep=4, must_go=True).to_wire()))
        assert isinstance(await recv_message(ws), Actions)
        await ws.close()
        await server.stop()

    run(body())


@pytest.mark.parametrize(
    ("hello_kw", "server_kw", "code", "match"),
    [
        (dict(state_dim=5), {}, "handshake_mismatch", "state_dim: policy expects 8, client sent 5"),
        (dict(protocol_version=99), {}, "version_mismatch", "server speaks 1, client sent 99"),
        (dict(token="wrong"), dict(token="right"), "unauthorized", "missing or wrong token"),
    ],
)
def test_refused_handshakes_close_the_connection(hello_kw: dict, server_kw: dict, code: str, match: str) -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy(), **server_kw)
        ws, reply = await raw_session(server.port, robot_hello(ReachingRobot(), **hello_kw))
        assert isinstance(reply, Error) and reply.fatal and reply.code == code and match in reply.message
        with pytest.raises(websockets.ConnectionClosed):
            await recv_message(ws)
        await server.stop()

    run(body())


def test_client_surfaces_a_refused_handshake_and_accepts_the_right_token() -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy(), token="s3cret")
        robot = ReachingRobot()
        async with _client(robot, server.port, token="nope") as client:
            with pytest.raises(HandshakeRefused, match="unauthorized: hello: missing or wrong token"):
                await client.wait_connected(5)
            await asyncio.sleep(0.05)
            with pytest.raises(HandshakeRefused, match="unauthorized"):  # later calls see it at once, no retry
                await client.wait_connected(0.01)
            with pytest.raises(HandshakeRefused, match="unauthorized"):
                await client.run_episode(max_ticks=5)
        async with _client(robot, server.port, token="s3cret") as client:
            await client.wait_connected(5)
            stats = await client.run_episode(max_ticks=20)
        await server.stop()
        assert stats.chunks >= 1

    run(body())


def test_reconnects_after_server_restart_holding_position_meanwhile() -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy(max_step=0.01), max_batch=1)
        port, robot, stop = server.port, ReachingRobot(max_step=0.01, seed=4), False
        async with _client(robot, port) as client:
            await client.wait_connected(5)
            episode = asyncio.create_task(client.run_episode(max_ticks=100_000, until=lambda: stop))
            await _until(lambda: client._stats.chunks >= 2)
            await server.stop()
            await _until(lambda: not client.queue and client._stats.hold_ticks >= 5)
            before = len(robot.sent_actions)
            held = client.last_action.copy()
            executed_at_cut = client._stats.executed
            await _until(lambda: client._stats.hold_ticks >= 20)
            during = robot.sent_actions[before:]
            assert client._stats.executed == executed_at_cut  # nothing executed while disconnected
            assert during and all(np.array_equal(a, held) for a in during)  # the last position is held
            server = await _start(ScriptedPolicy(max_step=0.01), port=port)
            await _until(lambda: client.reconnects == 1 and client._stats.executed >= executed_at_cut + 10)
            stop = True
            stats = await episode
        await server.stop()
        assert stats.executed_timesteps == list(range(stats.executed))  # resumed, never replayed a timestep

    run(body(), timeout=20)


async def _until(predicate, timeout: float = 8.0) -> None:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def test_tls_with_a_self_signed_certificate(tmp_path) -> None:
    pytest.importorskip("cryptography")
    cert, key = _self_signed(tmp_path)

    async def body() -> None:
        server = await _start(ScriptedPolicy(), tls_cert=str(cert), tls_key=str(key))
        robot = ReachingRobot()
        async with _client(robot, server.port, uri=f"wss://127.0.0.1:{server.port}", ca_file=str(cert)) as client:
            await client.wait_connected(5)
            stats = await client.run_episode(max_ticks=15)
        await server.stop()
        assert stats.chunks >= 1 and stats.executed > 0

    run(body())


def _self_signed(tmp_path):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_a_silent_client_is_dropped_after_the_hello_timeout() -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy(), hello_timeout_s=0.2)
        ws = await websockets.asyncio.client.connect(f"ws://127.0.0.1:{server.port}", proxy=None)
        err = await recv_message(ws)
        assert isinstance(err, Error) and err.fatal and err.message == "no hello within 0.2 s"
        with pytest.raises(websockets.ConnectionClosed):
            await recv_message(ws)
        await server.stop()

    run(body())


def test_a_failing_forward_is_reported_and_the_server_keeps_serving() -> None:
    class FlakyPolicy(ScriptedPolicy):
        def predict_action_chunk(self, batch: dict) -> torch.Tensor:
            if not self.batch_sizes:
                self.batch_sizes.append(0)
                raise RuntimeError("out of memory (simulated)")
            return super().predict_action_chunk(batch)

    async def body() -> None:
        server = await _start(FlakyPolicy())
        robot = ReachingRobot()
        ws, _ = await raw_session(server.port, robot_hello(robot))
        await ws.send(pack(robot_observation(robot, obs_id=1).to_wire()))
        err = await recv_message(ws)
        assert (err.code, err.obs_id, err.fatal) == ("internal", 1, False)
        assert err.message == "policy forward failed: out of memory (simulated)"
        await ws.send(pack(robot_observation(robot, obs_id=2).to_wire()))
        assert isinstance(await recv_message(ws), Actions)
        await ws.close()
        await server.stop()

    run(body())


def test_client_recovers_from_a_failed_forward_while_standing_still() -> None:
    # The failed observation was recorded as processed; the robot has not moved, so only a must-go
    # observation (queue empty) gets past the similarity filter. The client must keep sending them.
    class FailFirst(ScriptedPolicy):
        def predict_action_chunk(self, batch: dict) -> torch.Tensor:
            if not self.batch_sizes:
                self.batch_sizes.append(0)
                raise RuntimeError("transient failure")
            return super().predict_action_chunk(batch)

    async def body() -> None:
        server = await _start(FailFirst())
        robot = ReachingRobot()
        async with _client(robot, server.port) as client:
            await client.wait_connected(5)
            stats = await client.run_episode(max_ticks=500, until=lambda: client._stats.executed >= 5)
        await server.stop()
        assert stats.done and stats.errors == 1 and stats.chunks >= 1

    run(body())
