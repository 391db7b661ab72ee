"""PyTorch runner: the FP32 reference.

Runs, in this order of preference:
- the bundle's TorchScript model (``model.ts``, kept by ``jetseg export MODEL.ts``; weights included), or
- the architecture recorded in the bundle's manifest (``provenance["architecture"] = {"name": ...,
  "kwargs": {...}}``) from the architecture registry (or ``{"factory": "pkg.mod:fn", "module_path": DIR}``
  for a bundle made by ``jetseg export pkg.mod:fn --weights W.pt``) with ``weights.pt`` loaded weights-only
  (``torch.load(..., weights_only=True)``: no pickled code runs).
Runs in eval mode under ``no_grad``.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from jetseg.bundle import TORCHSCRIPT_FILE, WEIGHTS_FILE, BundleLike
from jetseg.errors import RunnerError
from jetseg.jetson.runners.base import Runner
from jetseg.optional import require


class TorchRunner(Runner):
    """Runs the bundle's PyTorch model on the CPU.

    Args:
        bundle: the bundle (or its path); it needs ``model.ts``, or ``weights.pt`` and an architecture record.
        batch_size: the largest batch this runner will be given.

    Options:
        threads: PyTorch intra-op threads while this runner is active (set at activation and again before
            an inference if something else changed them; restored at deactivation); 0 (default) = jetseg's
            default: usable cores - 1, at least 1.
    """

    name = "torch"

    def __init__(self, bundle: BundleLike, batch_size: int = 1, **options: Any) -> None:
        super().__init__(bundle, batch_size)
        opts = self.read_options(options)
        self.threads = self.read_threads(opts)
        opts.done()
        self.model: Any = None
        self._torch: Any = None
        self._threads_before = 0
        self.architecture: Dict[str, Any] = {"name": TORCHSCRIPT_FILE, "factory": None, "kwargs": {}}
        if self.bundle.torchscript_path is not None:
            return
        if self.bundle.weights_path is None:
            raise RunnerError("bundle %s has no %s; the torch backend needs the PyTorch weights (bundles from "
                              "'jetseg train' have them), or use --backend onnxrt"
                              % (self.bundle.path, WEIGHTS_FILE))
        record = self.bundle.manifest.provenance.get("architecture")
        if not isinstance(record, dict) or not (isinstance(record.get("name"), str)
                                                or isinstance(record.get("factory"), str)):
            raise RunnerError("bundle %s does not record its architecture (manifest provenance.architecture); "
                              "the torch backend cannot rebuild the model, use --backend onnxrt"
                              % self.bundle.path)
        self.architecture = {"name": record.get("name") or record["factory"], "factory": record.get("factory"),
                             "module_path": record.get("module_path"), "kwargs": dict(record.get("kwargs") or {})}

    def _activate(self) -> None:
        torch = require("torch", "the torch backend")
        from jetseg.errors import JetsegError
        from jetseg.models.archs import build_model
        from jetseg.models.export import load_factory, load_torchscript, load_weights

        try:
            if self.bundle.torchscript_path is not None:  # kept by 'jetseg export MODEL.ts'
                model = load_torchscript(self.bundle.torchscript_path)
            elif self.architecture["factory"]:  # exported by 'jetseg export pkg.mod:factory --weights W.pt'
                model = load_factory(self.architecture["factory"], self.architecture["kwargs"],
                                     self.architecture.get("module_path"))
                load_weights(model, self.bundle.weights_path)
            else:
                model = build_model(self.architecture["name"], **self.architecture["kwargs"])
                load_weights(model, self.bundle.weights_path)
        except JetsegError as exc:
            raise RunnerError("cannot rebuild the model of %s: %s" % (self.bundle.path, exc)) from None
        except TypeError as exc:  # kwargs the architecture does not take
            raise RunnerError("cannot rebuild %s from %s: %s" % (self.architecture["name"], self.bundle.path,
                                                                 exc)) from None
        self.model = model.eval()
        self._torch = torch
        self._threads_before = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    @property
    def on_cpu(self) -> bool:
        return True

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        if torch.get_num_threads() != self.threads:  # one setting per process: another runner changed it
            torch.set_num_threads(self.threads)
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(batch)))
        return out.numpy()

    def _deactivate(self) -> None:
        if self._torch is not None and self._threads_before:
            self._torch.set_num_threads(self._threads_before)
        self.model = self._torch = None

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info.update(architecture=self.architecture["name"], threads=self.threads)
        return info
