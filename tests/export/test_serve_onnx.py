"""`smolvla serve --engine onnx` serves an export with torch blocked from importing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from smolvla.cli.main import app
from smolvla.deploy.onnx_policy import OnnxPolicy
from smolvla.serve.array_runner import ArrayRunner

# Runs in a fresh interpreter where `import torch` fails: the server's whole import and run path.
SERVE_WITHOUT_TORCH = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    import asyncio, time
    from pathlib import Path
    import numpy as np
    from websockets.asyncio.client import connect
    from smolvla.cli.serve import onnx_runner
    from smolvla.serve.codec import pack, unpack
    from smolvla.serve.protocol import SERVER_TO_CLIENT, Actions, Hello, Observation, Welcome, parse
    from smolvla.serve.server import PolicyServer, ServerConfig

    CAM = "observation.images.front"

    async def main():
        runner = onnx_runner(Path(sys.argv[1]), threads=1, device="cpu", actions_per_chunk=None)
        server = PolicyServer(runner, ServerConfig(port=0))
        await server.start()
        ws = await connect(f"ws://127.0.0.1:{server.port}", proxy=None, open_timeout=5)
        hello = Hello(camera_keys=(CAM,), image_shapes={CAM: (32, 40, 3)}, state_dim=4, action_dim=3, task="reach")
        await ws.send(pack(hello.to_wire()))
        welcome = parse(unpack(await ws.recv()), SERVER_TO_CLIENT)
        assert isinstance(welcome, Welcome) and welcome.features == ("rtc",), welcome
        obs = Observation(obs_id=1, episode=0, timestep=0, must_go=True, task="reach", sent_at=time.monotonic(),
                          images={CAM: np.zeros((32, 40, 3), np.uint8)}, state=np.zeros(4, np.float32))
        await ws.send(pack(obs.to_wire()))
        reply = parse(unpack(await asyncio.wait_for(ws.recv(), 30)), SERVER_TO_CLIENT)
        assert isinstance(reply, Actions), reply
        # Real-time chunking through guide.onnx, still without torch.
        rtc = Observation(obs_id=2, episode=0, timestep=5, must_go=True, task="reach", sent_at=time.monotonic(),
                          images={CAM: np.zeros((32, 40, 3), np.uint8)}, state=np.ones(4, np.float32),
                          prefix=reply.actions[5:], inference_delay=2)
        await ws.send(pack(rtc.to_wire()))
        guided = parse(unpack(await asyncio.wait_for(ws.recv(), 30)), SERVER_TO_CLIENT)
        await ws.close()
        await server.stop()
        assert isinstance(guided, Actions), guided
        assert reply.actions.shape == guided.actions.shape == (10, 3) and np.isfinite(guided.actions).all()
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
        print("served", reply.actions.shape)

    asyncio.run(main())
    """
)


@pytest.fixture(scope="module")
def reach_export(tmp_path_factory) -> Path:
    from smolvla.export.exporter import export_policy
    from smolvla.policy.testing import make_tiny_policy

    policy = make_tiny_policy(camera_keys=("observation.images.front",), state_dim=4, action_dim=3, seed=1)
    return export_policy(policy, tmp_path_factory.mktemp("reach") / "onnx")


def test_onnx_engine_serves_with_torch_blocked(reach_export: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_TORCH, str(reach_export)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "served (10, 3)"


def test_the_torch_block_would_catch_torch() -> None:
    # The same block makes the torch engine fail: the probe above really runs without torch.
    code = 'import sys; sys.modules["torch"] = None\nfrom smolvla.serve.runner import PolicyRunner'
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "import of torch halted" in result.stderr


def test_array_runner_cuts_the_chunk_and_checks_its_shape(reach_export: Path) -> None:
    policy = OnnxPolicy(reach_export, threads=1)
    runner = ArrayRunner(policy, actions_per_chunk=4)
    images = {"observation.images.front": np.zeros((2, 32, 40, 3), np.uint8)}
    out = runner.predict(images, np.zeros((2, 4), np.float32), ["a", "b"])
    assert out.shape == (2, 4, 3) and runner.spec.chunk_size == 4 and runner.spec.n_action_steps == 4
    with pytest.raises(ValueError, match="task 0 is .* tokens, more than the budget of 48"):
        runner.check_task("x" * 60)

    class Wrong:
        config = policy.config

        def predict(self, images, state, tasks):
            return np.zeros((2, 10, 5), np.float32)

    with pytest.raises(ValueError, match=r"policy returned shape \[2, 10, 5\], expected \[2, >=10, 3\]"):
        ArrayRunner(Wrong()).predict(images, np.zeros((2, 4), np.float32), ["a", "b"])


def test_serve_cli_onnx_engine_refuses_a_gpu_device(reach_export: Path) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--checkpoint", str(reach_export), "--engine", "onnx", "--device", "cuda"]
    )
    assert result.exit_code != 0
    assert "the onnx engine runs on the CPU, got --device cuda" in result.output


def test_serve_cli_onnx_engine_names_a_dir_that_is_no_export(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--checkpoint", str(tmp_path), "--engine", "onnx"])
    assert result.exit_code != 0
    assert "is not an exported policy: no export.json (run `smolvla export`)" in result.output
