"""The evaluation loop on a cheap fake environment (no simulator needed) and on a tiny real policy."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from eval_helpers import LineEnv

from smolvla.eval import runner
from smolvla.eval.agents import PolicyAgent, obs_to_batch
from smolvla.eval.report import build_report, write_report
from smolvla.eval.runner import EvalConfig, evaluate


class StepAgent:
    def __init__(self, step: float) -> None:
        self.step, self.resets = step, 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs):
        return np.array([self.step], np.float32)


@pytest.fixture
def fake_registry(monkeypatch):
    monkeypatch.setattr(runner, "make_env", lambda name, image_size: LineEnv(name, image_size))


def test_evaluate_scores_and_writes_video_and_report(fake_registry, tmp_path):
    cfg = EvalConfig(envs=("fake/line",), episodes=3, seed=0, image_size=16, video_dir=tmp_path / "videos")
    results = evaluate(cfg, lambda: StepAgent(0.25), progress=False)
    assert [r.seed for r in results] == [0, 1, 2]
    # From x = 0.00, 0.01, 0.02 with steps of 0.25: 4 steps to reach 1.0 in every episode.
    assert all(r.success and r.steps == 4 for r in results)
    assert results[0].video is not None and results[1].video is None
    with av.open(results[0].video) as c:
        # Reset frame plus one frame per step, 16x16 camera.
        frames = list(c.decode(video=0))
    assert len(frames) == 5 and (frames[0].height, frames[0].width) == (16, 16)
    json_path, png = write_report(build_report(results, group_of=lambda n: "easy"), tmp_path / "out")
    report = json.loads(json_path.read_text())
    assert report["overall"]["success_rate"] == 1.0 and report["per_group_success_rate"] == {"easy": 1.0}
    assert png.stat().st_size > 1000


def test_step_limit_fails_episode(fake_registry):
    cfg = EvalConfig(envs=("fake/line",), episodes=1, seed=0, max_steps=3)
    (r,) = evaluate(cfg, lambda: StepAgent(0.1), progress=False)
    assert not r.success and r.steps == 3 and r.score == 0.0


def test_config_errors():
    with pytest.raises(ValueError, match="envs is empty"):
        EvalConfig(envs=())
    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        EvalConfig(envs=("a",), episodes=0)


def test_policy_agent_acts_through_its_queue():
    from smolvla.policy.testing import make_tiny_policy

    policy = make_tiny_policy(camera_keys=("observation.images.top",), state_dim=2, action_dim=1, n_action_steps=3)
    agent = PolicyAgent(policy)
    env = LineEnv()
    obs = env.reset(0)
    agent.reset()
    actions = [agent.act(obs) for _ in range(4)]
    assert all(a.shape == (1,) and a.dtype == np.float32 and np.isfinite(a).all() for a in actions)
    # A chunk is predicted on calls 1 and 4 only: the queue holds n_action_steps = 3 actions.
    assert len(policy._queue) == 2


def test_obs_to_batch_layout_and_missing_camera():
    env = LineEnv(image_size=8)
    env.x = 0.5
    batch = obs_to_batch(env._obs(), ("observation.images.top",))
    img = batch["observation.images.top"]
    assert img.shape == (1, 3, 8, 8) and float(img.max()) == pytest.approx(127 / 255)
    assert batch["task"] == ["move to the right"] and batch["observation.state"].shape == (1, 2)
    with pytest.raises(ValueError, match="lacks camera 'observation.images.wrist'.*observation.images.top"):
        obs_to_batch(env._obs(), ("observation.images.wrist",))


def test_video_upscaling(tmp_path):
    from smolvla.eval.video import write_rollout_video

    frames = np.zeros((3, 8, 6, 3), np.uint8)
    frames[:, :4] = 200  # top half bright
    path = write_rollout_video(frames, tmp_path / "v.mp4", fps=10, scale=4)
    with av.open(str(path)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 3 and decoded[0].shape == (32, 24, 3)
    assert decoded[0][:12].mean() > 150 and decoded[0][20:].mean() < 50
    with pytest.raises(ValueError, match="video scale must be an integer >= 1, got 0"):
        write_rollout_video(frames, tmp_path / "w.mp4", fps=10, scale=0)


class CrashingAgent(StepAgent):
    """StepAgent that raises in its `crash_at`-th episode (counting from 0)."""

    def __init__(self, crash_at: int) -> None:
        super().__init__(0.5)
        self.crash_at = crash_at

    def act(self, obs):
        if self.resets - 1 == self.crash_at:
            raise RuntimeError("simulator died")
        return super().act(obs)


def test_finished_episodes_survive_a_crash(fake_registry):
    cfg = EvalConfig(envs=("fake/a", "fake/b"), episodes=2, image_size=16)
    finished = []
    with pytest.raises(RuntimeError, match="simulator died"):
        evaluate(cfg, lambda: CrashingAgent(crash_at=2), progress=False, finished=finished)
    assert [(r.env_name, r.seed) for r in runner.sort_results(cfg, finished)] == [
        ("fake/a", runner.HELD_OUT_SEED),
        ("fake/a", runner.HELD_OUT_SEED + 1),
    ]


def test_default_seeds_are_held_out_from_datagen():
    from smolvla.envs.datagen import DatagenConfig

    cfg = EvalConfig(envs=("fake/line",), episodes=3)
    assert runner.seeds(cfg) == [1000, 1001, 1002]
    # datagen's default run (50 episodes per task, up to 4 attempts each) tries seeds 0 .. 199 only.
    datagen = DatagenConfig(env_names=("metaworld/reach-v3",), episodes_per_task=50)
    assert datagen.seed + datagen.attempt_limit <= runner.HELD_OUT_SEED
