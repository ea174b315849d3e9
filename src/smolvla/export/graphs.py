"""The two exported graphs as modules over SmolVLAModel, and their ONNX export.

    PrefixGraph:  images float32[B, N, 3, S, S] in [-1, 1], image_masks bool[B, N], lang_tokens int64[B, L],
                  lang_masks bool[B, L], state float32[B, Ds] (normalised, padded)
                  -> the flattened ExpertContext (smolvla.deploy.manifest.context_names)
    DenoiseGraph: x_t float32[B, S, A], time float32[B], the context -> velocity float32[B, S, A]

Both call the model's own `prefill` / `velocity`, so the exported maths is the torch policy's; the batch
dimension is dynamic, everything else fixed by the config (language is always padded to L).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from smolvla.deploy.manifest import DENOISE_STEP_INPUTS, PREFIX_INPUTS, VELOCITY, context_names
from smolvla.model.expert import ExpertContext
from smolvla.model.smolvla import SmolVLAModel

# onnx opset of the export: 17 has LayerNormalization; 18 is what recent onnxruntime optimises best.
OPSET = 18


class PrefixGraph(nn.Module):
    def __init__(self, model: SmolVLAModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, images: Tensor, image_masks: Tensor, lang_tokens: Tensor, lang_masks: Tensor, state: Tensor
    ) -> tuple[Tensor, ...]:
        ctx = self.model.prefill(images, image_masks, lang_tokens, lang_masks, state)
        flat = [t.float() for kv in ctx.kv for t in kv]
        tail = (ctx.self_cos, ctx.self_sin, ctx.cross_cos, ctx.cross_sin, ctx.self_mask, ctx.cross_mask)
        return (*flat, *(t.float() for t in tail))


class DenoiseGraph(nn.Module):
    def __init__(self, model: SmolVLAModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: Tensor, time: Tensor, *context: Tensor) -> Tensor:
        layers = len(self.model.expert.layers)
        kv = [(context[2 * i], context[2 * i + 1]) for i in range(layers)]
        ctx = ExpertContext(kv, *context[2 * layers :])
        return self.model.velocity(ctx, x_t, time)


def example_inputs(model: SmolVLAModel, num_cameras: int, batch: int = 1) -> dict[str, Tensor]:
    """Prefix-graph inputs of the right shapes (all cameras and tokens valid) for tracing."""
    cfg = model.config
    side, length = cfg.vision.image_size, cfg.max_lang_tokens
    return {
        "images": torch.zeros(batch, num_cameras, 3, side, side),
        "image_masks": torch.ones(batch, num_cameras, dtype=torch.bool),
        "lang_tokens": torch.zeros(batch, length, dtype=torch.int64),
        "lang_masks": torch.ones(batch, length, dtype=torch.bool),
        "state": torch.zeros(batch, cfg.max_state_dim),
    }


def export_graphs(model: SmolVLAModel, num_cameras: int, out_dir: Path) -> tuple[Path, Path]:
    """Write prefix.onnx and denoise.onnx for a float32 CPU `model`; returns their paths."""
    from smolvla.deploy.manifest import DENOISE_ONNX, PREFIX_ONNX

    model = model.eval()
    names = context_names(len(model.expert.layers))
    inputs = example_inputs(model, num_cameras)
    batch_axis = {0: "batch"}
    prefix_path, denoise_path = out_dir / PREFIX_ONNX, out_dir / DENOISE_ONNX
    with torch.no_grad():
        context = PrefixGraph(model)(**inputs)
        _export(
            PrefixGraph(model),
            tuple(inputs.values()),
            prefix_path,
            PREFIX_INPUTS,
            names,
            {n: batch_axis for n in (*PREFIX_INPUTS, *names)},
        )
        cfg = model.config
        x_t = torch.zeros(1, cfg.chunk_size, cfg.max_action_dim)
        time = torch.ones(1)
        step_inputs = (*DENOISE_STEP_INPUTS, *names)
        _export(
            DenoiseGraph(model),
            (x_t, time, *context),
            denoise_path,
            step_inputs,
            (VELOCITY,),
            {n: batch_axis for n in (*step_inputs, VELOCITY)},
        )
    return prefix_path, denoise_path


def _export(
    module: nn.Module,
    args: tuple[Tensor, ...],
    path: Path,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    # The TorchScript-based exporter: the graphs are static apart from the batch, which it handles directly
    # (the dynamo exporter needs onnxscript and spends minutes on the full-size model). It warns that it fixes
    # the model's Python shape checks (intended) and of its own deprecation; neither is actionable here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
