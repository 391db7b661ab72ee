"""Peers measured without jetseg: OpenVINO called directly, as an x86 user would call it.

``openvino-fp32`` runs the reference's ONNX and ``openvino-int8`` each INT8 bundle's ONNX through
``openvino.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": n})`` and a plain call of the compiled
model, with the same thread count as jetseg's rows. jetseg's own rows go through its runner layer (input
checks, spec names, output copy, float parts kept in f32); the difference between the two is jetseg's overhead
and precision choice. On a CPU with bf16, OpenVINO's default runs the float parts of the "fp32" peer in bf16
(``runner.inference_precision`` says which): a faster and slightly less exact baseline, kept as OpenVINO's
out-of-the-box result.

The naive loop (``peer: "naive-loop"``) runs through the torch runner with PyTorch's own default threads
(:func:`pytorch_default_threads`), as a user's first loop would.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from jetseg.bundle import BundleLike
from jetseg.errors import RunnerError
from jetseg.jetson.runners.base import Runner
from jetseg.jetson.runners.openvino import compiled_properties, openvino_core


class DirectOpenVino(Runner):
    """``compile_model`` + ``compiled_model(inputs)[0]``: no request management, OpenVINO's defaults except
    the thread count."""

    name = "openvino"

    def __init__(self, bundle: BundleLike, batch_size: int = 1, threads: int = 0) -> None:
        super().__init__(bundle, batch_size)
        self.threads = self.threads_or_default(int(threads))
        self.compiled: Any = None

    @property
    def on_cpu(self) -> bool:
        return True

    def _activate(self) -> None:
        core = openvino_core()
        config = {"INFERENCE_NUM_THREADS": str(self.threads)}
        try:
            self.compiled = core.compile_model(str(self.bundle.model_path), "CPU", config)
        except Exception as exc:  # OpenVINO's own exception types
            raise RunnerError("OpenVINO cannot load %s: %s" % (self.bundle.model_path,
                                                               str(exc).strip().splitlines()[0])) from None

    def _infer(self, batch: np.ndarray, extra_inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {self.input_name: batch, **extra_inputs}
        if batch.shape[0] == 1:
            return np.asarray(self.compiled(feed)[0])
        return np.concatenate([np.asarray(self.compiled({k: v[i:i + 1] for k, v in feed.items()})[0])
                               for i in range(batch.shape[0])])

    def _deactivate(self) -> None:
        self.compiled = None

    def describe(self) -> Dict[str, Any]:
        info = {"backend": "openvino", "api": "openvino.Core.compile_model, called directly (not through jetseg)",
                "precision": self.bundle.precision, "threads": self.threads}
        # OpenVINO's default on CPUs with bf16 runs the float parts in bf16: the report says so
        info.update(compiled_properties(self.compiled))
        return info


def pytorch_default_threads() -> int:
    """PyTorch's intra-op threads as this process has them before a runner sets them (PyTorch's own default
    unless the caller changed it): what the naive loop, the code a user writes first, runs with."""
    import torch

    return int(torch.get_num_threads())
