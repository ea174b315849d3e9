"""Encode episode frames to mp4 (AV1 via SVT-AV1, or h264/hevc) and concatenate episodes by stream copy.

Defaults are LeRobot 0.6.1's `RGBEncoderConfig`: libsvtav1, yuv420p, GOP g=2, crf 30, preset 12,
`svtav1-params fast-decode=0`, frame rate = dataset fps. The short GOP is what makes random access cheap
(a seek lands at most one frame before the wanted one). The installed `av` wheel bundles libsvtav1
(encode) and libdav1d (decode); libaom is not in it, so "libaom-av1" is refused up front.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from smolvla.data.meta import DatasetFormatError
from smolvla.data.realtime import no_realtime_scheduling

# Encoder name -> canonical stream codec name written to info.json (`video.codec`).
CODECS = {"libsvtav1": "av1", "h264": "h264", "libx264": "h264", "hevc": "hevc", "libx265": "hevc"}


@dataclass(frozen=True)
class VideoEncoding:
    """Encoder settings of the camera streams (LeRobot's defaults)."""

    codec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int = 2
    crf: int = 30
    preset: int | str | None = 12
    fast_decode: int = 0
    extra_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"video codec {self.codec!r} is not supported; choose one of {sorted(CODECS)}")
        try:
            av.codec.Codec(self.codec, "w")
        except Exception as e:
            raise ValueError(f"the installed PyAV/FFmpeg has no {self.codec!r} encoder") from e
        if self.g < 1:
            raise ValueError(f"GOP size g must be >= 1, got {self.g}")

    def options(self) -> dict[str, str]:
        opts = {"g": str(self.g), "crf": str(self.crf)}
        if self.codec == "libsvtav1":
            if self.preset is not None:
                opts["preset"] = str(self.preset)
            opts["svtav1-params"] = f"fast-decode={self.fast_decode}"
        elif self.preset is not None and isinstance(self.preset, str):
            opts["preset"] = self.preset  # x264/x265 presets are names ("medium", "fast", ...)
        opts.update(self.extra_options)
        return opts

    @staticmethod
    def h264() -> VideoEncoding:
        """libx264 with the same GOP/crf (faster to encode; B-frames as FFmpeg defaults)."""
        return VideoEncoding(codec="libx264", crf=23, preset=None)


def encode_video(frames: np.ndarray, path: Path, fps: int, enc: VideoEncoding) -> None:
    """Write uint8[T, H, W, 3] RGB frames to an mp4 at `path` (frame i at pts i / fps)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8[T, H, W, 3], got {frames.dtype}{list(frames.shape)}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"{enc.pix_fmt} video needs even height and width, got {h}x{w}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # SVT-AV1 prints its banner and config on every encoder start unless told otherwise (1 = errors only).
    os.environ.setdefault("SVT_LOG", "1")
    # As root, SVT-AV1 would leave this thread (and every process it starts) at SCHED_FIFO 99: see realtime.py.
    with no_realtime_scheduling(), av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream(enc.codec, rate=Fraction(fps), options=enc.options())
        stream.width, stream.height, stream.pix_fmt = w, h, enc.pix_fmt
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _checked_packets(path: Path, container, stream, frames: int):
    """The packets of `stream` (one per frame), refusing a file that does not hold exactly `frames` whole ones.

    A truncated mp4 still opens (its index sits at the front) but its last packet comes back short, flagged
    corrupt, or packets are missing: appending to it would give an unreadable episode, so it is an error.
    """
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.dts is None:  # demuxer's end-of-stream marker
                continue
            if packet.is_corrupt:
                raise DatasetFormatError(f"{path}: video frame {count} is incomplete: the file is truncated or damaged")
            count += 1
            yield packet
    except av.FFmpegError as e:
        raise DatasetFormatError(f"{path}: cannot read video ({e})") from e
    if count != frames:
        raise DatasetFormatError(
            f"{path}: holds {count} video frames but the dataset metadata expects {frames}: "
            "the file is truncated or damaged"
        )


def _open_video(path: Path):
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise DatasetFormatError(f"{path}: cannot open video ({e})") from e
    if not container.streams.video:
        container.close()
        raise DatasetFormatError(f"{path}: has no video stream")
    return container


def concat_videos(parts: list[tuple[Path, int]], out_path: Path, fps: int) -> None:
    """Stream-copy mp4 `parts` [(path, num_frames)] into `out_path`, each part starting where the last ended.

    No re-encoding: packets are copied and their timestamps shifted by the frames before them, so episode k
    of the output starts at `sum(num_frames before k) / fps` seconds. A part that does not hold exactly its
    `num_frames` whole frames raises DatasetFormatError naming it (`out_path` is then incomplete: discard it).
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out_path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        out_stream = None
        frames_before = 0
        for path, num_frames in parts:
            with _open_video(path) as src:
                in_stream = src.streams.video[0]
                if out_stream is None:
                    out_stream = out.add_stream_from_template(in_stream, opaque=True)
                shift = int(round(Fraction(frames_before, fps) / in_stream.time_base))
                for packet in _checked_packets(path, src, in_stream, num_frames):
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = out_stream
                    out.mux(packet)
            frames_before += num_frames


def video_payload_bytes(path: Path, frames: int) -> int:
    """Bytes of the video packets of an mp4 holding `frames` frames (its size less the container's headers and index).

    Stream copy keeps packets byte for byte, so the payload of a concatenation is the sum of its parts'
    payloads; the writer's rollover rule counts this rather than the file size for that reason. A damaged file
    (or one with another number of frames) raises DatasetFormatError naming it.
    """
    with _open_video(path) as c:
        return sum(packet.size for packet in _checked_packets(path, c, c.streams.video[0], frames))


def probe_video_info(path: Path, enc: VideoEncoding, fps: int) -> dict:
    """The `info` block LeRobot stores for a video feature (stream probe + encoder settings)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        h, w, pix_fmt = s.codec_context.height, s.codec_context.width, s.codec_context.pix_fmt
        has_audio = len(c.streams.audio) > 0
    return {
        "video.height": h,
        "video.width": w,
        "video.codec": CODECS[enc.codec],
        "video.pix_fmt": pix_fmt,
        "video.fps": fps,
        "video.channels": 3,
        "has_audio": has_audio,
        "video.g": enc.g,
        "video.crf": enc.crf,
        "video.preset": enc.preset,
        "video.fast_decode": enc.fast_decode,
        "video.video_backend": "pyav",
        "video.extra_options": dict(enc.extra_options),
        "is_depth_map": False,
    }
