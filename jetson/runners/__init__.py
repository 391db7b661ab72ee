"""Runners: one interface (:class:`~jetseg.jetson.runners.base.Runner`), several backends, chosen by name.

    from jetseg.jetson.runners import open_runner
    with open_runner("onnxrt", bundle) as runner:
        logits = runner.infer(spec.preprocess(frame))
"""
from __future__ import annotations

from typing import Any

from jetseg.registry import Registry

RUNNERS = Registry("backend")
RUNNERS.register("onnxrt", "jetseg.jetson.runners.onnxrt:OnnxRuntimeRunner",
                 "ONNX Runtime (CPU here; CUDA/TensorRT providers with onnxruntime-gpu)")
RUNNERS.register("torch", "jetseg.jetson.runners.torch:TorchRunner", "PyTorch eager FP32 reference")
RUNNERS.register("trt", "jetseg.jetson.trt.runner:TensorRTRunner", "native TensorRT engine (Jetson)")


def open_runner(name: str, bundle: Any, **options: Any) -> Any:
    """Construct the runner registered as ``name`` for ``bundle`` (not yet activated)."""
    return RUNNERS.get(name)(bundle, **options)
