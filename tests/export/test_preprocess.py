"""The runtime's numpy transforms against their torch twins, literal cases and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smolvla.deploy.onnx_policy import euler_times
from smolvla.deploy.preprocess import frames_to_unit, pad_last_dim, resize_with_pad
from smolvla.model.flow import euler_times as torch_euler_times
from smolvla.policy.tokenizer import TaskTokenizer, build_byte_tokenizer
from smolvla.policy.transforms import frames_to_images
from smolvla.policy.transforms import resize_with_pad as torch_resize_with_pad
from smolvla.task_tokens import ArrayTaskTokenizer


@pytest.mark.parametrize("hw", [(48, 64), (64, 48), (480, 640), (64, 64), (30, 31), (200, 100)])
@pytest.mark.parametrize("size", [64, 37])
def test_resize_with_pad_matches_torch(hw: tuple[int, int], size: int) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, *hw, 3), dtype=np.uint8)
    got = resize_with_pad(frames_to_unit(frames), size)
    want = torch_resize_with_pad(frames_to_images(frames), size).numpy()
    assert got.shape == want.shape == (2, 3, size, size)
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)


def test_resize_with_pad_literal() -> None:
    # 1x2 -> side 4: scale 0.5, new size 2x4, padding on top; a horizontal ramp stays a ramp.
    img = np.array([[[[0.0, 1.0]]]], dtype=np.float32)
    out = resize_with_pad(img, 4)[0, 0]
    np.testing.assert_allclose(out[:2], 0.0)
    np.testing.assert_allclose(out[2], [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(out[3], [0.0, 0.25, 0.75, 1.0])


def test_frames_and_padding_errors() -> None:
    with pytest.raises(ValueError, match=r"uint8\[B, H, W, 3\], got float32"):
        frames_to_unit(np.zeros((1, 4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"float\[B, C, H, W\], got shape \(4, 4\)"):
        resize_with_pad(np.zeros((4, 4), dtype=np.float32), 8)
    np.testing.assert_array_equal(pad_last_dim(np.ones((1, 2), dtype=np.float32), 4), [[1, 1, 0, 0]])


def test_array_tokenizer_matches_the_torch_one(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(build_byte_tokenizer().to_str())
    tasks = ["pick up the cube", "open\n", ""]
    ids, mask = ArrayTaskTokenizer.from_file(path, 24)(tasks)
    want_ids, want_mask = TaskTokenizer(build_byte_tokenizer(), 24)(tasks)
    np.testing.assert_array_equal(ids, want_ids.numpy())
    np.testing.assert_array_equal(mask, want_mask.numpy())
    with pytest.raises(ValueError, match="task 0 is 17 tokens, more than the budget of 8"):
        ArrayTaskTokenizer.from_file(path, 8)(["pick up the cube"])
    cut, cut_mask = ArrayTaskTokenizer.from_file(path, 8, truncate=True)(["pick up the cube"])
    assert cut_mask.all() and cut.shape == (1, 8)
    with pytest.raises(FileNotFoundError, match="tokenizer file not found"):
        ArrayTaskTokenizer.from_file(tmp_path / "missing.json", 8)


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_euler_times_match_the_model(steps: int) -> None:
    times = euler_times(steps)
    assert times == torch_euler_times(steps) and times[0] == 1.0
    assert all(float(np.float32(t)) == t for t in times)  # float32 values, as the graphs take them
