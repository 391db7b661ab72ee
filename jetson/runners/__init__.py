"""Runners: one interface (:class:`~jetseg.jetson.runners.base.Runner`), several implementations, chosen by name.

    from jetseg.jetson.runners import open_runner
    with open_runner("onnxrt", bundle, threads=2) as runner:
        logits = runner.infer(spec.preprocess(frame))

Naming rule: in code the object that runs a model is a *runner* (``Runner``, ``RUNNERS``, ``open_runner``,
variables named ``runner``). *Backend* is only the user-facing name of a runner implementation: the CLI's
``--backend NAME`` and ``--backend-option``, daemon.yaml's ``backend:`` section, the ``backend`` key of
reports and :meth:`Runner.describe`, and messages (``unknown backend 'onxrt'``, ``trt backend option ...``).
"""
from __future__ import annotations

from typing import Any, Type

from jetseg.bundle import BundleLike
from jetseg.errors import RunnerError
from jetseg.jetson.runners.base import Runner
from jetseg.registry import Registry

#: Runner implementations by backend name.
RUNNERS: Registry[Type[Runner]] = Registry("backend", RunnerError)
RUNNERS.register("onnxrt", "jetseg.jetson.runners.onnxrt:OnnxRuntimeRunner",
                 "ONNX Runtime (CPU here; CUDA/TensorRT providers with onnxruntime-gpu)")
RUNNERS.register("torch", "jetseg.jetson.runners.torch:TorchRunner", "PyTorch eager FP32 reference")
RUNNERS.register("trt", "jetseg.jetson.trt.runner:TensorRTRunner", "native TensorRT engine (Jetson)")


def open_runner(name: str, bundle: BundleLike, **options: Any) -> Runner:
    """Construct the runner registered as backend ``name`` for ``bundle`` (not yet activated).

    Options (``batch_size`` and the implementation's own) are checked here: an unknown or malformed one raises
    a RunnerError that names it.
    """
    return RUNNERS.get(name)(bundle, **options)
