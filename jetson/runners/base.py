"""The runner lifecycle, shared by every backend (a template method, as in Polygraphy).

The base class owns ``activate`` / ``infer`` / ``deactivate`` and the context-manager protocol, and checks
every input against the spec (name, shape, dtype) with an error that says what it received and what it
expected. A backend overrides only the small hooks ``_activate``, ``_infer`` and ``_deactivate``, and
imports its heavy dependency inside ``_activate``, so runners can be constructed without it.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from jetseg.bundle import Bundle
from jetseg.errors import RunnerError


class Runner:
    """Runs one segmentation model: ``(N, C, H, W) float32`` in, ``(N, K, H, W) float32`` logits out.

    Args:
        bundle: a :class:`~jetseg.bundle.Bundle` or its path.
        batch_size: the largest N this runner will be given (models are exported with a fixed batch of 1
            unless they say otherwise; backends that support it run larger batches).
    """

    name = "base"

    def __init__(self, bundle: Any, batch_size: int = 1, **options: Any) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
        self.spec = self.bundle.spec
        if not isinstance(batch_size, int) or batch_size < 1:
            raise RunnerError("batch_size must be a positive integer, got %r" % (batch_size,))
        self.batch_size = batch_size
        self.options = options
        self.is_active = False
        self.last_inference_ms = 0.0

    # ------------------------------------------------------------------ lifecycle
    def activate(self) -> Runner:
        if not self.is_active:
            self._activate()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.is_active = False
            self._deactivate()

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch and return its logits."""
        if not self.is_active:
            raise RunnerError("runner %r is not active; use it as a context manager or call activate()"
                              % self.name)
        self.check_input(batch)
        start = time.perf_counter()
        out = self._infer(batch)
        self.last_inference_ms = (time.perf_counter() - start) * 1e3
        return out

    # ------------------------------------------------------------------ checks
    @property
    def input_name(self) -> str:
        return self.spec.input.name

    def expected_shape(self, n: int = 1) -> Tuple[int, ...]:
        return (n,) + tuple(self.spec.input_shape[1:])

    def check_input(self, batch: Any) -> None:
        if not isinstance(batch, np.ndarray):
            raise RunnerError("input %r: received %s; expected a numpy array of shape %s float32"
                              % (self.input_name, type(batch).__name__, self.expected_shape()))
        if batch.dtype != np.float32:
            raise RunnerError("input %r: received dtype %s; expected float32" % (self.input_name, batch.dtype))
        n = batch.shape[0] if batch.ndim == 4 else 1
        if batch.ndim != 4 or batch.shape[1:] != self.expected_shape()[1:] or not 1 <= n <= self.batch_size:
            raise RunnerError("input %r: received shape %s; expected %s with batch 1..%d"
                              % (self.input_name, tuple(batch.shape), self.expected_shape(), self.batch_size))

    def describe(self) -> Dict[str, Any]:
        """What this runner is (for reports): backend, providers/devices, precision."""
        return {"backend": self.name, "precision": self.bundle.precision}

    # ------------------------------------------------------------------ hooks
    def _activate(self) -> None:
        raise NotImplementedError

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _deactivate(self) -> None:
        pass


def provider_options(value: Optional[str]) -> Dict[str, str]:
    """Parse ``key=value,key=value`` option strings from the command line."""
    out: Dict[str, str] = {}
    for item in (value or "").split(","):
        if item.strip():
            key, sep, val = item.partition("=")
            if not sep:
                raise RunnerError("backend option %r is not key=value" % item)
            out[key.strip()] = val.strip()
    return out
