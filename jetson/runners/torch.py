"""PyTorch runner: the FP32 reference.

Runs, in this order of preference:
- the bundle's TorchScript model (``model.ts``, kept by ``jetseg export MODEL.ts`` and listed in the manifest;
  weights included), or
- an architecture from jetseg's own registry named in the bundle's manifest (``provenance["architecture"] =
  {"name": ..., "kwargs": {...}}``), or a user's factory given on the command line (``--backend-option
  module=pkg.mod:fn``, and ``module_path=DIR`` to import it from a folder), with ``weights.pt`` loaded
  weights-only (``torch.load(..., weights_only=True)``: no pickled code runs).

A bundle never runs code: a factory or ``module_path`` the manifest records (``jetseg export pkg.mod:fn``) is
only compared with what the command line gives, never imported from the manifest.
Runs in eval mode under ``no_grad``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from jetseg.bundle import TORCHSCRIPT_FILE, WEIGHTS_FILE, BundleLike
from jetseg.errors import RunnerError
from jetseg.jetson.runners.base import Runner
from jetseg.models.archs import ARCHITECTURES
from jetseg.optional import require


class TorchRunner(Runner):
    """Runs the bundle's PyTorch model on the CPU.

    Args:
        bundle: the bundle (or its path); it needs ``model.ts``, or ``weights.pt`` and an architecture record.
        batch_size: the largest batch this runner will be given.

    Options:
        module: ``pkg.mod:factory``, the user's model factory for a bundle made by ``jetseg export
            pkg.mod:factory --weights W.pt`` (never taken from the bundle).
        module_path: the folder to import ``module`` from (instead of PYTHONPATH).
        threads: PyTorch intra-op threads while this runner is active (set at activation and again before
            an inference if something else changed them; restored at deactivation); 0 (default) = jetseg's
            default: usable cores - 1, at least 1.
    """

    name = "torch"

    def __init__(self, bundle: BundleLike, batch_size: int = 1, **options: Any) -> None:
        super().__init__(bundle, batch_size)
        opts = self.read_options(options)
        self.threads = self.read_threads(opts)
        module = opts.text("module", None)
        module_path = opts.text("module_path", None)
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
        self.architecture = architecture(self.bundle, module, module_path)

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

    def _infer(self, batch: np.ndarray, extra_inputs: Dict[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        if torch.get_num_threads() != self.threads:  # one setting per process: another runner changed it
            torch.set_num_threads(self.threads)
        # positional in the model's input order (a registration model: moving, fixed)
        arrays = [batch] + [extra_inputs[name] for name in self.extra_input_names]
        with torch.no_grad():
            out = self.model(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])
        if isinstance(out, (tuple, list)):  # a model that also returns the warped image: the field comes first
            out = out[0]
        return out.numpy()

    def _deactivate(self) -> None:
        if self._torch is not None and self._threads_before:
            self._torch.set_num_threads(self._threads_before)
        self.model = self._torch = None

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info.update(architecture=self.architecture["name"], threads=self.threads)
        return info


def architecture(bundle: Any, module: Optional[str] = None, module_path: Optional[str] = None) -> Dict[str, Any]:
    """How to rebuild the bundle's model: a registered architecture (``name``, ``kwargs``) from the manifest, or
    the factory ``module`` the user gave (``factory``, ``module_path``); never code the manifest names.

    Raises:
        RunnerError: the manifest records no architecture, or a factory and the command line gives none (or
            another one).
    """
    record = bundle.manifest.provenance.get("architecture")
    if not isinstance(record, dict) or not (isinstance(record.get("name"), str)
                                            or isinstance(record.get("factory"), str)):
        if module:
            return {"name": module, "factory": module, "module_path": module_path, "kwargs": {}}
        raise RunnerError("bundle %s does not record its architecture (manifest provenance.architecture); "
                          "the torch backend cannot rebuild the model, use --backend onnxrt" % bundle.path)
    kwargs = record.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise RunnerError("bundle %s: provenance.architecture.kwargs is %s; expected an object; re-export the "
                          "bundle" % (bundle.path, type(kwargs).__name__))
    factory = record.get("factory")
    if isinstance(factory, str):
        if not module:
            raise RunnerError("bundle %s was exported from the Python factory %r; a bundle never runs code, so "
                              "give it on the command line: --backend-option module=%s (and module_path=DIR), "
                              "or use --backend onnxrt" % (bundle.path, factory, factory))
        if module != factory:
            raise RunnerError("--backend-option module=%s, but bundle %s was exported from %r; give that factory "
                              "or use --backend onnxrt" % (module, bundle.path, factory))
        return {"name": module, "factory": module, "module_path": module_path, "kwargs": dict(kwargs)}
    if module:
        raise RunnerError("--backend-option module=%s, but bundle %s records the built-in architecture %r; drop "
                          "the option" % (module, bundle.path, record["name"]))
    if record["name"] not in ARCHITECTURES.names():
        raise RunnerError("bundle %s records the architecture %r, which is not one of jetseg's (%s); re-export "
                          "the bundle or use --backend onnxrt" % (bundle.path, record["name"],
                                                                  ", ".join(ARCHITECTURES.names())))
    return {"name": record["name"], "factory": None, "module_path": None, "kwargs": dict(kwargs)}
