"""Post-training precision changes of the exported float32 graphs (ONNX Runtime's tools), in place.

    int8-dynamic  MatMul/Gemm weights int8 (7-bit range) per output channel, activations quantised per call
    int8-static   weights int8 and activations uint8 with ranges calibrated on dataset observations (QDQ):
                  the prefix graph on the samples' inputs, the denoising graph on the context and x_t of
                  every Euler step of the float32 policy on the same samples
    fp16          weights and arithmetic in float16, inputs/outputs kept float32 (ORT's converter; constants
                  are clamped to +-1e4, which keeps the additive masks finite)

Only MatMul/Gemm (and Conv, the patch embedding) are quantised: the additive attention masks hold
float32's most negative value, which an int8 Add would destroy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from smolvla.deploy.manifest import DENOISE_ONNX, PREFIX_ONNX, Precision

log = logging.getLogger(__name__)

QUANTISED_OPS = ["MatMul", "Gemm", "Conv"]


def quantize_dir(directory: Path, precision: Precision, calibration: list | None) -> None:
    """Replace prefix.onnx and denoise.onnx in `directory` by their `precision` versions."""
    if precision == "int8-dynamic":
        for name in (PREFIX_ONNX, DENOISE_ONNX):
            _replace(directory / name, _dynamic)
    elif precision == "int8-static":
        if not calibration:
            raise ValueError("int8-static needs at least one calibration sample")
        prefix_feeds, denoise_feeds = calibration_feeds(directory, calibration)
        _replace(directory / PREFIX_ONNX, lambda src, dst: _static(src, dst, prefix_feeds))
        _replace(directory / DENOISE_ONNX, lambda src, dst: _static(src, dst, denoise_feeds))
    elif precision == "fp16":
        for name in (PREFIX_ONNX, DENOISE_ONNX):
            _replace(directory / name, _fp16)
    else:
        raise ValueError(f"unknown precision {precision!r}; expected int8-dynamic, int8-static or fp16")


def calibration_feeds(directory: Path, samples: list) -> tuple[list[dict], list[dict]]:
    """Inputs of each graph seen when the float32 export in `directory` predicts on `samples`."""
    from smolvla.deploy.onnx_policy import OnnxPolicy, euler_times

    policy = OnnxPolicy(directory)
    cfg = policy.config
    rng = np.random.default_rng(0)
    prefix_feeds, denoise_feeds = [], []
    for images, state, task in samples:
        inputs = policy.model_inputs(images, state, [task])
        prefix_feeds.append(inputs)
        context = policy.context(inputs)
        x = rng.standard_normal((1, cfg.chunk_size, cfg.max_action_dim), dtype=np.float32)
        for t in euler_times(cfg.num_steps):
            time = np.full((1,), t, dtype=np.float32)
            denoise_feeds.append({"x_t": x, "time": time, **context})
            x = x + np.float32(-1.0 / cfg.num_steps) * policy.velocity(x, time, context)
    return prefix_feeds, denoise_feeds


def _replace(path: Path, convert) -> None:
    tmp = path.with_name(path.stem + ".q.onnx")
    convert(path, tmp)
    tmp.replace(path)
    log.info("wrote %s", path)


def _dynamic(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,  # 7-bit weights: AVX2's u8 x s8 dot products saturate with 8 (0.6 vs 0.03 error)
        op_types_to_quantize=QUANTISED_OPS,
        extra_options={"MatMulConstBOnly": True},  # weights only: attention's activation products stay float
    )


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over a list of input dicts."""

    def __init__(self, feeds: list[dict]) -> None:
        self._it: Iterator[dict] = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self._it, None)


def _static(src: Path, dst: Path, feeds: list[dict]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        str(src),
        str(dst),
        _Feeds(feeds),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=QUANTISED_OPS,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"MatMulConstBOnly": True},
    )


def _fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True))
    model.topological_sort()  # the converter appends the input casts at the end of the node list
    onnx.save(model.model, str(dst))
