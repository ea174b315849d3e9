"""SO-101 suite without a simulator: LeRobot joint units, the id/ood splits, scoring of literal states and
the --split options of datagen and eval."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.envs.so101_suite import arm, layout, tasks
from smolvla.envs.so101_suite.scene import BIN_FLOOR_HALF_THICKNESS, CUBE_HALF


def test_lerobot_units_round_trip() -> None:
    gripper_range = np.array([-0.2, 1.8])
    values = np.array([10.0, -45.0, 90.0, 0.0, -120.0, 25.0])
    rad = arm.to_radians(values, gripper_range)
    np.testing.assert_allclose(rad[:5], np.radians(values[:5]))
    assert rad[5] == pytest.approx(-0.2 + 0.25 * 2.0)
    np.testing.assert_allclose(arm.to_lerobot(rad, gripper_range), values, atol=1e-4)
    assert arm.to_radians(np.array([0, 0, 0, 0, 0, 150.0]), gripper_range)[5] == pytest.approx(1.8)  # clipped


def _draw(split: str, seed: int, n_cubes: int = 2, bins: tuple = ("red", "blue")) -> layout.Layout:
    return layout.sample_layout(np.random.default_rng(seed), split, n_cubes, list(bins), ["red", "blue"][:n_cubes])


def test_splits_differ_in_placement_colour_size_and_light() -> None:
    for seed in range(30):
        ind, ood = _draw("id", seed), _draw("ood", seed)
        assert all(layout.in_id_cube_region(xy) for xy in ind.cube_xy)
        assert not any(layout.in_id_cube_region(xy) for xy in ood.cube_xy)
        assert ind.cube_colour == ["red", "blue"] and ind.bin_colour == ["red", "blue"]
        assert set(ood.cube_colour) <= set(layout.OOD_COLOURS) and len(set(ood.cube_colour)) == 2
        assert ood.bin_colour == ood.cube_colour  # sorting bins follow their cube's unseen colour
        assert ind.cube_half == [CUBE_HALF] * 2 and set(ood.cube_half) <= set(layout.OOD_CUBE_HALVES)
        assert ind.light_diffuse == layout.DEFAULT_LIGHT["diffuse"] and ood.light_diffuse != ind.light_diffuse


def test_layouts_are_seeded_and_keep_things_apart() -> None:
    a, b = _draw("id", 3), _draw("id", 3)
    np.testing.assert_array_equal(np.array(a.cube_xy), np.array(b.cube_xy))
    assert not np.allclose(np.array(a.cube_xy), np.array(_draw("id", 4).cube_xy))
    for seed in range(30):
        lay = _draw("ood", seed)
        assert np.linalg.norm(lay.cube_xy[0] - lay.cube_xy[1]) >= layout.MIN_CUBE_CUBE
        assert min(np.linalg.norm(c - b) for c in lay.cube_xy for b in lay.bin_xy) >= layout.MIN_CUBE_BIN
        assert lay.bin_xy[0][1] * lay.bin_xy[1][1] < 0  # one bin on each side
    pick = _draw("id", 0, n_cubes=1, bins=(None,))
    assert pick.bin_colour == ["neutral"] and len(pick.bin_xy) == 1


def test_unknown_split() -> None:
    with pytest.raises(ValueError, match=r"unknown split 'test'; expected one of \['id', 'ood'\]"):
        _draw("test", 0)


def _state(pos, lifted, touched=None, bins=((0.2, 0.15), (0.2, -0.15))) -> tasks.SceneState:
    n = len(pos)
    return tasks.SceneState(
        cube_pos=[np.array(p, float) for p in pos],
        cube_speed=[0.0] * n,
        cube_half=[CUBE_HALF] * n,
        cube_touched=list(touched or [False] * n),
        cube_lifted=list(lifted),
        bin_xy=[np.array(b) for b in bins],
    )


IN_BIN0 = (0.21, 0.16, 2 * BIN_FLOOR_HALF_THICKNESS + CUBE_HALF)
IN_BIN1 = (0.19, -0.14, 2 * BIN_FLOOR_HALF_THICKNESS + CUBE_HALF)
ON_TABLE = (0.25, 0.0, CUBE_HALF)


def test_pick_place_stages() -> None:
    assert tasks.score("pick-place", _state([ON_TABLE], [False])) == ({"pick": 0.0, "place": 0.0}, False)
    assert tasks.score("pick-place", _state([ON_TABLE], [True])) == ({"pick": 0.5, "place": 0.0}, False)
    assert tasks.score("pick-place", _state([IN_BIN0], [True])) == ({"pick": 0.5, "place": 0.5}, True)
    # still in the jaws: not released, not placed; pushed in without a lift: not placed either
    assert tasks.score("pick-place", _state([IN_BIN0], [True], touched=[True]))[1] is False
    assert tasks.score("pick-place", _state([IN_BIN0], [False])) == ({"pick": 0.0, "place": 0.0}, False)


def test_stacking_stages() -> None:
    on_base = (0.25, 0.005, 3 * CUBE_HALF)
    assert tasks.score("stacking", _state([on_base, ON_TABLE], [True])) == ({"pick": 0.5, "stack": 0.5}, True)
    beside = (0.25, 0.04, CUBE_HALF)
    assert tasks.score("stacking", _state([beside, ON_TABLE], [True, False])) == ({"pick": 0.5, "stack": 0.0}, False)
    off_centre = (0.25, 0.02, 3 * CUBE_HALF)  # more than half a cube off: it would topple
    assert tasks.score("stacking", _state([off_centre, ON_TABLE], [True, False]))[1] is False


def test_sorting_stages_and_the_wrong_bin() -> None:
    both = tasks.score("sorting", _state([IN_BIN0, IN_BIN1], [True, True]))
    assert both == ({"pick0": 0.25, "place0": 0.25, "pick1": 0.25, "place1": 0.25}, True)
    one = tasks.score("sorting", _state([IN_BIN0, ON_TABLE], [True, True]))
    assert one == ({"pick0": 0.25, "place0": 0.25, "pick1": 0.25, "place1": 0.0}, False)
    # cube 0 resting in cube 1's bin earns nothing for it, not even its pick
    swapped = tasks.score("sorting", _state([IN_BIN1, (0.19, -0.17, IN_BIN1[2])], [True, True]))
    assert swapped == ({"pick0": 0.0, "place0": 0.0, "pick1": 0.25, "place1": 0.25}, False)


def test_unknown_task_scoring() -> None:
    with pytest.raises(ValueError, match="unknown SO-101 task 'push'"):
        tasks.score("push", _state([ON_TABLE], [False]))


@pytest.mark.parametrize("command", ["datagen", "eval"])
def test_split_is_an_so101_option(command, tmp_path) -> None:
    from typer.testing import CliRunner

    from smolvla.cli.main import app

    args = [command, "metaworld"] if command == "datagen" else [command, "--benchmark", "metaworld"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out"), "--split", "ood"])
    assert result.exit_code != 0 and "metaworld has no scene splits; --split is for" in result.output
    result = CliRunner().invoke(app, ["datagen", "so101", "--out", str(tmp_path / "o"), "--split", "odd"])
    assert result.exit_code != 0 and "'odd' is not one of id, ood; did you mean 'ood'?" in result.output
