"""Real-time chunking through the protocol: the observation's prefix and inference delay on the wire, their
validation, the welcome's feature, and an "rtc" client end to end against the tiny policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from serve_helpers import CAM, ScriptedPolicy, raw_session, recv_message, robot_hello, robot_observation, run

from smolvla.serve.client import ClientConfig, HandshakeRefused, RobotClient
from smolvla.serve.codec import ProtocolError, encode_array, pack, unpack
from smolvla.serve.protocol import CLIENT_TO_SERVER, RTC_FEATURE, Error, Observation, Welcome, parse
from smolvla.serve.robot import ReachingRobot
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import PolicyServer, ServerConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _obs(prefix: np.ndarray | None, delay: int = 0) -> Observation:
    obs = robot_observation(ReachingRobot(seed=0), obs_id=4, timestep=9, must_go=False)
    return Observation(**{**obs.__dict__, "prefix": prefix, "inference_delay": delay})


def test_the_prefix_and_delay_round_trip_exactly() -> None:
    prefix = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    back = parse(unpack(pack(_obs(prefix, 2).to_wire())), CLIENT_TO_SERVER)
    np.testing.assert_array_equal(back.prefix, prefix)
    assert back.prefix.dtype == np.float32 and back.inference_delay == 2
    # Without a prefix neither field goes on the wire (what older servers expect) and both read back empty.
    wire = _obs(None).to_wire()
    assert "prefix" not in wire and "inference_delay" not in wire
    plain = parse(unpack(pack(wire)), CLIENT_TO_SERVER)
    assert plain.prefix is None and plain.inference_delay == 0


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: m.update(prefix=encode_array(np.array([[np.nan, 0, 0, 0]], np.float32))), "prefix holds NaN"),
        (lambda m: m.update(prefix=encode_array(np.array([[np.inf, 0, 0, 0]], np.float32))), "prefix holds NaN or inf"),
        (
            lambda m: m.update(prefix=encode_array(np.zeros(4, np.float32))),
            r"float32\[n, action_dim\], got float32\[4\]",
        ),
        (lambda m: m.update(prefix=encode_array(np.zeros((2, 4)))), r"float32\[n, action_dim\], got float64\[2, 4\]"),
        (lambda m: m.update(inference_delay=-1), "field 'inference_delay' must be >= 0, got -1"),
        (lambda m: m.update(inference_delay=1.5), "field 'inference_delay' must be int, got float"),
        (lambda m: m.pop("inference_delay"), "missing field 'inference_delay'"),
        (lambda m: m.pop("prefix"), "missing field 'prefix'"),
    ],
)
def test_invalid_rtc_fields_are_refused(mutate, match: str) -> None:
    wire = _obs(np.zeros((2, 4), np.float32), 1).to_wire()
    mutate(wire)
    with pytest.raises(ProtocolError, match=match) as err:
        parse(unpack(pack(wire)), CLIENT_TO_SERVER)
    assert err.value.code == "bad_message"


def test_the_welcome_carries_features_and_older_welcomes_have_none() -> None:
    welcome = Welcome("s", 10, 5, 4, None, 1024, "p", features=(RTC_FEATURE,))
    assert Welcome.from_wire(unpack(pack(welcome.to_wire()))).features == ("rtc",)
    old = welcome.to_wire()
    del old["features"]
    assert Welcome.from_wire(old).features == ()
    with pytest.raises(ProtocolError, match="field 'features' must be a list of str"):
        Welcome.from_wire({**old, "features": "rtc"})


async def _serve(policy) -> PolicyServer:
    server = PolicyServer(PolicyRunner(policy), ServerConfig(port=0, batch_window_s=0.0, similarity_epsilon=0.0))
    await server.start()
    return server


def test_a_server_refuses_prefixes_it_cannot_use_or_that_do_not_fit() -> None:
    testing = pytest.importorskip("smolvla.policy.testing")
    robot = ReachingRobot(seed=0)

    async def exchange(policy, obs: Observation):
        server = await _serve(policy)
        ws, welcome = await raw_session(server.port, robot_hello(robot))
        await ws.send(pack(obs.to_wire()))
        reply = await recv_message(ws)
        await ws.close()
        await server.stop()
        return welcome, reply

    welcome, reply = run(exchange(ScriptedPolicy(), _obs(np.zeros((2, 4), np.float32), 1)))
    assert welcome.features == ()  # the scripted policy cannot do RTC, and says so
    assert isinstance(reply, Error) and reply.code == "rtc_unsupported" and not reply.fatal
    tiny = testing.make_tiny_policy(camera_keys=(CAM,), state_dim=8, action_dim=4)
    for obs, match in [
        (_obs(np.zeros((2, 3), np.float32), 1), "prefix must be float32[n, 4], got [2, 3]"),
        (_obs(np.zeros((11, 4), np.float32), 1), "prefix of 11 actions and inference_delay 1 must both be <= the"),
        (_obs(np.zeros((2, 4), np.float32), 11), "prefix of 2 actions and inference_delay 11 must both be <="),
    ]:
        welcome, reply = run(exchange(tiny, obs), timeout=30)
        assert welcome.features == (RTC_FEATURE,)
        assert isinstance(reply, Error) and reply.code == "observation_mismatch" and match in reply.message


def test_an_rtc_client_runs_against_the_tiny_policy_and_refuses_a_server_without_rtc() -> None:
    testing = pytest.importorskip("smolvla.policy.testing")
    tiny = testing.make_tiny_policy(camera_keys=(CAM,), state_dim=8, action_dim=4)
    robot = ReachingRobot(seed=1)

    async def body():
        server = await _serve(tiny)
        config = ClientConfig(uri=f"ws://127.0.0.1:{server.port}", task="reach goal", fps=100.0, aggregate="rtc")
        async with RobotClient(robot, config) as client:
            await client.wait_connected(10)
            stats = await client.run_episode(max_ticks=3000, until=lambda: client._stats.executed >= 25)
        await server.stop()
        plain = await _serve(ScriptedPolicy())
        config = ClientConfig(uri=f"ws://127.0.0.1:{plain.port}", task="reach goal", aggregate="rtc")
        async with RobotClient(robot, config) as client:
            with pytest.raises(HandshakeRefused, match="rtc_unsupported: aggregate 'rtc' needs real-time chunking"):
                await client.wait_connected(5)
        await plain.stop()
        return stats

    stats = run(body(), timeout=60)
    assert stats.done and stats.errors == 0 and stats.chunks >= 3
    assert stats.executed_timesteps == list(range(stats.executed))


def test_the_runner_passes_prefixes_to_the_policy_in_raw_units() -> None:
    testing = pytest.importorskip("smolvla.policy.testing")
    tiny = testing.make_tiny_policy(camera_keys=(CAM,), state_dim=8, action_dim=4)
    runner = PolicyRunner(tiny)
    obs = robot_observation(ReachingRobot(seed=3))
    images, state = {CAM: obs.images[CAM][None].repeat(2, 0)}, np.stack([obs.state, obs.state])
    torch.manual_seed(0)
    plain = runner.predict(images, state, ["reach goal"] * 2)
    prefix = plain[0, :6] + 1.5  # far from the policy's own plan
    torch.manual_seed(0)
    guided = runner.predict(images, state, ["reach goal"] * 2, rtc=[(prefix, 3), None])
    assert np.abs(guided[0, :3] - prefix[:3]).max() < 0.2 < np.abs(plain[0, :3] - prefix[:3]).max()
    np.testing.assert_allclose(guided[1], plain[1], atol=1e-5)  # no prefix: the same sample as before
    with pytest.raises(ValueError, match="rtc has 1 entries for a batch of 2"):
        runner.predict(images, state, ["reach goal"] * 2, rtc=[(prefix, 3)])
    with pytest.raises(ValueError, match="ScriptedPolicy cannot do real-time chunking"):
        PolicyRunner(ScriptedPolicy()).predict(images, state, ["reach goal"] * 2, rtc=[(prefix, 3), None])


def test_the_eval_servers_timing_wrapper_passes_rtc_through() -> None:
    testing = pytest.importorskip("smolvla.policy.testing")
    from smolvla.eval.remote import TimedPredictor

    timed = TimedPredictor(PolicyRunner(testing.make_tiny_policy(camera_keys=(CAM,), state_dim=8, action_dim=4)))
    assert timed.supports_rtc and not TimedPredictor(PolicyRunner(ScriptedPolicy())).supports_rtc
    obs = robot_observation(ReachingRobot(seed=3))
    out = timed.predict({CAM: obs.images[CAM][None]}, obs.state[None], ["reach goal"], rtc=[(np.zeros((2, 4)), 1)])
    assert out.shape == (1, 10, 4) and len(timed.forward_s) == 1


def test_serve_takes_the_operators_rtc_settings(tmp_path) -> None:
    testing = pytest.importorskip("smolvla.policy.testing")
    from typer.testing import CliRunner

    from smolvla.cli.main import app
    from smolvla.cli.serve import torch_runner
    from smolvla.policy.rtc import RTCConfig

    testing.make_tiny_policy(camera_keys=(CAM,), state_dim=8, action_dim=4).save_pretrained(tmp_path / "p")
    rtc = RTCConfig(schedule="linear", max_guidance_weight=2.0)
    runner = torch_runner(tmp_path / "p", threads=None, device="cpu", precision="fp32", actions_per_chunk=None, rtc=rtc)
    assert runner.rtc == rtc and runner.supports_rtc
    cli = CliRunner()
    result = cli.invoke(app, ["serve", "--checkpoint", str(tmp_path / "p"), "--rtc-max-weight", "-1"])
    assert result.exit_code != 0 and "max_guidance_weight must be finite and >= 0, got -1.0" in result.output
    result = cli.invoke(app, ["serve", "--checkpoint", str(tmp_path / "p"), "--rtc-schedule", "expo"])
    assert result.exit_code != 0 and "did you mean 'exp'?" in result.output
