"""guide.onnx: one denoising step together with RTC's vector-Jacobian product, exact, for the torch-free runtime.

    x_t float32[1, S, A], time float32[1], target float32[1, S, A] (the prefix in model units),
    weights float32[1, S, A], the expert context (smolvla.deploy.manifest.context_names)
      -> velocity float32[1, S, A]   v(x_t, t), as denoise.onnx
         guidance float32[1, S, A]   (d a_hat / d x_t)^T [weights * (target - a_hat)],  a_hat = x_t - t v

which is what `smolvla.policy.rtc.RTCGuide.sample` gets from torch.autograd (the cotangent is a constant).

ONNX has no autograd, and torch.onnx's TorchScript exporter cannot trace `torch.autograd.grad`. So the
forward and backward passes are first traced into one plain graph of aten operations with
`make_fx(torch.func.vjp)`, then that graph is exported like any module:
- attention runs on torch's MATH kernel while tracing (the fused CPU kernel's backward is one opaque op, and
  decomposing it separately from its forward gave wrong gradients);
- the core-aten decompositions turn backward ops (softmax, silu, ... backward) into exportable arithmetic,
  except a few whose decompositions have no ONNX symbolic (clone, _to_copy, full_like ...), kept whole;
- `_softmax` and `_to_copy` are then swapped for their public forms (`softmax`, `Tensor.to`) that the
  exporter knows.
make_fx bakes shapes in, so the graph is traced at batch 1 and the runtime runs it once per guided element.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torch._decomp import core_aten_decompositions
from torch.fx.experimental.proxy_tensor import make_fx
from torch.nn.attention import SDPBackend, sdpa_kernel

from smolvla.deploy.manifest import GUIDANCE, GUIDE_ONNX, GUIDE_STEP_INPUTS, VELOCITY, context_names
from smolvla.export.graphs import OPSET, PrefixGraph, example_inputs
from smolvla.model.expert import ExpertContext
from smolvla.model.smolvla import SmolVLAModel

aten = torch.ops.aten
# Ops whose core decomposition produces ops (empty_permuted, copy_) torch.onnx cannot export; kept whole.
_KEEP_WHOLE = (aten.clone, aten._to_copy, aten.full_like, aten.empty_like, aten.zeros_like, aten.ones_like)


class GuideGraph(nn.Module):
    """(x_t, time, target, weights, *context) -> (velocity, guidance); see the module docstring."""

    def __init__(self, model: SmolVLAModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: Tensor, time: Tensor, target: Tensor, weights: Tensor, *context: Tensor):
        layers = len(self.model.expert.layers)
        ctx = ExpertContext([(context[2 * i], context[2 * i + 1]) for i in range(layers)], *context[2 * layers :])

        def denoised(x: Tensor) -> tuple[Tensor, Tensor]:
            v = self.model.velocity(ctx, x, time)
            return x - time[:, None, None] * v, v

        a_hat, vjp, v = torch.func.vjp(denoised, x_t, has_aux=True)
        (guidance,) = vjp(weights * (target - a_hat))
        return v, guidance


def _to_copy(x: Tensor, dtype: torch.dtype | None = None, **_: object) -> Tensor:
    return x.to(dtype) if dtype is not None else x.clone()


def _softmax(x: Tensor, dim: int, half_to_float: bool) -> Tensor:
    return torch.softmax(x, dim)


_PUBLIC_FORMS = {aten._to_copy.default: _to_copy, aten._softmax.default: _softmax}


def trace_guide(model: SmolVLAModel, args: tuple[Tensor, ...]) -> torch.fx.GraphModule:
    """GuideGraph(model) traced at the shapes of `args` into one graph of exportable aten ops."""
    table = {op: fn for op, fn in core_aten_decompositions().items() if op.overloadpacket not in _KEEP_WHOLE}
    with sdpa_kernel(SDPBackend.MATH):
        graph = make_fx(GuideGraph(model), decomposition_table=table)(*args)
    for node in graph.graph.nodes:
        if node.op == "call_function" and node.target in _PUBLIC_FORMS:
            node.target = _PUBLIC_FORMS[node.target]
    graph.recompile()
    return graph


def guide_inputs(model: SmolVLAModel, num_cameras: int) -> tuple[Tensor, ...]:
    """Batch-1 example inputs of guide.onnx (the context from the prefix graph on blank observations)."""
    cfg = model.config
    with torch.no_grad():
        context = PrefixGraph(model)(**example_inputs(model, num_cameras))
    shape = (1, cfg.chunk_size, cfg.max_action_dim)
    return (torch.zeros(shape), torch.full((1,), 0.5), torch.zeros(shape), torch.ones(shape), *context)


def export_guide(model: SmolVLAModel, num_cameras: int, out_dir: Path) -> Path:
    """Write guide.onnx for a float32 CPU `model`; returns its path."""
    model = model.eval()
    args = guide_inputs(model, num_cameras)
    graph = trace_guide(model, args)
    path = out_dir / GUIDE_ONNX
    names = (*GUIDE_STEP_INPUTS, *context_names(len(model.expert.layers)))
    # The exporter warns of its own deprecation and of constants it folds; neither is actionable here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            args,
            str(path),
            input_names=list(names),
            output_names=[VELOCITY, GUIDANCE],
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return path
