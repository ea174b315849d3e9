"""Meta-World adapter: observation layout, seeding, the scripted expert, camera handling."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def reach(require_sim):
    require_sim("metaworld")
    from smolvla.envs import make_env

    env = make_env("metaworld/reach-v3", image_size=16, cameras=("corner2", "topview"))
    yield env
    env.close()


def test_observation_layout(reach) -> None:
    obs = reach.reset(seed=0)
    assert reach.camera_keys == ("observation.images.corner2", "observation.images.topview")
    assert set(obs) == {*reach.camera_keys, "observation.state", "task"}
    for key in reach.camera_keys:
        assert obs[key].shape == (16, 16, 3) and obs[key].dtype == np.uint8
        assert obs[key].std() > 0  # a drawn scene, not a blank buffer
    assert obs["observation.state"].shape == (4,) and obs["observation.state"].dtype == np.float32
    assert obs["task"] == reach.task == "move the gripper to the goal position"
    assert (reach.state_dim, reach.action_dim, reach.fps, reach.max_episode_steps) == (4, 4, 80, 500)
    obs, reward, term, trunc, info = reach.step(np.zeros(4, np.float32))
    assert isinstance(reward, float) and set(info) == {"success"} and not (term or trunc)


def test_seed_fixes_the_scene(reach) -> None:
    a = reach.reset(seed=5)
    goal_a = reach.raw_observation[-3:].copy()
    b = reach.reset(seed=5)
    np.testing.assert_array_equal(a["observation.images.corner2"], b["observation.images.corner2"])
    np.testing.assert_array_equal(goal_a, reach.raw_observation[-3:])
    reach.reset(seed=6)
    assert not np.allclose(goal_a, reach.raw_observation[-3:])


def test_expert_solves_reach(reach) -> None:
    from smolvla.envs import expert_episode

    for seed in (0, 1):
        ep = expert_episode(reach, seed=seed)
        assert ep.success and len(ep) < 150, (seed, len(ep))
        # The hand ends near the goal it was steered to (the success test uses the gripper centre, 5 cm).
        hand = ep.frames["observation.state"][:, :3]
        goal = reach.raw_observation[-3:]
        assert np.linalg.norm(hand[-1] - goal) < 0.08 < np.linalg.norm(hand[0] - goal)


def test_bad_arguments(require_sim) -> None:
    require_sim("metaworld")
    from smolvla.envs.metaworld import MetaWorldEnv

    with pytest.raises(ValueError, match="cameras must be a non-empty subset"):
        MetaWorldEnv("reach-v3", image_size=8, cameras=("front",))
    with pytest.raises(ValueError, match=r"max_episode_steps must be in \[1, 500\]"):
        MetaWorldEnv("reach-v3", image_size=8, max_episode_steps=501)
    with pytest.raises(ValueError, match="unknown Meta-World task 'reach'"):
        MetaWorldEnv("reach", image_size=8)
