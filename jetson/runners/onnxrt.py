"""ONNX Runtime runner: the CPU provider here, CUDA or TensorRT providers with onnxruntime-gpu on a Jetson.

Options: ``provider`` (cpu, cuda, tensorrt), ``threads`` (0: jetseg's default, see the class) and
``provider_options`` (a mapping, from daemon.yaml or Python keywords), passed through to the provider,
e.g. ``trt_int8_enable``, ``trt_fp16_enable``, ``trt_engine_cache_enable``, ``trt_engine_cache_path`` for
the TensorRT execution provider.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from jetseg.bundle import BundleLike, check_shapes
from jetseg.errors import RunnerError
from jetseg.jetson.runners.base import Runner
from jetseg.onnxgraph import has_qdq
from jetseg.optional import available, require
from jetseg.tasks import extra_io

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class OnnxRuntimeRunner(Runner):
    """Runs the bundle's ``model.onnx`` with ONNX Runtime.

    Args:
        bundle: the bundle (or its path).
        batch_size: the largest batch this runner will be given.

    Options:
        provider: ``cpu``, ``cuda`` or ``tensorrt`` (ONNX Runtime falls back to the CPU for unsupported nodes).
        threads: intra-op threads; 0 (default) = jetseg's default: usable cores - 1 (at least 1) with the CPU
            provider, ONNX Runtime's own choice with a GPU provider.
        provider_options: options for the chosen provider.
    """

    name = "onnxrt"

    def __init__(self, bundle: BundleLike, batch_size: int = 1, **options: Any) -> None:
        super().__init__(bundle, batch_size)
        opts = self.read_options(options)
        self.provider = opts.choice("provider", sorted(PROVIDERS), "cpu")
        self.threads = self.read_threads(opts)
        self.provider_options = opts.mapping("provider_options")
        opts.done()
        self.session: Any = None
        self._output_name = self.spec.output.name

    @property
    def on_cpu(self) -> bool:
        return self.provider == "cpu"

    def _activate(self) -> None:
        ort = require("onnxruntime", "the onnxrt backend")
        wanted = PROVIDERS[self.provider]
        if wanted not in ort.get_available_providers():
            raise RunnerError("ONNX Runtime here has no %s (available: %s); install onnxruntime-gpu on the "
                              "device or use provider=cpu" % (wanted, ", ".join(ort.get_available_providers())))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        opts.log_severity_level = 3
        providers: List[Any] = [(wanted, self.provider_options)] if wanted != PROVIDERS["cpu"] else []
        providers.append("CPUExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.bundle.model_path), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for invalid models
            raise RunnerError("ONNX Runtime cannot load %s: %s" % (self.bundle.model_path,
                                                                    str(exc).splitlines()[0])) from None
        # The bundle checked names and shapes at load when onnx is installed; this is the check without it.
        check_shapes(str(self.bundle.path), _shapes(self.session.get_inputs()), _shapes(self.session.get_outputs()),
                     self.input_name, self.spec.input_shape, self._output_name, self.spec.output_shape,
                     extra_io(self.spec.registration, self.spec.input_shape))

    def _infer(self, batch: np.ndarray, extra_inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {self.input_name: batch, **extra_inputs}
        if batch.shape[0] == 1 or self._static_batch() != 1:
            return self.session.run([self._output_name], feed)[0]
        # A model exported with a fixed batch of 1: run the frames one by one.
        return np.concatenate([self.session.run([self._output_name], {k: v[i:i + 1] for k, v in feed.items()})[0]
                               for i in range(batch.shape[0])])

    def _static_batch(self) -> Any:
        return self.session.get_inputs()[0].shape[0]

    def _deactivate(self) -> None:
        self.session = None

    def ran_in(self) -> str:
        """What the CPU provider runs this model in: ``int8`` for a graph with Q/DQ nodes (fused into
        QLinearConv & co), else ``f32`` (it has no reduced float precision); read from the model file, or the
        bundle's manifest without onnx."""
        qdq = _graph_has_qdq(self.bundle.model_path)
        if qdq is None:
            qdq = self.bundle.precision == "int8"
        return "int8" if qdq else "f32"

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info.update(provider=self.provider, threads=self.threads or "default")
        if self.on_cpu:
            info["ran_in"] = self.ran_in()
        if self.session is not None:
            info["providers"] = self.session.get_providers()
        return info


def _graph_has_qdq(path: Any) -> Optional[bool]:
    """True/False when onnx can read the model file; None without onnx."""
    if not available("onnx"):
        return None
    import onnx

    return has_qdq(onnx.load(str(path), load_external_data=False))


def _shapes(args: Any) -> Dict[str, Any]:
    """ONNX Runtime's ``NodeArg`` shapes as lists with None for dynamic dimensions (or None if unknown)."""
    return {a.name: [d if isinstance(d, int) else None for d in a.shape] if isinstance(a.shape, list) else None
            for a in args}
