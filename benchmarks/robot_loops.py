"""Control-loop rates on the simulated servo bus: teleop Hz, record fps held with two cameras, deploy tick jitter.

Each simulated arm (`python -m smolvla.robots.sim_bus`) runs in its own process (at nice -10 where
allowed), as real servos answer independently of the control loop; the loops themselves run as they do in the commands:

- teleop: `arm_io.teleoperate` (leader read -> follower goal) at 30 Hz, 60 Hz and as fast as the bus
  allows (fps 1000), `--seconds` each;
- record: `Recorder` for 2 episodes of `--seconds` at 30 fps with two synthetic cameras of `--camera`
  size (frames generated at 30 fps on their own threads), saved with the default AV1 encoder by the
  saver process while the next episode records;
- deploy: `smolvla deploy` (its own process, 30 Hz, one camera) driven by a stub policy server (a chunk of
  10 actions walking toward a goal) on this process; its JSON has the tick jitter.

    python benchmarks/robot_loops.py --seconds 10 --camera 640x480 > docs/measurements/robot_loops.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from smolvla.robots.arm_io import teleoperate
from smolvla.robots.cameras_fake import FakeCamera
from smolvla.robots.record import RecordConfig, Recorder
from smolvla.robots.so_arm import SOFollower, SOLeader
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import PolicyServer, ServerConfig
from smolvla.types import OBS_STATE

# The simulated servos are processes on a shared CPU (a real servo answers in ~0.5 ms from its own chip): a busy
# encoder can delay an answer past the default 50 ms, so the benchmark waits longer before a retry.
BUS = {"timeout_s": 0.25}


# The simulated servos stand in for hardware that answers on its own chip: where allowed (root), their processes
# run at a higher priority than the control loop, so other load on the machine delays the loop, not the servos.
SERVO_NICE = -10


def _servo_priority() -> None:
    try:
        os.nice(SERVO_NICE)
    except PermissionError:
        pass


@contextmanager
def sim_bus(link: Path, leader: bool = False):
    """A simulated arm in a child process; yields once it printed its link (ready)."""
    command = [sys.executable, "-m", "smolvla.robots.sim_bus", "--link", str(link)] + (["--leader"] if leader else [])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, preexec_fn=_servo_priority)
    try:
        assert proc.stdout.readline().strip() == str(link), "sim bus did not start"
        yield str(link)
    finally:
        proc.terminate()
        proc.wait(10)


def bench_teleop(tmp: Path, seconds: float) -> dict:
    out = {}
    with sim_bus(tmp / "leader", leader=True) as lp, sim_bus(tmp / "follower") as fp:
        with SOLeader(lp, "bench", tmp, **BUS) as leader, SOFollower(fp, "bench", tmp, **BUS) as follower:
            for fps in (30, 60, 1000):
                out[f"target_{fps}"] = teleoperate(leader, follower, fps, seconds)
    return out


def bench_record(tmp: Path, seconds: float, width: int, height: int) -> dict:
    cams = [FakeCamera(n, width=width, height=height, fps=30) for n in ("top", "wrist")]
    with sim_bus(tmp / "rleader", leader=True) as lp, sim_bus(tmp / "rfollower") as fp, ExitStack() as stack:
        leader = stack.enter_context(SOLeader(lp, "bench", tmp, **BUS))
        follower = stack.enter_context(SOFollower(fp, "bench", tmp, **BUS))
        for cam in cams:
            stack.enter_context(cam)
        cfg = RecordConfig(tmp / "dataset", "bench", fps=30, episodes=2, episode_time_s=seconds, reset_time_s=1.0)
        started = time.monotonic()
        report = Recorder(cfg, follower, leader, cams, on_event=lambda text: None).run()
        total = time.monotonic() - started
    return {"cameras": f"2 x {width}x{height} @ 30 fps", "codec": "libsvtav1 (default)", "episodes": report.episodes,
            "saved": report.saved, "session_s": round(total, 2),
            "session_s_without_saving": round(2 * seconds + 1.0, 2)}  # fmt: skip


@dataclass(frozen=True)
class _Config:
    camera_keys: tuple[str, ...] = ("observation.images.top",)
    state_dim: int = 6
    action_dim: int = 6
    chunk_size: int = 10
    n_action_steps: int = 5


class _GoalPolicy:
    config = _Config()
    goal = np.array([2600, 1500, 2600, 1500, 2600, 2600], np.float32)

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        state = batch[OBS_STATE].numpy()[:, None, :]
        steps = np.arange(1, 11, dtype=np.float32)[None, :, None] * 5.0
        return torch.from_numpy((state + np.clip(self.goal - state, -steps, steps)).astype(np.float32))


def bench_deploy(tmp: Path, seconds: float) -> dict:
    ready, port = threading.Event(), []

    async def serve(stop: asyncio.Event) -> None:
        server = PolicyServer(PolicyRunner(_GoalPolicy()), ServerConfig(port=0, similarity_epsilon=0.0))
        port.append(await server.start())
        ready.set()
        await stop.wait()
        await server.stop()

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(serve(stop)), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        with sim_bus(tmp / "dfollower") as fp:
            command = ["smolvla", "deploy", "--uri", f"ws://127.0.0.1:{port[0]}", "--task", "bench",
                       "--robot-port", fp, "--camera", "top=fake:640x480@30", "--fps", "30",
                       "--max-seconds", str(seconds)]  # fmt: skip
            command[0] = str(Path(sys.executable).with_name("smolvla"))
            result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
            if result.returncode != 0:
                raise RuntimeError(result.stderr)
            return json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    parser.add_argument("--camera", default="640x480", help="record cameras' WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.camera.split("x"))
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result = {
            "command": " ".join(["python", *sys.argv]),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
            # Other processes' load skews every rate here: the 1-minute load average before and after.
            "load_average_before": round(os.getloadavg()[0], 2),
            "servo_processes_nice": SERVO_NICE if os.geteuid() == 0 else 0,
            "teleop": bench_teleop(tmp, args.seconds),
            "record": bench_record(tmp, args.seconds, width, height),
            "deploy": bench_deploy(tmp, args.seconds),
        }
        result["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
