"""Evaluation through the async engine: in-process server, robot client driving a fake env, loopback."""

from __future__ import annotations

import logging
from dataclasses import replace

import av
import pytest
import torch
from eval_helpers import ConstantConfig, ConstantPolicy, CrispLineEnv, LineEnv

from smolvla.eval import runner
from smolvla.eval.remote import InProcessServer, RemoteDriver, latency_summary
from smolvla.eval.report import build_report
from smolvla.eval.runner import EvalConfig, evaluate
from smolvla.serve.client import HandshakeRefused


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_driver_plays_an_episode_through_the_server(tmp_path, mode):
    policy = ConstantPolicy(step=0.25)
    with InProcessServer(policy) as server:
        driver = RemoteDriver(server.uri, mode=mode, fps=200.0)
        try:
            video = tmp_path / "ep.mp4"
            r = driver.play(LineEnv(), seed=0, max_steps=None, video_path=video)
            r2 = driver.play(LineEnv(), seed=4, max_steps=2, video_path=None)
        finally:
            driver.close()
        forward = list(server.predictor.forward_s)
    # 0.25 per executed action reaches 1.0 after 4 env steps (no hold can happen before the first action).
    assert r.success and r.steps == 4 and r.env_name == "fake/line" and r.timing["chunks"] >= 1
    assert r.timing["executed_actions"] + r.timing["hold_steps"] == r.steps
    with av.open(r.video) as c:
        assert len(list(c.decode(video=0))) == 5  # reset frame + one per step
    assert not r2.success and r2.steps == 2 and r2.video is None
    assert len(forward) == policy.calls >= 2 and all(t >= 0 for t in forward)


def test_async_video_is_the_envs_crisp_rendering_not_the_policy_view(tmp_path):
    """An env with its own video rendering is recorded at that size, unscaled; the others upscale the view."""
    with InProcessServer(ConstantPolicy(step=0.5)) as server:
        driver = RemoteDriver(server.uri, fps=200.0, video_scale=4)
        try:
            crisp = driver.play(CrispLineEnv(image_size=8), seed=0, max_steps=None, video_path=tmp_path / "c.mp4")
            plain = driver.play(LineEnv(image_size=8), seed=0, max_steps=None, video_path=tmp_path / "p.mp4")
        finally:
            driver.close()
    for result, shape in ((crisp, (32, 64)), (plain, (32, 32))):  # 32x64 crisp frames; 8 px camera x 4
        with av.open(result.video) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(frames) == result.steps + 1 and frames[0].shape[:2] == shape


def test_runner_uses_the_driver(monkeypatch):
    monkeypatch.setattr(runner, "make_env", lambda name, image_size: LineEnv(name, image_size))
    with InProcessServer(ConstantPolicy(step=0.5)) as server:
        cfg = EvalConfig(envs=("fake/line",), episodes=2, seed=0, image_size=16, threads=1)
        results = evaluate(cfg, lambda: RemoteDriver(server.uri), progress=False)
    assert [(r.seed, r.success, r.steps) for r in results] == [(0, True, 2), (1, True, 2)]
    assert results[0].timing["fps"] == 10.0  # no fps given: the env's own rate (LineEnv.fps)


def test_mismatched_robot_is_refused():
    policy = ConstantPolicy(config=ConstantConfig(state_dim=3))
    with InProcessServer(policy) as server:
        driver = RemoteDriver(server.uri, connect_timeout_s=5.0)
        try:
            with pytest.raises(HandshakeRefused, match="state_dim: policy expects 3, client sent 2"):
                driver.play(LineEnv(), seed=0, max_steps=3, video_path=None)
        finally:
            driver.close()


def test_a_task_the_server_cannot_tokenise_stops_the_eval_with_the_reason(caplog):
    # It used to report 0% with "errors": 1791 while the server logged a traceback per observation.
    testing = pytest.importorskip("smolvla.policy.testing")
    policy = testing.make_tiny_policy(camera_keys=("observation.images.top",), state_dim=2, action_dim=1)
    env = LineEnv()
    env.task = "move the point to the right " * 2  # 56 bytes + "\n": 57 byte tokens, the budget is 48
    caplog.set_level(logging.INFO, logger="smolvla.serve")
    with InProcessServer(policy) as server:
        driver = RemoteDriver(server.uri, connect_timeout_s=5.0)
        try:
            with pytest.raises(
                HandshakeRefused, match="handshake_mismatch: .*task: task 0 is 57 tokens, more than the budget of 48"
            ):
                driver.play(env, seed=0, max_steps=3, video_path=None)
        finally:
            driver.close()
        assert server.predictor.forward_s == []
    refusals = [r for r in caplog.records if r.name == "smolvla.serve.server" and r.levelno >= logging.WARNING]
    assert len(refusals) == 1 and refusals[0].exc_info is None  # one line, no traceback


def test_the_report_shows_the_engines_errors(monkeypatch):
    class NanEveryOtherCall(ConstantPolicy):
        def predict_action_chunk(self, batch: dict) -> torch.Tensor:
            chunk = super().predict_action_chunk(batch)
            return chunk * float("nan") if self.calls % 2 else chunk

    monkeypatch.setattr(runner, "make_env", lambda name, image_size: LineEnv(name, image_size))
    with InProcessServer(NanEveryOtherCall(step=0.5)) as server:
        cfg = EvalConfig(envs=("fake/line",), episodes=2, seed=0, image_size=16, threads=1)
        results = evaluate(cfg, lambda: RemoteDriver(server.uri, fps=200.0), progress=False)
    errors = build_report(results)["engine_errors"]
    assert errors["total"] == sum(r.timing["errors"] for r in results) >= 1
    assert errors["by_code"] == {"non_finite_action": errors["total"]} and errors["episodes"] >= 1
    assert errors["last"].startswith("non_finite_action: observation ")
    assert "non-finite action chunk; not sent" in errors["last"]
    assert all(r.success for r in results)  # the refused chunks were never executed; the next ones were
    clean = [replace(r, timing={**r.timing, "errors": 0, "error_codes": {}}) for r in results]
    assert "engine_errors" not in build_report(clean)


def test_unreachable_server_is_a_clear_error():
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    driver = RemoteDriver(f"ws://127.0.0.1:{port}", connect_timeout_s=0.3)
    try:
        with pytest.raises(ConnectionError, match=f"no policy server answered at ws://127.0.0.1:{port} within 0.3 s"):
            driver.play(LineEnv(), seed=0, max_steps=3, video_path=None)
    finally:
        driver.close()


def test_driver_config_errors():
    with pytest.raises(ValueError, match="mode must be 'async' or 'sync', got 'fast'"):
        RemoteDriver("ws://127.0.0.1:1", mode="fast")
    with pytest.raises(ValueError, match="uri must start with ws:// or wss://"):
        RemoteDriver("127.0.0.1:1")


def test_latency_summary():
    assert latency_summary([]) == {"n": 0}
    s = latency_summary([0.3, 0.1, 0.2, 0.4])
    assert s["n"] == 4 and s["median_s"] == pytest.approx(0.25) and s["max_s"] == 0.4
    assert s["mean_s"] == pytest.approx(0.25) and s["p90_s"] == 0.4
