"""The robot side must run on a small computer without torch installed."""

from __future__ import annotations

import subprocess
import sys

ROBOT_SIDE = [
    "smolvla.serve",
    "smolvla.serve.codec",
    "smolvla.serve.protocol",
    "smolvla.serve.action_queue",
    "smolvla.serve.robot",
    "smolvla.serve.client",
    "smolvla.serve.client_types",
    "smolvla.serve.client_observe",
    "smolvla.serve.connection",
    "smolvla.serve.sim_robot",
    # The server shell is torch-free too; only smolvla.serve.runner touches torch.
    "smolvla.serve.spec",
    "smolvla.serve.session",
    "smolvla.serve.lockstep",
    "smolvla.serve.server",
    # The ONNX engine's runner and runtime (RTC included) serve without torch as well.
    "smolvla.serve.array_runner",
    "smolvla.deploy.rtc",
]


def test_client_modules_import_without_torch() -> None:
    # Every module of smolvla.robots (arms, servo bus, simulated bus, cameras) is robot-side too.
    code = (
        "import importlib, pkgutil, sys\n"
        "import smolvla.robots\n"
        "robots = [m.name for m in pkgutil.walk_packages(smolvla.robots.__path__, 'smolvla.robots.')]\n"
        "assert 'smolvla.robots.feetech.bus' in robots, robots\n"
        f"for name in {ROBOT_SIDE!r} + robots:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, f'torch pulled in: {bad[:5]}'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_check_would_catch_torch() -> None:
    # The runner does import torch: the same probe must see it, or the test above proves nothing.
    code = "import sys, smolvla.serve.runner; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
