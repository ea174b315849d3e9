"""`smolvla deploy`: the simulated arm driven by a policy server through the torch-free robot client."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from fake_arm import FakeArm

from smolvla.robots.cameras_fake import FakeCamera
from smolvla.robots.deploy import SOArmRobot, tick_jitter
from smolvla.robots.sim_bus import SimBusServer
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import PolicyServer, ServerConfig
from smolvla.types import OBS_STATE

pytest.importorskip("serial")

CAMERA = "observation.images.top"
GOAL = np.array([2300, 1900, 2200, 2000, 2100, 2500], np.float32)  # raw ticks (the simulated arm is uncalibrated)
STEP = 15.0  # ticks per action
TORCH_BLOCKED_CLI = (
    "import sys\nsys.modules['torch'] = None\nfrom smolvla.cli.main import app\n"
    "sys.argv = ['smolvla'] + sys.argv[1:]\napp()\n"
)


@dataclass(frozen=True)
class _Config:
    camera_keys: tuple[str, ...] = (CAMERA,)
    state_dim: int = 6
    action_dim: int = 6
    chunk_size: int = 10
    n_action_steps: int = 5


class GoalPolicy:
    """A stub policy: each chunk walks the joints from the observed state toward GOAL, STEP ticks per action."""

    config = _Config()

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        state = batch[OBS_STATE].numpy()[:, None, :]
        steps = np.arange(1, self.config.chunk_size + 1, dtype=np.float32)[None, :, None] * STEP
        return torch.from_numpy((state + np.clip(GOAL - state, -steps, steps)).astype(np.float32))


class ServerThread:
    """A PolicyServer on a free port, on its own thread and event loop (the deploy subprocess connects to it)."""

    def __init__(self, policy) -> None:
        self.policy, self.port = policy, 0
        self._ready, self._loop, self._stop = threading.Event(), None, None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = PolicyServer(PolicyRunner(self.policy), ServerConfig(port=0, similarity_epsilon=0.0))
        self.port = await server.start()
        self._ready.set()
        await self._stop.wait()
        await server.stop()

    def __enter__(self) -> ServerThread:
        torch.set_num_threads(1)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _deploy_command(port: int, link, seconds: float) -> list[str]:
    args = ["deploy", "--uri", f"ws://127.0.0.1:{port}", "--task", "reach", "--robot-port", str(link),
            "--camera", "top=fake:32x24", "--fps", "30", "--max-seconds", str(seconds)]  # fmt: skip
    return [sys.executable, "-c", TORCH_BLOCKED_CLI, *args]


def test_deploy_moves_the_simulated_arm_to_the_policy_goal(tmp_path):
    # With the viz extra installed, the live view is recorded too (to a file: no viewer in a test).
    live = tmp_path / "live.rrd"
    viz = ["--viz-save", str(live)] if importlib.util.find_spec("rerun") else []
    with SimBusServer(tmp_path / "follower") as follower, ServerThread(GoalPolicy()) as server:
        result = subprocess.run(_deploy_command(server.port, follower.link_path, 2.0) + viz, capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        present = np.array([s.peek("Present_Position") for s in follower.arm.servos])
        torque = [s.torque_enabled for s in follower.arm.servos]
    # 2 s at 30 Hz, 15 ticks per action: 452 ticks of travel needs ~31 actions; the arm got there.
    np.testing.assert_allclose(present, GOAL, atol=10)
    assert summary["chunks"] >= 3 and summary["errors"] == 0 and summary["executed"] >= 31
    assert summary["tick"]["hz"] > 15 and summary["tick"]["ticks"] >= 55  # 30 Hz unless the machine is very busy
    assert not any(torque)  # released when deploy ended
    assert not viz or live.stat().st_size > 10_000  # cameras, joints, queue and latency were logged


def test_sigterm_releases_torque(tmp_path):
    with SimBusServer(tmp_path / "follower") as follower, ServerThread(GoalPolicy()) as server:
        proc = subprocess.Popen(_deploy_command(server.port, follower.link_path, 30.0), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            moving = lambda: follower.arm.servos[0].peek("Present_Position") > 2100
            while not moving() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert moving() and all(s.torque_enabled for s in follower.arm.servos)
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 128 + signal.SIGTERM, stderr
        assert "releasing torque" in stderr
        assert not any(s.torque_enabled for s in follower.arm.servos)


def test_arm_robot_declares_its_limits_and_reads_cameras():
    arm, cam = FakeArm(limit=90.0), FakeCamera("top", width=16, height=8, fps=100)
    arm.limits = lambda: {j: (-90.0, 90.0) for j in arm.joint_names}
    with cam:
        robot = SOArmRobot(arm, [cam], task="reach")
        assert robot.camera_shapes == {CAMERA: (8, 16, 3)} and robot.state_dim == robot.action_dim == 6
        np.testing.assert_array_equal(robot.action_low, np.full(6, -90.0, np.float32))
        obs = robot.get_observation()
        assert obs[CAMERA].shape == (8, 16, 3) and obs[OBS_STATE].dtype == np.float32 and obs["task"] == "reach"
        robot.send_action(np.arange(6, dtype=np.float32))
        robot.hold()
    assert arm.goals[-1]["gripper"] == 5.0 and len(arm.goals) == 1  # a hold writes nothing
    assert robot.holds == 1 and len(robot.tick_stamps) == 2


def test_tick_jitter():
    stamps = [0.0, 0.1, 0.2, 0.35, 0.45]
    summary = tick_jitter(stamps, fps=10)
    assert summary["ticks"] == 5 and summary["hz"] == pytest.approx(8.89, abs=0.01)
    assert summary["jitter_ms_max"] == pytest.approx(50.0) and summary["period_ms_p50"] == pytest.approx(100.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow  # record + a 2-step training + a server importing torch: ~1 min on the shared 2-core machine
def test_teleop_record_train_serve_deploy_on_the_simulated_bus(tmp_path):
    """The whole loop of docs/robots.md on simulated arms: record -> train -> serve -> deploy moves the arm."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "smolvla.cli.main"]
    root, run = tmp_path / "ds", tmp_path / "run"
    with SimBusServer(tmp_path / "follower") as follower, SimBusServer(tmp_path / "leader", leader=True) as leader:
        record = [*cli, "record", "--root", str(root), "--task", "follow the leader", "--robot-port",
                  str(follower.link_path), "--teleop-port", str(leader.link_path), "--camera", "top=fake:32x24",
                  "--episodes", "2", "--episode-time-s", "1", "--reset-time-s", "0.2",
                  "--video-codec", "h264"]  # fmt: skip
        done = subprocess.run(record, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        train = [*cli, "train", "--dataset", str(root), "--steps", "2", "--batch-size", "2", "--output-dir", str(run)]
        done = subprocess.run(train, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        checkpoint = run / "checkpoints" / "last" / "pretrained_model"
        port = _free_port()
        serve = [*cli, "serve", "--checkpoint", str(checkpoint), "--port", str(port), "--threads", "1"]
        server = subprocess.Popen(serve, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not _listening(port):
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
            before = [s.peek("Goal_Position") for s in follower.arm.servos]
            deploy = [*cli, "deploy", "--uri", f"ws://127.0.0.1:{port}", "--task", "follow the leader",
                      "--robot-port", str(follower.link_path), "--camera", "top=fake:32x24",
                      "--max-seconds", "3"]  # fmt: skip
            done = subprocess.run(deploy, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
        finally:
            server.terminate()
            server.wait(10)
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["chunks"] >= 1 and summary["executed"] > 0 and summary["errors"] == 0, summary
        assert [s.peek("Goal_Position") for s in follower.arm.servos] != before  # the policy moved the arm
        assert not any(s.torque_enabled for s in follower.arm.servos)
