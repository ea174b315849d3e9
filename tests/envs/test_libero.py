"""LIBERO adapter: state conversion (always) and the simulator itself (slow: ~15 s to build a task)."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.envs.libero import quat_to_axis_angle


def test_quat_to_axis_angle_golden() -> None:
    # 90 degrees about z: q = (0, 0, sin 45, cos 45) in (x, y, z, w) order.
    s = np.sqrt(0.5)
    np.testing.assert_allclose(quat_to_axis_angle([0, 0, s, s]), [0, 0, np.pi / 2], atol=1e-12)
    # q and -q are the same rotation; the angle stays in [0, pi].
    np.testing.assert_allclose(quat_to_axis_angle([0, 0, -s, -s]), [0, 0, np.pi / 2], atol=1e-12)
    np.testing.assert_allclose(quat_to_axis_angle([1, 0, 0, 0]), [np.pi, 0, 0], atol=1e-12)
    np.testing.assert_array_equal(quat_to_axis_angle([0, 0, 0, 1]), np.zeros(3))
    np.testing.assert_allclose(quat_to_axis_angle([0, 0, 0, 2]), np.zeros(3))  # normalised first


def test_bad_task_names() -> None:
    from smolvla.envs.libero import LiberoEnv

    for name in ("libero_spatial", "libero_spatial/10", "libero_90/0"):
        with pytest.raises(ValueError, match="LIBERO task must be '<suite>/<0..9>'"):
            LiberoEnv(name)


@pytest.mark.slow
@pytest.mark.sim
def test_libero_observation_and_seed(require_sim) -> None:
    require_sim("libero.libero")
    from smolvla.envs import make_env

    with make_env("libero/libero_object/0", image_size=16, settle_steps=2) as env:
        assert env.max_episode_steps == 280 and (env.state_dim, env.action_dim, env.fps) == (8, 7, 20)
        obs = env.reset(seed=3)
        for key in ("observation.images.agentview", "observation.images.robot0_eye_in_hand"):
            assert obs[key].shape == (16, 16, 3) and obs[key].dtype == np.uint8 and obs[key].std() > 0
        assert obs["observation.state"].shape == (8,) and obs["observation.state"].dtype == np.float32
        assert obs["task"] == env.task and len(env.task) > 10
        again = env.reset(seed=3)
        np.testing.assert_allclose(again["observation.state"], obs["observation.state"], atol=1e-6)
        _, _, term, trunc, info = env.step(np.zeros(7, np.float32))
        assert info == {"success": False} and not (term or trunc)


@pytest.mark.slow
@pytest.mark.sim
def test_libero_expert_solves_a_spatial_task_without_rendering(require_sim) -> None:
    require_sim("libero.libero")
    from smolvla.envs import make_env
    from smolvla.envs.libero_expert import SimScene

    with make_env("libero/libero_spatial/0", cameras=()) as env:
        assert env.goal == [["on", "akita_black_bowl_1", "plate_1"]]
        obs = env.reset(seed=0)
        assert set(obs) == {"observation.state", "task"}  # no cameras: no images rendered
        expert = env.scripted_expert()
        expert.reset()
        bowl = SimScene(env.robosuite_env).box("akita_black_bowl_1")
        # the bowl's collision shape: about 11 cm across and 5 cm high, standing on the table
        np.testing.assert_allclose(2 * bowl.half, [0.107, 0.107, 0.05], atol=0.01)
        done, info = False, {}
        while not done:
            obs, _, term, trunc, info = env.step(expert.act(obs))
            done = term or trunc
        assert info["success"] and env.elapsed_steps < 150


def test_bad_split_is_refused_before_the_simulator_loads() -> None:
    from smolvla.envs.libero import LiberoEnv

    with pytest.raises(ValueError, match=r"LIBERO split must be one of \['official', 'sampled'\], got 'train'"):
        LiberoEnv("libero_spatial/0", split="train")


@pytest.mark.slow
@pytest.mark.sim
def test_sampled_scenes_follow_the_seed_and_differ_from_the_official_states(require_sim) -> None:
    require_sim("libero.libero")
    from smolvla.envs import make_env
    from smolvla.envs.libero_expert import SimScene

    with make_env("libero/libero_spatial/0", cameras=(), split="sampled", settle_steps=2) as env:
        scene = SimScene(env.robosuite_env)
        env.reset(seed=7)
        first = scene.point("akita_black_bowl_1")
        env.reset(seed=8)
        other = scene.point("akita_black_bowl_1")
        env.reset(seed=7)
        np.testing.assert_allclose(scene.point("akita_black_bowl_1"), first, atol=1e-6)
        assert np.linalg.norm(first[:2] - other[:2]) > 1e-3


@pytest.mark.slow
@pytest.mark.sim
def test_libero_expert_opens_a_lower_drawer_and_scene_counts_blocked_points(require_sim) -> None:
    require_sim("libero.libero")
    from smolvla.envs import make_env
    from smolvla.envs.libero_expert import SimScene

    # libero_goal/0 "open the middle drawer of the cabinet": its handle sits under the top drawer's
    with make_env("libero/libero_goal/0", cameras=()) as env:
        obs = env.reset(seed=0)
        scene = SimScene(env.robosuite_env)
        handle = scene.drawer("wooden_cabinet_1_middle_region").handle  # the centre of the handle bar's geom
        inside = np.array([handle, handle + [0.0, 0.0, 1.0]])  # one in the cabinet's handle, one far above
        assert scene.blocked(inside, "akita_black_bowl_1") == 1
        assert scene.blocked(inside, "wooden_cabinet_1") == 0  # the excluded object does not count
        expert = env.scripted_expert()
        expert.reset()
        done, info = False, {}
        while not done:
            obs, _, term, trunc, info = env.step(expert.act(obs))
            done = term or trunc
        assert info["success"] and env.elapsed_steps < 200
