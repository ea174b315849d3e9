"""The auxiliary object-position loss: it learns, trains with the policy, checkpoints and resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from smolvla.data.meta import load_meta
from smolvla.data.mixture import MixtureConfig, MixtureSource
from smolvla.policy.testing import make_fake_batch, make_tiny_policy
from smolvla.train.aux_state import AUX_HEAD_FILE, EnvStateHead, env_state_stats
from smolvla.train.config import DataConfig, DatasetSpec, ScheduleConfig, TrainConfig, get_train_config
from smolvla.train.loop import main
from smolvla.train.metrics import read_metrics
from smolvla.types import OBS_ENV_STATE

from .train_helpers import FEATURES, write_tiny_dataset

ENV_FEATURES = {**FEATURES, OBS_ENV_STATE: {"dtype": "float32", "shape": [4]}}


@pytest.fixture(scope="module")
def env_dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("env") / "ds", features=ENV_FEATURES)


def _cfg(dataset: Path, out: Path, **kw) -> TrainConfig:
    schedule = ScheduleConfig(warmup_steps=1, decay_steps=4, decay_lr=1e-5)
    base = {"steps": 4, "batch_size": 4, "log_every": 1, "save_every": 2, "plot_loss": False, "schedule": schedule}
    base.update({"aux_env_state": 0.5, "num_threads": 1, **kw})
    return get_train_config(
        "tiny_cpu", output_dir=str(out), data=DataConfig(datasets=(DatasetSpec(str(dataset)),)), **base
    )


def _records(run: Path) -> list[dict]:
    return [r for r in read_metrics(run / "metrics.jsonl") if "loss" in r]


def test_aux_run_logs_its_loss_keeps_the_head_out_of_the_policy_and_resumes_bit_exactly(env_dataset, tmp_path):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    main(_cfg(env_dataset, ref))
    main(_cfg(env_dataset, cut, steps=2))
    main(_cfg(env_dataset, cut, steps=4, resume=True))
    a, b = _records(ref), _records(cut)
    assert [r["step"] for r in a] == [1, 2, 3, 4] and all(r["aux_loss"] > 0 for r in a)
    strip = [{k: v for k, v in r.items() if k != "samples_per_s"} for r in a]
    assert strip == [{k: v for k, v in r.items() if k != "samples_per_s"} for r in b]  # exact, aux included
    for name in (f"training_state/{AUX_HEAD_FILE}", "pretrained_model/model.safetensors"):
        ha, hb = (
            load_file(str(ref / "checkpoints/00000004" / name)),
            load_file(str(cut / "checkpoints/00000004" / name)),
        )
        assert ha.keys() == hb.keys() and all(torch.equal(ha[k], hb[k]) for k in ha), name
    policy_dir = ref / "checkpoints/00000004/pretrained_model"
    assert not any("aux" in p.name for p in policy_dir.iterdir())
    assert not any(k.startswith("net.") for k in load_file(str(policy_dir / "model.safetensors")))


def test_aux_changes_the_training_and_its_weight_scales_its_share(env_dataset, tmp_path):
    with_aux = _records(main(_cfg(env_dataset, tmp_path / "a", steps=1)).metrics_path.parent)[0]
    without = _records(main(_cfg(env_dataset, tmp_path / "b", steps=1, aux_env_state=0.0)).metrics_path.parent)[0]
    assert "aux_loss" not in without
    # Step 1 is computed before any update from the same seed: the flow loss is the same in both runs.
    assert with_aux["loss"] == pytest.approx(without["loss"] + 0.5 * with_aux["aux_loss"], rel=1e-5)


def test_aux_needs_the_environment_state_in_every_dataset(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match=r"needs 'observation\.environment_state' in every dataset; .*tiny has none"):
        main(_cfg(tiny_dataset, tmp_path))


def test_resuming_with_aux_needs_the_saved_head(env_dataset, tmp_path):
    main(_cfg(env_dataset, tmp_path, steps=2, aux_env_state=0.0))
    with pytest.raises(FileNotFoundError, match=r"aux_env_state_head\.safetensors is missing: .*aux_env_state > 0"):
        main(_cfg(env_dataset, tmp_path, steps=4, resume=True))


def test_config_refuses_a_negative_weight_and_a_mixture():
    with pytest.raises(ValueError, match=r"aux_env_state must be >= 0 \(0 = off\), got -1"):
        TrainConfig(aux_env_state=-1.0)
    mixture = MixtureConfig(datasets=(MixtureSource(root="x"),))
    with pytest.raises(ValueError, match=r"needs plain datasets: a mixture does not carry"):
        TrainConfig(aux_env_state=1.0, data=DataConfig(mixture=mixture))


def test_env_state_stats_pool_datasets_and_refuse_other_widths(env_dataset, tmp_path):
    meta = load_meta(env_dataset)
    mean, std = env_state_stats([meta, meta])
    one = meta.stats[OBS_ENV_STATE]
    assert torch.allclose(mean, torch.tensor(one["mean"], dtype=torch.float32))
    assert torch.allclose(std, torch.tensor(one["std"], dtype=torch.float32), rtol=1e-4)
    wide = write_tiny_dataset(
        tmp_path / "wide", features={**FEATURES, OBS_ENV_STATE: {"dtype": "float32", "shape": [5]}}
    )
    with pytest.raises(ValueError, match=r"widths differ: \[4\] before, \[5\] in .*wide"):
        env_state_stats([meta, load_meta(wide)])


def _square_batch(policy, n: int, seed: int) -> dict:
    """Images with a white square at a random place; the environment state is that place (x, y)."""
    gen = torch.Generator().manual_seed(seed)
    batch = make_fake_batch(policy.config, n, seed, image_hw=(64, 64), with_actions=True)
    xy = torch.randint(0, 48, (n, 2), generator=gen)
    img = torch.zeros(n, 3, 64, 64)
    for i, (x, y) in enumerate(xy.tolist()):
        img[i, :, y : y + 16, x : x + 16] = 1.0
    batch["observation.images.top"] = img
    batch[OBS_ENV_STATE] = xy.float()
    return batch


def test_head_learns_where_the_object_is_and_its_gradient_reaches_the_vision_tower():
    torch.manual_seed(0)
    policy = make_tiny_policy().train()
    head = EnvStateHead(policy.model, 1, torch.full((2,), 24.0), torch.full((2,), 14.0)).train()
    params = [*policy.model.vision.parameters(), *policy.model.connector.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    test = _square_batch(policy, 32, seed=99)

    def test_loss() -> float:
        policy.compute_loss(test)
        return head.loss(test).item()

    before = test_loss()
    for step in range(120):
        batch = _square_batch(policy, 16, seed=step)
        policy.compute_loss(batch)
        loss = head.loss(batch)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            assert policy.model.vision.embeddings.patch_embedding.weight.grad.abs().sum() > 0
        opt.step()
    after = test_loss()
    assert after < 0.2 * before, (before, after)  # held-out positions: it localises, it does not memorise


def test_head_loss_errors_name_what_was_expected():
    policy = make_tiny_policy().train()
    head = EnvStateHead(policy.model, 1, torch.zeros(3), torch.ones(3)).train()
    batch = make_fake_batch(policy.config, 2, with_actions=True)
    with pytest.raises(RuntimeError, match=r"no training forward pass of the VLM since the last call"):
        head.loss(batch)
    policy.compute_loss(batch)
    with pytest.raises(ValueError, match=r"needs 'observation\.environment_state' in every batch; batch keys: \["):
        head.loss(batch)
    policy.compute_loss(batch)
    with pytest.raises(ValueError, match=r"must be float\[2, 3\] \(dataset width\), got \(2, 4\)"):
        head.loss({**batch, OBS_ENV_STATE: torch.zeros(2, 4)})
    with torch.no_grad():  # inference passes (evaluation during training) are not captured
        policy.compute_loss(batch)
    with pytest.raises(RuntimeError, match=r"no training forward pass"):
        head.loss({**batch, OBS_ENV_STATE: torch.zeros(2, 3)})
    head.remove()
