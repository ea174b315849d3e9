"""Training on a mixture: the policy's masks (padded dims out of the loss, absent views out of attention),
weighted sampling, per-dataset normalisation, the data options (task padding, frame cache, augmentation)."""

from __future__ import annotations

import json

import pytest
import torch
import typer

from smolvla.cli.train import build_config
from smolvla.data.augment import augment_item, random_shift
from smolvla.data.cache import DecodedFrames
from smolvla.data.dataset import LeRobotDataset
from smolvla.data.mixture import VIEWS, load_mixture
from smolvla.model.config import get_config
from smolvla.policy.config import PolicyConfig
from smolvla.policy.normalize import NormStats
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.testing import make_tiny_policy
from smolvla.policy.tokenizer import TaskTokenizer, build_byte_tokenizer
from smolvla.train.config import AugmentConfig, DataConfig, ScheduleConfig, TrainConfig, get_train_config
from smolvla.train.data import (
    TokenizingCollate,
    load_metas,
    make_dataloader,
    mixture_policy_inputs,
    open_datasets,
)
from smolvla.train.initialize import build_policy
from smolvla.types import (
    ACTION,
    ACTION_DIM_IS_PAD,
    ACTION_IS_PAD,
    OBS_IMAGES_IS_PAD,
    OBS_LANG_MASK,
    OBS_LANG_TOKENS,
    OBS_STATE,
    TASK,
)

from .mixture_helpers import write_layouts, write_mixture_file


@pytest.fixture(scope="module")
def mix_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    write_layouts(root)
    return write_mixture_file(root)


def _mixture_policy(seed: int = 0) -> SmolVLAPolicy:
    model = get_config("tiny", max_lang_tokens=48)
    cfg = PolicyConfig(model=model, n_action_steps=model.chunk_size, **mixture_policy_inputs(model))
    torch.manual_seed(seed)
    return SmolVLAPolicy(cfg, NormStats({}), TaskTokenizer(build_byte_tokenizer(), 48))


def _mixture_batch(policy: SmolVLAPolicy, bsize: int = 3) -> dict:
    g = torch.Generator().manual_seed(5)
    cfg, size = policy.config, policy.config.image_size
    batch = {v: torch.rand(bsize, 3, size, size, generator=g) for v in VIEWS}
    batch[OBS_STATE] = torch.randn(bsize, 32, generator=g)
    batch[ACTION] = torch.randn(bsize, cfg.chunk_size, 32, generator=g)
    batch[ACTION_IS_PAD] = torch.zeros(bsize, cfg.chunk_size, dtype=torch.bool)
    batch[OBS_IMAGES_IS_PAD] = torch.tensor([[False, False, True], [True, False, True], [False, True, True]])
    batch[ACTION_DIM_IS_PAD] = torch.arange(32)[None] >= torch.tensor([6, 4, 32])[:, None]  # real dims 6, 4, 32
    batch[TASK] = ["pick", "hold the cube", "stack"]
    return batch


def _loss(policy, batch, noise, time):
    return policy.compute_loss(batch, noise=noise, time=time)


def test_loss_ignores_padded_dims_per_sample() -> None:
    policy = _mixture_policy()
    batch = _mixture_batch(policy)
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(3, policy.config.chunk_size, 32, generator=g)
    time = torch.rand(3, generator=g) * 0.9 + 0.05
    loss, per = _loss(policy, batch, noise, time)
    pad = batch[ACTION_DIM_IS_PAD]
    # Reference: the same batch without the per-sample mask (all 32 dims count), padded entries removed by hand.
    _, unmasked = _loss(policy, {k: v for k, v in batch.items() if k != ACTION_DIM_IS_PAD}, noise, time)
    real = (~pad)[:, None, :].expand_as(unmasked)
    torch.testing.assert_close(loss, unmasked[real].mean())
    assert unmasked[~real].abs().sum() > 0 and per[~real].abs().sum() == 0  # padded dims had error: dropped
    assert per[0, :, 6:].abs().sum() == 0 and per[1, :, 4:].abs().sum() == 0 and per[2].abs().min() > 0
    # Their gradient too: a loss on the padded dims alone would move the weights, the masked loss has none of it.
    policy.zero_grad()
    _loss(policy, batch, noise, time)[1][~real].sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in policy.model.parameters())
    with pytest.raises(ValueError, match=r"action_dim_is_pad must be bool\[3, 32\], got torch.bool\[3, 6\]"):
        _loss(policy, dict(batch, **{ACTION_DIM_IS_PAD: pad[:, :6]}), noise, time)


def test_absent_views_are_masked_in_the_model_inputs() -> None:
    policy = _mixture_policy()
    batch = _mixture_batch(policy)
    inputs = policy._model_inputs(batch)
    assert inputs["image_masks"].tolist() == (~batch[OBS_IMAGES_IS_PAD]).tolist()
    g = torch.Generator().manual_seed(7)
    noise, time = torch.randn(3, policy.config.chunk_size, 32, generator=g), torch.full((3,), 0.5)
    loss, _ = _loss(policy, batch, noise, time)
    # Whatever an absent view holds, the loss is the same: its tokens are out of attention.
    changed = dict(batch, **{VIEWS[2]: torch.rand_like(batch[VIEWS[2]])})
    changed[VIEWS[0]] = batch[VIEWS[0]].clone()
    changed[VIEWS[0]][1] = 0.7  # sample 1 lacks image1
    torch.testing.assert_close(_loss(policy, changed, noise, time)[0], loss)
    with pytest.raises(ValueError, match=r"observation.images_is_pad must be bool\[3, 3\]"):
        policy._model_inputs(dict(batch, **{OBS_IMAGES_IS_PAD: batch[OBS_IMAGES_IS_PAD].long()}))


def test_mixture_policy_layout_and_per_dataset_normalisation(mix_file) -> None:
    mixture = load_mixture(mix_file)
    data = DataConfig(mixture=mixture)
    metas = load_metas(data)
    init = get_train_config("tiny_cpu").init
    policy = build_policy(init, metas, seed=0, mixture=mixture)
    cfg = policy.config
    assert (cfg.camera_keys, cfg.state_dim, cfg.action_dim) == (VIEWS, 32, 32)
    assert cfg.norm_modes() == {OBS_STATE: "identity", ACTION: "identity"} and policy.stats.to_flat() == {}
    datasets = open_datasets(metas, cfg, data)
    for ds, meta in zip(datasets, metas, strict=True):
        states = torch.stack([ds[i][OBS_STATE] for i in range(len(ds))])
        dim = meta.features[OBS_STATE]["shape"][0]
        mean = torch.tensor(meta.stats[OBS_STATE]["mean"], dtype=torch.float32)
        std = torch.tensor(meta.stats[OBS_STATE]["std"], dtype=torch.float32)
        raw = torch.stack([LeRobotDataset(meta.root)[i][OBS_STATE] for i in range(len(ds))])
        torch.testing.assert_close(states[:, :dim], (raw - mean) / (std + 1e-8))
        assert states[:, dim:].abs().sum() == 0
    assert datasets[1][0][TASK] == "hold the cube up"  # the relabel table


def test_sampling_follows_the_weights(mix_file) -> None:
    mixture = load_mixture(mix_file)
    data = DataConfig(mixture=mixture, cache_mb=0)
    metas = load_metas(data)
    cfg = PolicyConfig(model=get_config("tiny"), n_action_steps=10, **mixture_policy_inputs(get_config("tiny")))
    sizes = [m.total_frames for m in metas]  # 20 and 16 frames, weights 3 : 1
    loader, sampler = make_dataloader(open_datasets(metas, cfg, data), metas, cfg, data, batch_size=4, seed=3)
    picks = []
    order = iter(sampler)
    for _ in range(600):  # indices only (decoding 2400 items is not needed to count the sources)
        picks += next(order)
    share = sum(i < sizes[0] for i in picks) / len(picks)
    assert abs(share - 0.75) < 0.03, share  # 3/4 despite the datasets' similar sizes
    batch = next(iter(loader))
    assert batch[OBS_IMAGES_IS_PAD].shape == (4, 3) and batch[ACTION_DIM_IS_PAD].shape == (4, 32)
    assert batch[ACTION].shape == (4, cfg.chunk_size, 32)


def test_tasks_are_padded_to_the_batch_longest_with_the_same_loss() -> None:
    policy = make_tiny_policy(camera_keys=("observation.images.top",), seed=1)
    items = [
        {"observation.images.top": torch.rand(3, 64, 64), OBS_STATE: torch.randn(6), ACTION: torch.randn(10, 6),
         ACTION_IS_PAD: torch.zeros(10, dtype=torch.bool), TASK: task}
        for task in ("pick", "put it in the bin")
    ]  # fmt: skip
    longest = TokenizingCollate(policy.tokenizer, "longest")(items)
    budget = TokenizingCollate(policy.tokenizer, "budget")(items)
    assert longest[OBS_LANG_TOKENS].shape == (2, len("put it in the bin\n"))  # byte tokenizer: one per byte
    assert budget[OBS_LANG_TOKENS].shape == (2, 48) and longest[OBS_LANG_MASK].sum() == budget[OBS_LANG_MASK].sum()
    g = torch.Generator().manual_seed(0)
    noise, time = torch.randn(2, 10, 32, generator=g), torch.full((2,), 0.3)
    a, _ = policy.compute_loss(longest, noise=noise, time=time)
    b, _ = policy.compute_loss(budget, noise=noise, time=time)
    c, _ = policy.compute_loss({k: v for k, v in budget.items() if k not in (OBS_LANG_TOKENS, OBS_LANG_MASK)},
                               noise=noise, time=time)  # fmt: skip
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(b, c)


def test_decoded_frames_cache_is_exact_and_bounded(tiny_dataset) -> None:
    plain = LeRobotDataset(tiny_dataset, delta_timestamps={ACTION: [0.0, 0.1]})
    cached = DecodedFrames(
        LeRobotDataset(tiny_dataset, delta_timestamps={ACTION: [0.0, 0.1]}, return_uint8=True), 10 * 2**20
    )
    for i in (0, 5, 0, 5):
        want, got = plain[i], cached[i]
        assert want.keys() == got.keys()
        for k, v in want.items():
            assert torch.equal(got[k], v) if isinstance(v, torch.Tensor) else got[k] == v
    assert len(cached._items) == 2
    item_bytes = cached.used_bytes // 2
    small = DecodedFrames(cached.base, item_bytes * 3)
    for i in range(6):
        small[i]
    assert len(small._items) == 3 and small.used_bytes <= item_bytes * 3  # the budget holds
    with pytest.raises(ValueError, match="return_uint8=True"):
        DecodedFrames(plain, 1)


def test_augmentation_options() -> None:
    torch.manual_seed(0)
    img = torch.rand(3, 16, 16)
    shifted = random_shift(img, 2)
    assert shifted.shape == img.shape and not torch.equal(shifted, img)
    # The content moves: some 14x14 window of the shifted image equals one of the original.
    assert any(
        torch.equal(shifted[:, max(dy, 0) : 16 + min(dy, 0), max(dx, 0) : 16 + min(dx, 0)],
                    img[:, max(-dy, 0) : 16 + min(-dy, 0), max(-dx, 0) : 16 + min(-dx, 0)])
        for dy in range(-2, 3) for dx in range(-2, 3)
    )  # fmt: skip
    item = {"observation.images.top": img, "observation.images.image3": torch.zeros(3, 16, 16), OBS_STATE: img[0, 0]}
    out = augment_item(item, shift=2, brightness=0.3, contrast=0.3, saturation=0.3)
    assert out["observation.images.image3"].abs().sum() == 0  # an absent view stays blank
    assert 0 <= out["observation.images.top"].min() and out["observation.images.top"].max() <= 1
    assert out[OBS_STATE] is item[OBS_STATE]
    assert torch.equal(augment_item(item)["observation.images.top"], img)  # all off: unchanged
    assert not DataConfig().augment.enabled
    with pytest.raises(ValueError, match=r"AugmentConfig.brightness must be in \[0, 1\), got 1.5"):
        AugmentConfig(brightness=1.5)


def test_cli_data_options(mix_file) -> None:
    cfg = build_config(
        "tiny_cpu", [], mixture=str(mix_file), data_options={"cache_mb": 0, "pad_tasks": "budget"},
        augment={"shift": 4, "brightness": 0.2, "contrast": None, "saturation": None},
    )  # fmt: skip
    assert cfg.data.mixture == load_mixture(mix_file) and cfg.data.datasets == ()
    assert (cfg.data.cache_mb, cfg.data.pad_tasks) == (0, "budget")
    assert cfg.data.augment == AugmentConfig(shift=4, brightness=0.2)
    assert cfg.data.weights == (3.0, 1.0)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # train_config.json keeps the mixture
    with pytest.raises(typer.BadParameter, match="--dataset DIR .* or as --mixture FILE, one of them"):
        build_config("tiny_cpu", ["/a"], mixture=str(mix_file))
    with pytest.raises(typer.BadParameter, match="one of them"):
        build_config("tiny_cpu", [])
    with pytest.raises(ValueError, match=r"this recipe fine-tunes trained weights, but init is 'scratch'"):
        build_config("finetune", ["/a"], freeze="full")  # finetune needs --init even when nothing is frozen


def _mixture_run(mix_file, out, steps: int, resume: bool = False) -> TrainConfig:
    data = DataConfig(mixture=load_mixture(mix_file), augment=AugmentConfig(shift=2, brightness=0.2))
    return get_train_config(
        "tiny_cpu", data=data, steps=steps, batch_size=4, save_every=2, log_every=1, output_dir=str(out),
        resume=resume, plot_loss=False, schedule=ScheduleConfig(warmup_steps=1, decay_steps=4),
    )  # fmt: skip


def test_a_mixture_run_with_augmentation_resumes_bit_exactly(mix_file, tmp_path) -> None:
    from safetensors.torch import load_file

    from smolvla.train.loop import main

    main(_mixture_run(mix_file, tmp_path / "ref", 4))
    main(_mixture_run(mix_file, tmp_path / "cut", 2))
    main(_mixture_run(mix_file, tmp_path / "cut", 4, resume=True))
    curves = [(tmp_path / r / "metrics.jsonl").read_text().splitlines() for r in ("ref", "cut")]
    losses = [[json.loads(x)["loss"] for x in c] for c in curves]
    assert len(losses[0]) == 4 and losses[0] == losses[1]  # exact: same batches, augmentations, noise
    a, b = (
        load_file(str(tmp_path / r / "checkpoints/00000004/pretrained_model/model.safetensors")) for r in ("ref", "cut")
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
