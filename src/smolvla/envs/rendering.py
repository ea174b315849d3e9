"""Fast headless camera rendering for MuJoCo scenes, and a check that rendering works on this machine.

MuJoCo picks its OpenGL backend from `MUJOCO_GL` when `mujoco` is first imported, so this module sets a
headless default (EGL) before importing it; a value the user exported wins (e.g. `MUJOCO_GL=osmesa` on a
machine without EGL). Import `mujoco` through here (`load_mujoco()`) for that reason.

Speed: shadows, reflections and multi-sample anti-aliasing dominate software-rendered frame time (about
9 fps -> 60+ fps at 256x256 here) and add little to a 64-256 px policy input, so they are turned off.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import weakref
from types import ModuleType
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_GL_BACKEND = "egl"


def select_gl_backend() -> None:
    """Default `MUJOCO_GL` to EGL; too late (with a warning) if something imported mujoco already."""
    if "MUJOCO_GL" in os.environ:
        return
    if "mujoco" in sys.modules:
        logger.warning("mujoco was imported before MUJOCO_GL was set; offscreen rendering may need a display")
        return
    os.environ["MUJOCO_GL"] = DEFAULT_GL_BACKEND


# At import, so that `import smolvla.envs` before a simulator package is enough to render headless.
select_gl_backend()


def load_mujoco() -> ModuleType:
    """Import mujoco with a headless GL backend selected (unless `MUJOCO_GL` is already set)."""
    select_gl_backend()
    import mujoco

    return mujoco


class CameraRenderer:
    """Renders named cameras of one MuJoCo model into uint8[size, size, 3] RGB frames.

    The renderer owns a GL context; `mujoco.Renderer.render` makes it current before drawing, which is
    what lets several envs (each with its own renderer) render in one process. Call `close()` when done.
    """

    def __init__(self, model: Any, size: int) -> None:
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"image size must be a positive int, got {size!r}")
        mujoco = load_mujoco()
        # The offscreen buffer must hold the frame; growing it is what the model's <global offwidth> does.
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), size)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), size)
        model.vis.quality.offsamples = 0  # no MSAA; must be set before the GL context is created
        self._mujoco = mujoco
        self._model = model
        self.size = size
        self._renderer = mujoco.Renderer(model, height=size, width=size)
        # Free the GL context at the latest when the interpreter exits, before the EGL display goes away
        # (a context freed afterwards, by the garbage collector, prints EGL errors).
        self._finalizer = weakref.finalize(self, self._renderer.close)
        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False

    def has_camera(self, camera: str) -> bool:
        return self._mujoco.mj_name2id(self._model, self._mujoco.mjtObj.mjOBJ_CAMERA, camera) >= 0

    def render(self, data: Any, camera: str) -> np.ndarray:
        """Draw `camera` for the state in `data` -> a fresh uint8[size, size, 3] array."""
        if self._renderer is None:
            raise RuntimeError("renderer is closed")
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        self._finalizer()  # runs Renderer.close once; later calls do nothing
        self._renderer = None


@functools.cache
def rendering_available() -> bool:
    """True when mujoco imports and can draw an offscreen frame here (tests skip on False)."""
    try:
        mujoco = load_mujoco()
        model = mujoco.MjModel.from_xml_string(
            '<mujoco><worldbody><camera name="c" pos="0 0 1"/><geom type="sphere" size="0.1"/></worldbody></mujoco>'
        )
        renderer = CameraRenderer(model, 8)
        try:
            frame = renderer.render(mujoco.MjData(model), "c")
        finally:
            renderer.close()
        return frame.shape == (8, 8, 3)
    except Exception as e:  # missing GL libraries surface as several unrelated exception types
        logger.info("MuJoCo offscreen rendering unavailable (MUJOCO_GL=%s): %s", os.environ.get("MUJOCO_GL"), e)
        return False
