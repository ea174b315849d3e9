"""`smolvla eval`: argument errors without a simulator; one short real Meta-World episode when available."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from eval_helpers import LineEnv, require_metaworld, save_tiny_metaworld_policy
from typer.testing import CliRunner

import smolvla.envs  # noqa: F401  (selects the headless GL backend before any simulator import)
from smolvla.cli import evaluate as evaluate_cli
from smolvla.cli.evaluate import parse_host_port
from smolvla.cli.main import app
from smolvla.envs.metaworld_tasks import MT10
from smolvla.envs.registry import HELD_OUT_SEED
from smolvla.model.config import get_config
from smolvla.policy.config import PolicyConfig

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
        (["--checkpoint", str(Path(__file__).parent)], "is not a policy directory (no config.json)"),
    ],
)
def test_argument_errors(args, message):
    result = _eval(*args)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line


def test_n_action_steps_is_checked_against_the_checkpoint(tmp_path):
    from smolvla.policy.checkpoint import save_policy
    from smolvla.policy.testing import make_tiny_policy

    ckpt = save_policy(make_tiny_policy(), tmp_path / "policy")  # chunk of 10
    result = _eval("--checkpoint", str(ckpt), "--tasks", "drawer-close-v3", "--n-action-steps", "11")
    assert result.exit_code == 2
    assert "n_action_steps must be in [1, chunk_size=10], got 11" in result.stderr
    result = _eval("--remote", "127.0.0.1:9", "--n-action-steps", "5")
    assert result.exit_code == 2 and "server's setting" in result.stderr


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
    assert episode["seed"] == HELD_OUT_SEED and episode["steps"] <= 5
    assert report["meta"]["seeds"] == [HELD_OUT_SEED] and "partial" not in report
    assert (out / "success.png").is_file() and (out / "videos" / "metaworld__drawer-close-v3__ep000.mp4").is_file()
    assert "│ drawer-close-v3" in result.output and "group: easy" in result.output
    if path != "in_process":
        assert episode["timing"]["chunks"] >= 1 and report["meta"]["client_mode"] == "async"
    if path == "async_engine":
        assert report["meta"]["server_forward"]["n"] >= 1


class FailingAgent:
    """Moves LineEnv right until its `fail_at`-th episode (counting from 0), where it raises."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at, self.episodes = fail_at, -1

    def reset(self) -> None:
        self.episodes += 1

    def act(self, obs):
        if self.episodes == self.fail_at:
            raise RuntimeError(f"agent crashed in episode {self.episodes}")
        return np.array([0.5], np.float32)


@pytest.fixture
def line_envs(monkeypatch, tmp_path):
    """`eval` on LineEnv (no simulator) with a FailingAgent; returns a fake checkpoint directory."""
    from smolvla.envs import registry
    from smolvla.eval import runner as eval_runner

    monkeypatch.setattr(eval_runner, "make_env", lambda name, image_size: LineEnv(name, image_size))
    monkeypatch.setattr(registry, "require_simulator", lambda benchmark: None)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    config = PolicyConfig(model=get_config("tiny"), n_action_steps=10)  # a 64 px input
    (ckpt / "config.json").write_text(config.to_json())
    return ckpt


def test_a_crash_after_some_episodes_writes_a_partial_report(line_envs, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate_cli, "load_policy_agent", lambda checkpoint, n_action_steps: FailingAgent(3))
    out = tmp_path / "out"
    args = ["--checkpoint", str(line_envs), "--tasks", "reach-v3,push-v3", "--episodes", "2", "--videos", "0"]
    result = _eval(*args, "--out", str(out))
    assert result.exit_code == 1
    assert (
        result.stderr.strip().splitlines()[-1] == "error: unexpected RuntimeError: agent crashed in episode 3 "
        "(rerun with --debug for the traceback)"
    )
    assert "partial report (3 of 4 episodes)" in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] == {
        "error": "RuntimeError: agent crashed in episode 3",
        "episodes_finished": 3,
        "episodes_planned": 4,
    }
    assert [(e["env_name"], e["seed"]) for e in report["episodes"]] == [
        ("metaworld/reach-v3", HELD_OUT_SEED),
        ("metaworld/reach-v3", HELD_OUT_SEED + 1),
        ("metaworld/push-v3", HELD_OUT_SEED),
    ]
    assert report["overall"]["episodes"] == 3 and (out / "success.png").is_file()


def test_a_crash_before_any_episode_writes_no_report(line_envs, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate_cli, "load_policy_agent", lambda checkpoint, n_action_steps: FailingAgent(0))
    out = tmp_path / "out"
    result = _eval("--checkpoint", str(line_envs), "--tasks", "reach-v3", "--videos", "0", "--out", str(out))
    assert result.exit_code == 1 and "agent crashed in episode 0" in result.stderr
    assert not (out / "report.json").exists()


@pytest.mark.parametrize(
    ("benchmark", "envs"),
    [
        ("so101", ["so101/pick-place", "so101/stacking", "so101/sorting"]),
        ("metaworld", [f"metaworld/{t}" for t in MT10]),
        ("libero", [f"libero/libero_spatial/{i}" for i in range(10)]),
    ],
)
def test_each_benchmark_has_default_tasks_and_seeds_are_held_out(line_envs, tmp_path, monkeypatch, benchmark, envs):
    monkeypatch.setattr(evaluate_cli, "load_policy_agent", lambda checkpoint, n_action_steps: FailingAgent(-1))
    out = tmp_path / "out"
    result = _eval("--checkpoint", str(line_envs), "--benchmark", benchmark, "--episodes", "2", "--videos", "0",
                   "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert list(report["per_task"]) == envs
    assert report["meta"]["seeds"] == [HELD_OUT_SEED, HELD_OUT_SEED + 1]
    assert {e["seed"] for e in report["episodes"]} == {HELD_OUT_SEED, HELD_OUT_SEED + 1}


def test_missing_libero_names_our_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "libero", None)  # makes `import libero.libero` fail
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    result = _eval("--checkpoint", str(ckpt), "--benchmark", "libero")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: libero envs need an optional package: pip install 'smolvla[libero]'")


def test_summary_shows_the_engines_errors(capsys) -> None:
    from smolvla.cli.evaluate import print_summary

    row = {"episodes": 2, "success_rate": 0.0, "mean_score": 0.0, "mean_steps": 3, "mean_seconds": 0.1}
    report = {"per_task": {"metaworld/reach-v3": row}, "overall": row}
    print_summary(report)
    assert "engine errors" not in capsys.readouterr().out
    report["engine_errors"] = {"total": 7, "episodes": 2, "by_code": {"bad_task": 7}, "last": "task [x] too long"}
    print_summary(report)
    out = capsys.readouterr().out
    assert "engine errors: 7 in 2 episode(s) (bad_task x7); last: task [x] too long" in " ".join(out.split())


def test_envs_render_at_the_checkpoints_camera_size_unless_told(line_envs, tmp_path, monkeypatch):
    """No --image-size: the checkpoint's size (here its 64 px input: no training run beside it); an explicit
    size wins. Both reach the envs and the report."""
    from smolvla.eval import runner as eval_runner

    built = []
    monkeypatch.setattr(eval_runner, "make_env", lambda name, image_size: built.append(image_size) or LineEnv(name))
    monkeypatch.setattr(evaluate_cli, "load_policy_agent", lambda checkpoint, n_action_steps: FailingAgent(-1))
    for extra, size, source in (([], 64, "policy input size"), (["--image-size", "96"], 96, "--image-size")):
        out = tmp_path / f"out{size}"
        args = ["--checkpoint", str(line_envs), "--tasks", "reach-v3", "--episodes", "1", "--videos", "0"]
        result = _eval(*args, "--out", str(out), *extra)
        assert result.exit_code == 0, result.output
        meta = json.loads((out / "report.json").read_text())["meta"]
        assert (meta["image_size"], meta["image_size_source"], built[-1]) == (size, source, size)
