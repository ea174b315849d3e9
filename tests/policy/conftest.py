"""Shared fixtures: a tiny Hugging Face SmolVLM backbone directory built locally with transformers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from smolvla.policy.tokenizer import build_byte_tokenizer

# Same architecture as get_config("tiny"): 8 text layers in the file, of which tiny keeps 4.
TINY_HF = {
    "vision_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 64,
        "patch_size": 8,
    },
    "text_config": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 8,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 512,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
    },
    "scale_factor": 2,
}


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SmolVLMForConditionalGeneration saved with save_pretrained, plus a byte-level tokenizer.json."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.SmolVLMForConditionalGeneration(transformers.SmolVLMConfig(**TINY_HF))
    path = tmp_path_factory.mktemp("tiny_smolvlm")
    model.save_pretrained(path)
    (path / "tokenizer.json").write_text(build_byte_tokenizer().to_str())
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # The test machine is shared: one intra-op thread per test process avoids oversubscription.
    torch.set_num_threads(1)
