"""Triton runner: the model runs on a Triton Inference Server, everything else (capture, ROI, preprocessing,
post-processing, sinks) here, so a capture box needs no GPU.

    jetseg run --backend triton --backend-option url=grpc://HOST:8001 --backend-option model=NAME ...

Options: ``url`` (``grpc://HOST:PORT``, default ``grpc://127.0.0.1:8001``), ``model`` (default: the bundle's
name, as ``jetseg export --triton`` and ``jetseg serve`` name it), ``version`` (default: the server's
choice), ``timeout_s`` (per request and per connection check, default 5). The server gets the preprocessed
``NCHW float32`` batch and returns the logits; the runner checks at activation that the server has the model
ready with the spec's input and output names.

A request that fails (server gone, timeout) raises a RunnerError that says so; the next ``infer`` opens a new
connection, so a daemon whose source keeps running reconnects as soon as the server is back.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from jetseg.bundle import BundleLike
from jetseg.errors import RunnerError
from jetseg.jetson.runners.base import Runner
from jetseg.optional import require

DEFAULT_URL = "grpc://127.0.0.1:8001"


def grpc_target(url: str) -> str:
    """``grpc://host:port`` (or ``host:port``) -> ``host:port``; anything else is a RunnerError."""
    scheme, sep, rest = url.partition("://")
    target = rest if sep else url
    if (sep and scheme != "grpc") or ":" not in target or not target.rsplit(":", 1)[1].isdigit():
        raise RunnerError("triton backend option url=%r: expected grpc://HOST:PORT, e.g. %s (other options in "
                          "their own --backend-option, e.g. --backend-option model=NAME)" % (url, DEFAULT_URL))
    return target


class TritonRunner(Runner):
    """Sends each batch to a Triton Inference Server over gRPC (``tritonclient[grpc]``).

    Args:
        bundle: the bundle (its spec gives names, shapes and the decoding; its model runs on the server).
        batch_size: the largest batch this runner will be given (the server's model must accept it).

    Options:
        url: ``grpc://HOST:PORT`` of the server.
        model: the model name on the server (default: the bundle's name).
        version: the model version (default: the server's choice).
        timeout_s: seconds per request and per readiness check.
    """

    name = "triton"

    def __init__(self, bundle: BundleLike, batch_size: int = 1, **options: Any) -> None:
        super().__init__(bundle, batch_size)
        opts = self.read_options(options)
        self.url = opts.text("url", DEFAULT_URL)
        self.target = grpc_target(self.url)
        self.model = opts.text("model", self.bundle.name)
        self.version = opts.text("version", "")
        self.timeout_s = opts.number("timeout_s", 5.0, minimum=0.01)
        self.threads = self.read_threads(opts)
        opts.done()
        self._client: Any = None
        self._grpc: Any = None

    def _connect(self) -> Any:
        """A new client (the gRPC channel connects lazily); raises a RunnerError when the server is unreachable."""
        if self._client is not None:
            return self._client
        client = self._grpc.InferenceServerClient(self.target)
        try:
            live = client.is_server_live(client_timeout=self.timeout_s)
        except self._errors() as exc:
            client.close()
            raise self._unreachable(exc) from None
        if not live:
            client.close()
            raise RunnerError("Triton server at %s is not live yet; start it or wait" % self.url)
        self._client = client
        return client

    def _errors(self) -> Any:
        return require("tritonclient.utils", "the triton backend").InferenceServerException

    def _unreachable(self, exc: Any) -> RunnerError:
        return RunnerError("Triton server at %s: %s (timeout %gs); the next frame reconnects"
                           % (self.url, _first_line(exc), self.timeout_s))

    def _activate(self) -> None:
        self._grpc = require("tritonclient.grpc", "the triton backend (pip install 'jetseg[serve]')")
        client = self._connect()
        try:
            ready = client.is_model_ready(self.model, self.version, client_timeout=self.timeout_s)
            names = [m.name for m in client.get_model_repository_index(client_timeout=self.timeout_s).models]
        except self._errors() as exc:
            self._drop()
            raise self._unreachable(exc) from None
        if not ready:
            self._drop()
            raise RunnerError("Triton server at %s has no ready model %r (models: %s); give "
                              "--backend-option model=NAME" % (self.url, self.model, ", ".join(names) or "none"))
        meta = client.get_model_metadata(self.model, self.version, client_timeout=self.timeout_s)
        inputs, outputs = [t.name for t in meta.inputs], [t.name for t in meta.outputs]
        if any(n not in inputs for n in self.input_names()) or self.spec.output.name not in outputs:
            self._drop()
            raise RunnerError("Triton model %r at %s has inputs %s and outputs %s; the bundle's spec expects "
                              "inputs %s and output %r" % (self.model, self.url, inputs, outputs,
                                                           list(self.input_names()), self.spec.output.name))

    def _infer(self, batch: np.ndarray, extra_inputs: Dict[str, np.ndarray]) -> np.ndarray:
        client = self._connect()
        tensors = []
        for name, array in [(self.input_name, batch)] + list(extra_inputs.items()):
            tensors.append(self._grpc.InferInput(name, list(array.shape), "FP32"))
            tensors[-1].set_data_from_numpy(np.ascontiguousarray(array))
        wanted = [self._grpc.InferRequestedOutput(self.spec.output.name)]
        try:
            result = client.infer(self.model, tensors, model_version=self.version, outputs=wanted,
                                  client_timeout=self.timeout_s)
        except self._errors() as exc:
            self._drop()
            raise self._unreachable(exc) from None
        out = result.as_numpy(self.spec.output.name)
        if out is None or out.shape[0] != batch.shape[0]:
            raise RunnerError("Triton model %r returned %s for a batch of %d; expected %s"
                              % (self.model, None if out is None else out.shape, batch.shape[0],
                                 (batch.shape[0],) + tuple(self.spec.output_shape[1:])))
        return out

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def _deactivate(self) -> None:
        self._drop()

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info.update(url=self.url, model=self.model)
        return info


def _first_line(exc: Optional[BaseException]) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
