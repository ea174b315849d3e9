"""The headless camera renderer: fast settings, argument checks, closing."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.envs.rendering import CameraRenderer

pytestmark = pytest.mark.sim

_SCENE = """
<mujoco><worldbody>
  <light pos="0 0 3"/>
  <camera name="top" pos="0 0 2"/>
  <geom type="box" size="0.3 0.3 0.3" rgba="1 0 0 1"/>
</worldbody></mujoco>
"""


def test_renders_named_camera_with_fast_settings(require_sim) -> None:
    require_sim("mujoco")
    from smolvla.envs.rendering import load_mujoco

    mujoco = load_mujoco()
    model = mujoco.MjModel.from_xml_string(_SCENE)
    renderer = CameraRenderer(model, 1024)  # larger than the default 640x480 offscreen buffer
    try:
        assert model.vis.global_.offwidth >= 1024 and model.vis.quality.offsamples == 0
        renderer.close()
        renderer = CameraRenderer(model, 32)
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)  # geometry poses are computed by the forward pass
        frame = renderer.render(data, "top")
        assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
        centre = frame[12:20, 12:20].reshape(-1, 3).mean(0)
        assert centre[0] > 2 * centre[1] and centre[0] > 2 * centre[2]  # the red box fills the middle
        assert renderer.has_camera("top") and not renderer.has_camera("side")
    finally:
        renderer.close()
    with pytest.raises(RuntimeError, match="renderer is closed"):
        renderer.render(mujoco.MjData(model), "top")


def test_interleaved_renderers_in_one_process(require_sim) -> None:
    """Each render makes its own GL context current, so two renderers can alternate (as two envs do)."""
    require_sim("mujoco")
    from smolvla.envs.rendering import load_mujoco

    mujoco = load_mujoco()
    model = mujoco.MjModel.from_xml_string(_SCENE)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    a, b = CameraRenderer(model, 16), CameraRenderer(model, 24)
    try:
        first = a.render(data, "top")
        assert b.render(data, "top").shape == (24, 24, 3)
        np.testing.assert_array_equal(a.render(data, "top"), first)
        assert first.max() > 0
    finally:
        a.close()
        b.close()


def test_bad_size() -> None:
    with pytest.raises(ValueError, match="image size must be a positive int, got 0"):
        CameraRenderer(object(), 0)
