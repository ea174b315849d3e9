"""Cameras named on the command line: `--camera NAME=SOURCE[:WIDTHxHEIGHT][@FPS]`.

    top=0:640x480@30          OpenCV camera index 0
    wrist=/dev/video2@30      OpenCV device path, the camera's own resolution
    top=fake:64x48@30         synthetic frames (FakeCamera), for dry runs without cameras
    top=clip.mp4@30           a video file, looped (FakeCamera)

NAME becomes the dataset / policy key `observation.images.NAME`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smolvla.robots.cameras import OpenCVCamera, ThreadedCamera
from smolvla.robots.cameras_fake import FakeCamera

_SPEC = re.compile(
    r"^(?P<name>[A-Za-z0-9_]+)=(?P<source>[^:@]+)(?::(?P<w>\d+)x(?P<h>\d+))?(?:@(?P<fps>\d+(?:\.\d+)?))?$"
)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
FAKE_DEFAULT_HW = (48, 64)


@dataclass(frozen=True)
class CameraSpec:
    name: str
    source: int | str
    width: int | None = None
    height: int | None = None
    fps: float | None = None


def parse_camera_spec(text: str) -> CameraSpec:
    """'top=0:640x480@30' -> CameraSpec('top', 0, 640, 480, 30.0); ValueError naming the expected form."""
    match = _SPEC.match(text.strip())
    if match is None:
        raise ValueError(
            f"camera {text!r}: expected NAME=SOURCE[:WIDTHxHEIGHT][@FPS], e.g. top=0:640x480@30,"
            " wrist=/dev/video2, top=fake:64x48 or top=clip.mp4"
        )
    source: int | str = match["source"]
    if str(source).isdigit():
        source = int(source)
    width, height = (int(match["w"]), int(match["h"])) if match["w"] else (None, None)
    return CameraSpec(match["name"], source, width, height, float(match["fps"]) if match["fps"] else None)


def make_camera(spec: CameraSpec, default_fps: float) -> ThreadedCamera:
    """The camera a spec names (not connected yet)."""
    fps = spec.fps or default_fps
    if spec.source == "fake" or str(spec.source).lower().endswith(VIDEO_SUFFIXES):
        height, width = (spec.height, spec.width) if spec.width else FAKE_DEFAULT_HW
        video = None if spec.source == "fake" else spec.source
        return FakeCamera(spec.name, width=width, height=height, fps=fps, video=video)
    return OpenCVCamera(spec.source, fps=fps, width=spec.width, height=spec.height, name=spec.name)


def parse_cameras(texts: list[str] | None) -> list[CameraSpec]:
    """Specs of repeated `--camera` options; a name given twice is refused (it would be one dataset key)."""
    specs = [parse_camera_spec(t) for t in texts or []]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"camera names must be unique; {dupes} given more than once")
    return specs
