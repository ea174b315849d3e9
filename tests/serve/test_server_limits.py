"""The server against hostile or broken inputs: one client never hurts another, no non-finite chunk is sent,
frames and echoes are bounded before and after the handshake, a failing request logs one line."""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import pytest
import torch
import websockets
from serve_helpers import CAM, ScriptedPolicy, raw_session, recv_message, robot_hello, robot_observation, run

from smolvla.serve.codec import pack
from smolvla.serve.protocol import MAX_HELLO_BYTES, Actions, Error, Welcome
from smolvla.serve.robot import ReachingRobot
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import MAX_ERROR_CHARS, PolicyServer, ServerConfig
from smolvla.types import OBS_STATE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


async def _start(policy, **kw) -> PolicyServer:
    server = PolicyServer(PolicyRunner(policy), ServerConfig(port=0, **kw))
    await server.start()
    return server


def _tiny_policy():
    testing = pytest.importorskip("smolvla.policy.testing")
    # Byte tokenizer, 48-token budget; state std of dimension 2 is 0.66 (< 1), so 3e38 there overflows.
    return testing.make_tiny_policy(camera_keys=(CAM,), state_dim=8, action_dim=4, seed=0)


async def _until(predicate, timeout: float = 5.0) -> None:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


class NanForHugeStates(ScriptedPolicy):
    """The reaching planner, except that a state entry above 1e30 gives a NaN chunk (as NaN weights or a
    state far outside the normalisation stats do); the other rows of the batch stay finite."""

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        chunk = super().predict_action_chunk(batch)
        huge = (batch[OBS_STATE].abs() > 1e30).any(dim=1)
        chunk[huge] = float("nan")
        return chunk


class Float64Predictor:
    """A predictor returning float64 chunks, one of them finite in float64 but beyond float32's range."""

    def __init__(self, runner: PolicyRunner) -> None:
        self.runner, self.spec = runner, runner.spec

    def check_task(self, task: str) -> None:
        self.runner.check_task(task)

    def predict(self, images: dict, state: np.ndarray, tasks: list[str]) -> np.ndarray:
        chunk = self.runner.predict(images, state, tasks).astype(np.float64)
        chunk[0, 0, 0] = 1e300
        return chunk


def _with_state(obs, value: float, index: int = 0):
    state = obs.state.copy()
    state[index] = value
    return type(obs)(**{**obs.__dict__, "state": state})


def test_a_non_finite_chunk_goes_to_no_one_and_the_other_client_of_the_batch_is_served() -> None:
    async def body() -> None:
        server = await _start(NanForHugeStates(), batch_window_s=0.3)
        robot = ReachingRobot(seed=0)
        (bad, _), (good, _) = [await raw_session(server.port, robot_hello(robot)) for _ in range(2)]
        await bad.send(pack(_with_state(robot_observation(robot, obs_id=5), 3e38).to_wire()))
        await good.send(pack(robot_observation(robot, obs_id=6).to_wire()))
        err, ok = await recv_message(bad), await recv_message(good)
        assert server.forward_batch_sizes == [2]  # one forward pass for both
        assert isinstance(err, Error) and (err.code, err.obs_id, err.fatal) == ("non_finite_action", 5, False)
        assert "observation 5: the policy produced a non-finite action chunk; not sent" in err.message
        assert "largest |state| value: 3e+38" in err.message
        assert isinstance(ok, Actions) and np.isfinite(ok.actions).all()
        # The refused client is still served afterwards.
        await bad.send(pack(robot_observation(robot, obs_id=7, timestep=1).to_wire()))
        assert isinstance(await recv_message(bad), Actions)
        for ws in (bad, good):
            await ws.close()
        await server.stop()

    run(body())


def test_a_float64_chunk_that_overflows_float32_is_refused() -> None:
    async def body():
        server = PolicyServer(Float64Predictor(PolicyRunner(ScriptedPolicy())), ServerConfig(port=0))
        await server.start()
        robot = ReachingRobot()
        ws, _ = await raw_session(server.port, robot_hello(robot))
        await ws.send(pack(robot_observation(robot).to_wire()))
        reply = await recv_message(ws)
        await ws.close()
        await server.stop()
        return reply

    reply = run(body())
    assert isinstance(reply, Error) and reply.code == "non_finite_action"


@pytest.mark.parametrize("fault", ["state_3e38", "nan_weights"])
def test_the_real_policys_non_finite_chunks_are_refused_not_sent(fault: str) -> None:
    policy = _tiny_policy()
    obs = robot_observation(ReachingRobot(seed=0), obs_id=1)
    if fault == "state_3e38":
        obs = _with_state(obs, 3e38, index=2)  # finite, but (3e38 - mean) / 0.66 overflows float32
    else:
        with torch.no_grad():
            policy.model.action_out_proj.bias[0] = float("nan")

    async def body():
        server = await _start(policy)
        ws, _ = await raw_session(server.port, robot_hello(ReachingRobot()))
        await ws.send(pack(obs.to_wire()))
        reply = await recv_message(ws, timeout=10)
        await ws.close()
        await server.stop()
        return reply

    reply = run(body(), timeout=30)
    assert isinstance(reply, Error) and (reply.code, reply.obs_id) == ("non_finite_action", 1)


def test_one_clients_untokenisable_task_does_not_fail_the_batch() -> None:
    async def body() -> None:
        server = await _start(_tiny_policy(), batch_window_s=0.3)
        robot = ReachingRobot(seed=0)
        (bad, _), (good, _) = [await raw_session(server.port, robot_hello(robot)) for _ in range(2)]
        long_task = robot_observation(robot, obs_id=3)
        long_task = type(long_task)(**{**long_task.__dict__, "task": "x" * 100})  # 101 byte tokens > 48
        await bad.send(pack(long_task.to_wire()))
        await good.send(pack(robot_observation(robot, obs_id=4).to_wire()))
        err, ok = await recv_message(bad, timeout=10), await recv_message(good, timeout=10)
        for ws in (bad, good):
            await ws.close()
        await server.stop()
        assert isinstance(err, Error) and (err.code, err.obs_id, err.fatal) == ("bad_task", 3, False)
        assert "observation 3: task refused: task 0 is 101 tokens, more than the budget of 48" in err.message
        assert isinstance(ok, Actions) and ok.obs_id == 4 and server.forward_batch_sizes == [1]

    run(body(), timeout=30)


def test_a_hello_whose_task_the_policy_cannot_tokenise_is_refused() -> None:
    async def body() -> None:
        server = await _start(_tiny_policy())
        ws, reply = await raw_session(server.port, robot_hello(ReachingRobot(), task="y" * 60))
        await server.stop()
        assert isinstance(reply, Error) and reply.fatal and reply.code == "handshake_mismatch"
        assert "task: task 0 is 61 tokens, more than the budget of 48" in reply.message

    run(body(), timeout=30)


def test_frames_are_small_until_the_hello_is_accepted() -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy())  # 16 MiB frames once a session is open
        big = b"\x00" * (MAX_HELLO_BYTES + 1)
        stranger = await websockets.asyncio.client.connect(f"ws://127.0.0.1:{server.port}", proxy=None)
        await stranger.send(big)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_message(stranger)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # closed, never buffered
        # After the handshake the same frame is read and answered (it is not msgpack), the session goes on.
        robot = ReachingRobot()
        ws, welcome = await raw_session(server.port, robot_hello(robot))
        assert isinstance(welcome, Welcome)
        await ws.send(big)
        err = await recv_message(ws)
        assert err.code == "bad_message" and not err.fatal
        await ws.send(pack(robot_observation(robot).to_wire()))
        assert isinstance(await recv_message(ws), Actions)
        await ws.close()
        await server.stop()

    run(body())


def test_connections_owing_their_hello_are_limited() -> None:
    async def body() -> None:
        server = await _start(ScriptedPolicy(), max_pending_connections=2)
        uri = f"ws://127.0.0.1:{server.port}"
        silent = [await websockets.asyncio.client.connect(uri, proxy=None) for _ in range(2)]
        await _until(lambda: server._awaiting_hello == 2)
        third = await websockets.asyncio.client.connect(uri, proxy=None)
        err = await recv_message(third)
        assert isinstance(err, Error) and err.fatal and err.code == "busy"
        assert err.message == "server busy: 2 connections are already waiting to send their hello; retry later"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_message(third)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        # Once one of them says hello, a new connection is welcome again.
        robot = ReachingRobot()
        await silent[0].send(pack(robot_hello(robot).to_wire()))
        assert isinstance(await recv_message(silent[0]), Welcome)
        ws, welcome = await raw_session(server.port, robot_hello(robot))
        assert isinstance(welcome, Welcome)
        for conn in (*silent, ws):
            await conn.close()
        await server.stop()

    run(body())


def test_errors_do_not_echo_the_input_in_full(caplog) -> None:
    caplog.set_level(logging.INFO, logger="smolvla.serve.server")

    async def body() -> None:
        server = await _start(ScriptedPolicy())
        robot = ReachingRobot()
        ws, _ = await raw_session(server.port, robot_hello(robot))
        for huge in ({"type": "x" * 1_000_000}, {"type": "observation", "obs_id": 1, "images": {"k" * 500_000: 1}}):
            await ws.send(pack(huge))
            err = await recv_message(ws)
            assert err.code == "bad_message" and len(err.message) <= MAX_ERROR_CHARS
        await ws.close()
        await server.stop()

    run(body())
    assert caplog.records and all(len(r.getMessage()) < 2 * MAX_ERROR_CHARS for r in caplog.records)


def test_a_failing_forward_logs_one_line_without_a_traceback(caplog) -> None:
    class Broken(ScriptedPolicy):
        def predict_action_chunk(self, batch: dict) -> torch.Tensor:
            raise RuntimeError("weights on fire")

    caplog.set_level(logging.INFO, logger="smolvla.serve.server")

    async def body() -> None:
        server = await _start(Broken())
        robot = ReachingRobot()
        ws, _ = await raw_session(server.port, robot_hello(robot))
        for i in range(3):
            await ws.send(pack(robot_observation(robot, obs_id=i + 1, timestep=i).to_wire()))
            assert (await recv_message(ws)).message == "policy forward failed: weights on fire"
        await ws.close()
        await server.stop()

    run(body())
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in failures] == ["forward pass of batch 1 failed: weights on fire"] * 3
    assert all(r.exc_info is None for r in failures)
