"""`smolvla eval`: argument errors without a simulator; one short real Meta-World episode when available."""

from __future__ import annotations

import json
import re

import pytest
import typer
from eval_helpers import require_metaworld, save_tiny_metaworld_policy
from typer.testing import CliRunner

import smolvla.envs  # noqa: F401  (selects the headless GL backend before any simulator import)
from smolvla.cli.evaluate import parse_host_port
from smolvla.cli.main import app

runner = CliRunner()


def _eval(*args: str):
    return runner.invoke(app, ["eval", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --checkpoint"),
        (["--remote", "127.0.0.1:9", "--async"], "--remote and --async are alternatives"),
        (["--remote", "localhost"], "expected HOST:PORT"),
        (["--checkpoint", ".", "--remote", "127.0.0.1:9"], "drop --checkpoint"),
        (["--checkpoint", ".", "--tasks", "drawer-clos-v3"], "did you mean 'drawer-close-v3'"),
    ],
)
def test_argument_errors(args, message):
    result = _eval(*args)
    assert result.exit_code == 2
    # typer draws the message in a box that wraps lines: compare with the box and line breaks removed.
    assert message in re.sub(r"[\s│]+", " ", result.output)


def test_n_action_steps_is_checked_against_the_checkpoint(tmp_path):
    from smolvla.policy.checkpoint import save_policy
    from smolvla.policy.testing import make_tiny_policy

    ckpt = save_policy(make_tiny_policy(), tmp_path / "policy")  # chunk of 10
    result = _eval("--checkpoint", str(ckpt), "--tasks", "drawer-close-v3", "--n-action-steps", "11")
    assert result.exit_code == 2
    assert "n_action_steps must be in [1, chunk_size=10], got 11" in re.sub(r"[\s│]+", " ", result.output)
    result = _eval("--remote", "127.0.0.1:9", "--n-action-steps", "5")
    assert result.exit_code == 2 and "server's setting" in re.sub(r"[\s│]+", " ", result.output)


def test_parse_host_port():
    assert parse_host_port("10.0.0.2:8765") == "ws://10.0.0.2:8765"
    assert parse_host_port("wss://robot.lan:443") == "wss://robot.lan:443"
    with pytest.raises(typer.BadParameter, match="expected HOST:PORT .* got '10.0.0.2:99999'"):
        parse_host_port("10.0.0.2:99999")


@pytest.mark.sim
@pytest.mark.parametrize("path", ["in_process", "async_engine", "remote"])
def test_eval_one_short_metaworld_episode(tmp_path, path):
    require_metaworld()
    ckpt = save_tiny_metaworld_policy(tmp_path / "policy")
    out = tmp_path / "out"
    args = ["--tasks", "drawer-close-v3", "--episodes", "1", "--max-steps", "5", "--out", str(out), "--threads", "1"]
    if path == "remote":
        from smolvla.eval.remote import InProcessServer
        from smolvla.policy.checkpoint import load_policy

        with InProcessServer(load_policy(ckpt)) as server:
            result = _eval(*args, "--remote", f"127.0.0.1:{server.port}", "--fps", "100")
    else:
        args += ["--checkpoint", str(ckpt), "--n-action-steps", "2"]
        args += ["--async", "--fps", "100"] if path == "async_engine" else []
        result = _eval(*args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["path"] == path
    assert report["meta"]["n_action_steps"] == (None if path == "remote" else 2)
    assert list(report["per_task"]) == ["metaworld/drawer-close-v3"]
    assert report["per_group_success_rate"] == {"easy": report["per_task"]["metaworld/drawer-close-v3"]["success_rate"]}
    (episode,) = report["episodes"]
    assert episode["seed"] == 0 and episode["steps"] <= 5
    assert (out / "success.png").is_file() and (out / "videos" / "metaworld__drawer-close-v3__ep000.mp4").is_file()
    assert "│ drawer-close-v3" in result.output and "group: easy" in result.output
    if path != "in_process":
        assert episode["timing"]["chunks"] >= 1 and report["meta"]["client_mode"] == "async"
    if path == "async_engine":
        assert report["meta"]["server_forward"]["n"] >= 1
