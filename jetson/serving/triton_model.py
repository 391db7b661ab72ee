"""The model Triton's Python backend runs for ``jetseg serve``: a jetseg runner behind Triton's batching.

The repository's ``1/model.py`` is one line, ``from jetseg.jetson.serving.triton_model import
TritonPythonModel``; config.pbtxt's string parameters name the bundle, the backend and its options (JSON).
Triton's dynamic batcher hands ``execute`` several requests at once; they run as one batch of the runner
(``NCHW float32`` in, logits ``NKHW float32`` out) and the logits are split back per request.

Tensors cross the stub through DLPack, not ``as_numpy()`` / ``Tensor(name, array)``: PyTriton's stub is built
against numpy 1's C ABI, and with numpy 2 those read a wrong item size (empty outputs, garbage inputs).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

import numpy as np

from jetseg.jetson.runners import Runner, open_runner
from jetseg.optional import require


def runner_from_config(config: Dict[str, Any]) -> Runner:
    """The runner named by a model config's parameters (``bundle``, ``backend``, ``backend_options``)."""
    params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
    options = json.loads(params.get("backend_options") or "{}")
    return open_runner(params.get("backend", "onnxrt"), params["bundle"],
                       batch_size=max(1, int(config.get("max_batch_size", 0))), **options)


class TritonPythonModel:
    """Triton's Python-backend interface: ``initialize``, ``execute``, ``finalize``."""

    def initialize(self, args: Dict[str, str]) -> None:
        self.pb = require("triton_python_backend_utils", "Triton's Python backend")
        self.runner = runner_from_config(json.loads(args["model_config"])).activate()

    def execute(self, requests: List[Any]) -> List[Any]:
        runner, pb = self.runner, self.pb
        batches = [np.from_dlpack(pb.get_input_tensor_by_name(r, runner.input_name)) for r in requests]
        try:
            logits = runner.infer(np.concatenate(batches) if len(batches) > 1 else batches[0])
        except Exception as exc:  # every request gets the error; Triton's client raises it
            error = pb.TritonError("%s: %s" % (type(exc).__name__, exc))
            return [pb.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        out, start = [], 0
        for batch in batches:
            part = logits[start:start + batch.shape[0]]
            start += batch.shape[0]
            tensor = pb.Tensor.from_dlpack(runner.spec.output.name, np.ascontiguousarray(part))
            out.append(pb.InferenceResponse(output_tensors=[tensor]))
        return out

    def finalize(self) -> None:
        self.runner.deactivate()
