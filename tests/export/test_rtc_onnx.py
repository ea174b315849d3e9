"""Real-time chunking on the ONNX engine: guide.onnx holds the exact vector-Jacobian product torch's autograd
computes, so a guided chunk matches the torch policy's guided chunk (fixed noise) within the parity tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from export_helpers import wire_batch

from smolvla.deploy.manifest import GUIDE_ONNX, GUIDE_STEP_INPUTS, context_names
from smolvla.deploy.onnx_policy import OnnxPolicy
from smolvla.deploy.rtc import PrefixArrays, RTCConfig
from smolvla.policy.rtc import RTCGuide
from smolvla.policy.transforms import frames_to_images
from smolvla.serve.array_runner import ArrayRunner

TOL = 1e-4


def _noise(policy, batch: int, seed: int = 1) -> np.ndarray:
    shape = (batch, policy.config.chunk_size, policy.config.model.max_action_dim)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _torch_chunk(policy, images, state, tasks, noise, guide: RTCGuide | None) -> np.ndarray:
    batch = {k: frames_to_images(v) for k, v in images.items()}
    batch["observation.state"] = torch.from_numpy(state)
    batch["task"] = list(tasks)
    with torch.no_grad():  # not inference_mode: the guidance differentiates through the expert
        return policy.predict_action_chunk(batch, noise=torch.from_numpy(noise), rtc=guide).numpy()


def test_guide_graph_is_the_autograd_vjp(tiny_policy, tiny_export: Path) -> None:
    model = tiny_policy.model
    onnx_policy = OnnxPolicy(tiny_export, threads=1)
    images, state, tasks = wire_batch(tiny_policy.config.camera_keys, 6, batch=1)
    context = onnx_policy.context(onnx_policy.model_inputs(images, state, tasks))
    rng = np.random.default_rng(4)
    shape = (1, model.config.chunk_size, model.config.max_action_dim)
    x, target, weights = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    time = np.array([0.7], np.float32)
    session = ort.InferenceSession(str(tiny_export / GUIDE_ONNX), providers=["CPUExecutionProvider"])
    feeds = dict(zip(GUIDE_STEP_INPUTS, (x, time, target, weights), strict=True))
    v, g = session.run(None, {**feeds, **context})

    from smolvla.model.expert import ExpertContext

    names = context_names(len(model.expert.layers))
    ctx_t = [torch.from_numpy(context[n]) for n in names]
    layers = len(model.expert.layers)
    ctx = ExpertContext([(ctx_t[2 * i], ctx_t[2 * i + 1]) for i in range(layers)], *ctx_t[2 * layers :])
    x_in = torch.from_numpy(x).requires_grad_(True)
    v_t = model.velocity(ctx, x_in, torch.from_numpy(time))
    a_hat = x_in - 0.7 * v_t
    (g_t,) = torch.autograd.grad(a_hat, x_in, torch.from_numpy(weights) * (torch.from_numpy(target) - a_hat.detach()))
    np.testing.assert_allclose(v, v_t.detach().numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(g, g_t.numpy(), atol=1e-5, rtol=0)
    assert np.abs(g).max() > 0.1  # a real gradient, not zeros


def test_guided_chunk_matches_torch_rtc(tiny_policy, tiny_export: Path) -> None:
    onnx_policy = OnnxPolicy(tiny_export, threads=1)
    assert onnx_policy.supports_rtc
    images, state, tasks = wire_batch(tiny_policy.config.camera_keys, 6, batch=2)
    noise = _noise(tiny_policy, 2)
    chunk, delay = tiny_policy.config.chunk_size, 3
    plain = onnx_policy.predict(images, state, tasks, noise=noise)
    # A prefix 2 raw units from the unguided plan for element 0; element 1 sends none (sampled plainly).
    prefixes, delays = [plain[0, : chunk // 2] + 2.0, None], [delay, 0]
    config = RTCConfig(max_guidance_weight=5.0, execution_horizon=chunk // 2 - 1)
    got = onnx_policy.predict(
        images, state, tasks, noise=noise, rtc=PrefixArrays.build(prefixes, delays, chunk, config)
    )
    want = _torch_chunk(tiny_policy, images, state, tasks, noise, RTCGuide.build(prefixes, delays, chunk, config))
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    # The guidance acts: the first `delay` actions land near the prefix (plain sampling is 2.0 away) ...
    assert np.abs(got[0, :delay] - prefixes[0][:delay]).max() < 0.15
    # ... and only on the element that sent a prefix.
    np.testing.assert_allclose(got[1], plain[1], atol=1e-5, rtol=0)


def test_array_runner_serves_rtc_and_an_export_without_guide_refuses_it(tiny_policy, tmp_path: Path) -> None:
    from smolvla.export.exporter import export_policy

    images, state, tasks = wire_batch(tiny_policy.config.camera_keys, 6, batch=1)
    prefix = np.zeros((4, 6), np.float32)
    with_guide = ArrayRunner(OnnxPolicy(export_policy(tiny_policy, tmp_path / "rtc"), threads=1))
    assert with_guide.supports_rtc
    out = with_guide.predict(images, state, tasks, rtc=[(prefix, 2)])
    assert out.shape == (1, 10, 6) and np.isfinite(out).all()
    with pytest.raises(ValueError, match="rtc has 2 entries for a batch of 1"):
        with_guide.predict(images, state, tasks, rtc=[(prefix, 2), None])

    bare = OnnxPolicy(export_policy(tiny_policy, tmp_path / "plain", rtc=False), threads=1)
    assert not (bare.directory / GUIDE_ONNX).exists() and not bare.supports_rtc
    assert not ArrayRunner(bare).supports_rtc
    with pytest.raises(ValueError, match="OnnxPolicy cannot do real-time chunking"):
        ArrayRunner(bare).predict(images, state, tasks, rtc=[(prefix, 2)])
    arrays = PrefixArrays.build([prefix], [2], 10, RTCConfig())
    with pytest.raises(ValueError, match="has no guide.onnx: export it with RTC"):
        bare.predict(images, state, tasks, rtc=arrays)
