"""`smolvla serve` on a saved tiny checkpoint, driven by `smolvla client`, as real subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("server did not start listening")


@pytest.mark.slow  # two interpreters importing torch: ~15 s on the shared 2-core machine
def test_serve_and_client_commands(tmp_path) -> None:
    testing = pytest.importorskip("smolvla.policy.testing")
    ckpt = tmp_path / "ckpt"
    # The client's simulated robot: 4 joints -> state 8, action 4, camera "observation.images.front".
    testing.make_tiny_policy(camera_keys=("observation.images.front",), state_dim=8, action_dim=4).save_pretrained(ckpt)
    port = _free_port()
    env = {**os.environ, "SMOLVLA_TOKEN": "t0ken", "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "smolvla.cli.main"]
    server = subprocess.Popen(
        [*cli, "serve", "--checkpoint", str(ckpt), "--port", str(port), "--threads", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_port(port, server)
        args = ["client", "--uri", f"ws://127.0.0.1:{port}", "--n-joints", "4", "--image-size", "32"]
        result = subprocess.run(
            [*cli, *args, "--max-seconds", "1", "--episodes", "2", "--fps", "50"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [line["episode"] for line in lines] == [0, 1]
        assert all(line["chunks"] >= 1 and line["executed"] > 0 and line["errors"] == 0 for line in lines)
        # Without the token the handshake is refused and the client exits with the reason.
        refused = subprocess.run(
            [*cli, *args], env={**env, "SMOLVLA_TOKEN": "wrong"}, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode != 0 and "unauthorized: hello: missing or wrong token" in refused.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)
