"""SimEnv bookkeeping, rollout collection and episode files, on a tiny pure-numpy env (no simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.envs.base import SimEnv, StepResult
from smolvla.envs.episode_io import load_episode, save_episode
from smolvla.envs.rollout import collect_episode


class LineEnv(SimEnv):
    """A point on a line must reach x >= 1; action float32[1] is the step; x < -1 is a failure."""

    def __init__(self, max_episode_steps: int = 10) -> None:
        self.name = "test/line"
        self.task = "move right"
        self.camera_keys = ("observation.images.cam",)
        self.image_size = 4
        self.state_dim = 1
        self.action_dim = 1
        self.fps = 10
        self.max_episode_steps = max_episode_steps
        self.x = 0.0

    def render(self) -> dict[str, np.ndarray]:
        return {"cam": np.full((4, 4, 3), int(127 + 100 * np.clip(self.x, -1, 1)), np.uint8)}

    def _obs(self) -> dict:
        return self._make_obs(self.render(), np.array([self.x]))

    def _reset(self, seed: int | None) -> dict:
        self.x = 0.0 if seed is None else np.random.default_rng(seed).uniform(-0.5, 0.5)
        return self._obs()

    def _step(self, action: np.ndarray) -> StepResult:
        self.x += float(action[0])
        success = self.x >= 1.0
        stages = {"half": 0.5 if self.x >= 0.5 else 0.0, "full": 0.5 if success else 0.0}
        return StepResult(self._obs(), reward=float(success), success=success, failed=self.x < -1, stage_scores=stages)


def test_obs_layout_and_success_terminates() -> None:
    env = LineEnv()
    obs = env.reset()
    assert set(obs) == {"observation.images.cam", "observation.state", "task"}
    assert obs["observation.images.cam"].dtype == np.uint8 and obs["observation.images.cam"].shape == (4, 4, 3)
    assert obs["observation.state"].dtype == np.float32 and obs["observation.state"].shape == (1,)
    assert obs["task"] == "move right"
    _, r, term, trunc, info = env.step(np.array([0.6]))
    assert not term and not trunc and info["success"] is False and info["stage_scores"]["half"] == 0.5
    _, r, term, trunc, info = env.step(np.array([0.6]))
    assert term and not trunc and info == {"success": True, "stage_scores": {"half": 0.5, "full": 0.5}}
    assert r == 1.0 and env.elapsed_steps == 2
    with pytest.raises(RuntimeError, match="episode already ended after 2 steps"):
        env.step(np.array([0.0]))


def test_time_limit_truncates_and_failure_terminates() -> None:
    env = LineEnv(max_episode_steps=3)
    env.reset()
    flags = [env.step(np.array([0.0]))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    env.reset()
    _, _, term, trunc, info = env.step(np.array([-2.0]))
    assert term and not trunc and not info["success"]


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (np.zeros(2), r"action must have shape \(1,\), got \(2,\)"),
        (np.array([np.nan]), "non-finite"),
        (np.array(["a"]), "must be numeric"),
    ],
)
def test_bad_actions_are_refused(action, match) -> None:
    env = LineEnv()
    env.reset()
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_step_before_reset_and_bad_seed() -> None:
    env = LineEnv()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(1))
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        env.reset(seed=-1)


def test_features_describe_observation() -> None:
    feats = LineEnv().observation_features()
    assert feats["observation.images.cam"]["shape"] == [4, 4, 3]
    assert feats["observation.state"] == {"dtype": "float32", "shape": [1], "names": None}
    assert feats["action"]["shape"] == [1]


def test_collect_episode_pairs_obs_before_action(tmp_path) -> None:
    env = LineEnv()
    ep = collect_episode(env, lambda obs: np.array([0.25], np.float32), seed=None)
    # x: 0 -> 0.25 -> 0.5 -> 0.75 -> 1.0 (success after 4 steps); frame t holds x before step t.
    assert len(ep) == 4 and ep.success and ep.task == "move right"
    np.testing.assert_allclose(ep.frames["observation.state"][:, 0], [0.0, 0.25, 0.5, 0.75])
    assert ep.frames["action"].shape == (4, 1) and ep.frames["observation.images.cam"].shape == (4, 4, 4, 3)
    np.testing.assert_array_equal(ep.rewards, [0, 0, 0, 1])
    assert ep.stage_scores == {"half": 0.5, "full": 0.5}
    assert "observation.environment_state" not in ep.frames  # LineEnv offers no privileged state

    save_episode(ep, tmp_path / "ep.npz")
    back = load_episode(tmp_path / "ep.npz")
    assert (back.env_name, back.task, back.seed, back.fps, back.success) == ("test/line", "move right", None, 10, True)
    for k, v in ep.frames.items():
        np.testing.assert_array_equal(back.frames[k], v)
        assert back.frames[k].dtype == v.dtype


class TrackedLineEnv(LineEnv):
    """LineEnv whose privileged state is the point's position (what the recording keeps beside the obs)."""

    def privileged_state(self) -> np.ndarray:
        return np.array([self.x, -self.x], np.float32)


def test_collect_episode_records_the_privileged_state_seen_with_each_observation() -> None:
    ep = collect_episode(TrackedLineEnv(), lambda obs: np.array([0.25], np.float32), seed=None)
    env_state = ep.frames["observation.environment_state"]
    assert env_state.dtype == np.float32 and env_state.shape == (4, 2)
    np.testing.assert_allclose(env_state[:, 0], ep.frames["observation.state"][:, 0])  # same instant as the obs
    np.testing.assert_allclose(env_state[:, 1], [0.0, -0.25, -0.5, -0.75])


def test_collect_episode_respects_max_steps_and_seed() -> None:
    env = LineEnv()
    ep = collect_episode(env, lambda obs: np.zeros(1), seed=7, max_steps=5)
    assert len(ep) == 5 and not ep.success
    again = collect_episode(env, lambda obs: np.zeros(1), seed=7, max_steps=5)
    np.testing.assert_array_equal(ep.frames["observation.state"], again.frames["observation.state"])
    with pytest.raises(ValueError, match=r"max_steps must be in \[1, 10\]"):
        collect_episode(env, lambda obs: np.zeros(1), max_steps=11)


def test_load_episode_rejects_other_npz(tmp_path) -> None:
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an episode file"):
        load_episode(tmp_path / "x.npz")
