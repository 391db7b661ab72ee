"""The torch2trt route of ``jetseg build --via torch2trt``: the bundle's PyTorch model (weights.pt, rebuilt by
the torch backend) converted with torch2trt on the device. FP32/FP16 GPU engines only."""
from __future__ import annotations

from typing import TYPE_CHECKING

from jetseg.bundle import Bundle
from jetseg.errors import BundleError, JetsegError

if TYPE_CHECKING:
    from jetseg.jetson.trt.plan import BuildPlan


def build_torch2trt(bundle: Bundle, plan: BuildPlan, workspace_mb: int) -> bytes:
    """The torch2trt route: the bundle's PyTorch model converted module by module (FP32/FP16, GPU only)."""
    from jetseg.optional import require

    preflight(bundle, plan)
    torch = require("torch", "the torch2trt route")
    t2t = require("torch2trt", "the torch2trt route")
    from jetseg.jetson.runners import open_runner

    runner = open_runner("torch", bundle)
    runner.activate()
    model = getattr(runner, "model", None)
    if model is None:
        raise JetsegError("the torch backend does not expose its module; use --via onnx")
    model = model.cuda().eval()
    example = torch.zeros(bundle.spec.input_shape, device="cuda")
    converted = t2t.torch2trt(model, [example], fp16_mode=plan.precision == "fp16",
                              max_workspace_size=int(workspace_mb) << 20,
                              input_names=[bundle.spec.input.name], output_names=[bundle.spec.output.name])
    runner.deactivate()
    return bytes(memoryview(converted.engine.serialize()))


def preflight(bundle: Bundle, plan: BuildPlan) -> None:
    if plan.precision == "int8" or plan.dla_core is not None:
        raise JetsegError("--via torch2trt builds fp32/fp16 GPU engines only; use --via onnx for INT8 and DLA")
    if bundle.weights_path is None:
        raise BundleError("bundle %s has no weights.pt; --via torch2trt needs the PyTorch weights (use --via onnx)"
                          % bundle.path)
