"""The policy's inputs live on the policy's device: images resized there, the empty-camera fill made there,
and one host sync for the range check of all cameras. On CPU the contract is checked with a policy moved to
PyTorch's "meta" device (tensors without storage); on a GPU the whole path runs (`gpu` marker)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from smolvla.policy.testing import make_fake_batch, make_tiny_policy
from smolvla.serve.runner import PolicyRunner

CAMS = ("observation.images.top", "observation.images.wrist")


def test_inputs_are_built_on_the_policys_device_even_with_empty_cameras(monkeypatch) -> None:
    policy = make_tiny_policy(camera_keys=CAMS, state_dim=5, action_dim=4, empty_cameras=2).to("meta")
    resized_on = []
    interpolate = F.interpolate
    monkeypatch.setattr(F, "interpolate", lambda x, **kw: resized_on.append(x.device.type) or interpolate(x, **kw))
    inputs = policy._model_inputs(make_fake_batch(policy.config, batch_size=2, image_hw=(30, 50)))
    assert resized_on == ["meta", "meta"]  # each camera moved first, then resized on the device
    assert {name: t.device.type for name, t in inputs.items()} == dict.fromkeys(inputs, "meta")
    assert inputs["images"].shape == (2, 4, 3, 64, 64) and inputs["image_masks"].shape == (2, 4)


def test_the_range_check_of_all_cameras_syncs_once(monkeypatch) -> None:
    policy = make_tiny_policy(camera_keys=CAMS, state_dim=5, action_dim=4)
    batch = make_fake_batch(policy.config, batch_size=2)
    syncs = []
    to_list = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: syncs.append(tuple(t.shape)) or to_list(t))
    policy._images(batch, 2)
    assert syncs == [(2, 2)]  # one [cameras, (min, max)] transfer, not two float() per camera
    batch[CAMS[1]] = batch[CAMS[1]].clone()
    batch[CAMS[1]][0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"observation.images.wrist must be in \[0, 1\] and finite, got values in"):
        policy._images(batch, 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_serving_on_a_gpu_with_empty_cameras() -> None:
    policy = make_tiny_policy(camera_keys=CAMS, state_dim=5, action_dim=4, empty_cameras=1).to("cuda")
    runner = PolicyRunner(policy)
    assert runner.device.type == "cuda"
    frames = {key: torch.randint(0, 256, (3, 48, 64, 3), dtype=torch.uint8).numpy() for key in CAMS}
    state = torch.randn(3, 5).numpy()
    chunk = runner.predict(frames, state, ["pick up the cube"] * 3)
    assert chunk.shape == (3, policy.config.chunk_size, 4) and torch.isfinite(torch.from_numpy(chunk)).all()
    # The same inputs on the CPU give the same actions (same noise): the device changes nothing but speed.
    noise = torch.randn(3, policy.config.chunk_size, policy.config.model.max_action_dim)
    batch = make_fake_batch(policy.config, batch_size=3)
    on_gpu = policy.predict_action_chunk({k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()}, noise)
    on_cpu = policy.to("cpu").predict_action_chunk(batch, noise)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-3)
