"""Grasp candidates and the open hand's room (`smolvla.envs.libero_grasp`): pure geometry, literal inputs."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.envs.libero_grasp import (
    APPROACH_SWEEP,
    FINGER_OFFSET,
    RIM_ANGLES,
    box_candidates,
    hand_points,
    rim_candidates,
    unit,
)


def test_hand_points_span_the_fingers_and_the_palm_along_the_finger_axis() -> None:
    grip = np.array([0.1, 0.2, 1.0])
    pts = hand_points(grip, np.array([0.0, 2.0, 0.0]))  # fingers close along world y (axis normalised)
    rel = pts - grip
    # the palm: 21 cm along the finger axis, 7 cm across; the fingers reach 1.3 cm below the grip point
    assert rel[:, 1].min() == pytest.approx(-0.104) and rel[:, 1].max() == pytest.approx(0.104)
    assert rel[:, 0].min() == pytest.approx(-0.035) and rel[:, 0].max() == pytest.approx(0.035)
    assert rel[:, 2].min() == pytest.approx(0.018 - 0.031)
    assert rel[:, 2].max() == pytest.approx(0.125 + APPROACH_SWEEP)  # the way down is included
    # nothing between the open fingers below the palm: the object goes there
    low = rel[rel[:, 2] < 0.02]
    assert np.all(np.abs(low[:, 1]) >= FINGER_OFFSET - 0.018 - 1e-9)


def test_rim_candidates_start_at_the_given_side_then_its_opposite() -> None:
    centre = np.array([0.0, 0.0, 0.9])
    cands = rim_candidates(centre, 0.04, 0.93, first=np.pi / 2)
    assert len(cands) == RIM_ANGLES and len({round(a % (2 * np.pi), 6) for _, a in cands}) == RIM_ANGLES
    p0, p1 = cands[0][0], cands[1][0]
    np.testing.assert_allclose(p0, [0.0, 0.04, 0.93], atol=1e-12)
    np.testing.assert_allclose(p1, [0.0, -0.04, 0.93], atol=1e-12)
    for p, a in cands:  # every grip point on the rim, fingers closing radially
        np.testing.assert_allclose(p[:2], 0.04 * unit(a)[:2], atol=1e-12)


def test_box_candidates_across_the_narrow_side_shifted_and_turned_only_if_it_fits() -> None:
    # 8 cm x 4 cm box, long side along x: fingers close along y, shifts along x
    cands = box_candidates(np.array([0.0, 0.0, 0.9]), np.array([0.04, 0.02, 0.01]), 0.0, 0.905)
    p0, a0 = cands[0]
    np.testing.assert_allclose(p0, [0.0, 0.0, 0.905])
    assert abs(np.sin(a0)) == pytest.approx(1.0)
    assert sorted(round(p[0], 6) for p, a in cands if a == a0) == [-0.025, 0.0, 0.025]
    # turned by 0.35 rad the grip spans 2 * (0.02 cos + 0.04 sin) = 6.5 cm: still fits, so 9 candidates
    assert len(cands) == 9
    # a 6 cm wide box turned would need more than 7 cm: only the three untilted ones
    wide = box_candidates(np.array([0.0, 0.0, 0.9]), np.array([0.05, 0.03, 0.01]), 0.0, 0.905)
    assert len(wide) == 3 and all(a == wide[0][1] for _, a in wide)
