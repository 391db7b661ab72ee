"""The runner lifecycle, shared by every runner implementation (a template method, as in Polygraphy).

The base class owns ``activate`` / ``infer`` / ``deactivate`` and the context-manager protocol (through
:class:`~jetseg.component.Component`), and checks every input against the spec (name, shape, dtype) with an
error that says what it received and what it expected. A runner implementation reads its options in
``__init__`` (``self.read_options(options)``: unknown or malformed options raise a RunnerError), overrides
only the small hooks ``_activate``, ``_infer`` and ``_deactivate``, and imports its heavy dependency inside
``_activate``, so runners can be constructed without it.

Threads, one rule for every runner (docs/runtime.md, "Threads"): every runner accepts the ``threads`` option
(:meth:`Runner.read_threads`) and says whether it computes on the CPU (:attr:`Runner.on_cpu`); only then does
it apply it: N threads when given, and 0 (the default; None too) is jetseg's default, :func:`default_threads`
(usable cores - 1, at least 1). A runner on a GPU or DLA keeps its runtime's own choice (``threads`` 0), so a
caller passes ``threads`` to any runner and never checks backend names.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from jetseg.bundle import Bundle, BundleLike
from jetseg.component import Component
from jetseg.errors import RunnerError
from jetseg.options import OptionReader
from jetseg.tasks import extra_io

log = logging.getLogger("jetseg.runners")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Inference threads of a runner on the CPU when none are given: one core is left to the pipeline's own
    threads (capture, preprocessing, post-processing, sinks), so ``usable_cores() - 1``, at least 1."""
    return max(1, usable_cores() - 1)


class Runner(Component):
    """Runs one model: ``(N, C, H, W) float32`` in (a registration model: the moving image, and the fixed one in
    ``extra_inputs``), its ``output.name`` out (``(N, K, H, W) float32`` logits for segmentation).

    Args:
        bundle: a :class:`~jetseg.bundle.Bundle` or its path.
        batch_size: the largest N this runner will be given (models are exported with a fixed batch of 1
            unless they say otherwise; implementations that support it run larger batches).

    Class attributes:
        name: the backend name the runner is registered under (``--backend NAME``).
    """

    name = "base"
    family = "backend"
    error = RunnerError

    def __init__(self, bundle: BundleLike, batch_size: int = 1) -> None:
        super().__init__()
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
        self.spec = self.bundle.spec
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise RunnerError("%s option batch_size=%r: expected an integer >= 1" % (self.label, batch_size))
        self.batch_size = batch_size
        self.last_inference_ms = 0.0

    @property
    def label(self) -> str:
        return "%s backend" % self.name

    @property
    def on_cpu(self) -> bool:
        """True when this runner computes on the CPU, so that its threads share the cores with the pipeline's
        (ONNX Runtime's CPU provider, OpenVINO's CPU device, PyTorch); False on a GPU or DLA."""
        return False

    def read_threads(self, opts: OptionReader) -> int:
        """The ``threads`` option (0 or none: jetseg's default), read after the options :attr:`on_cpu` depends on
        (provider, device), and resolved by :meth:`threads_or_default`."""
        return self.threads_or_default(opts.integer("threads", 0, minimum=0))

    def threads_or_default(self, threads: Optional[int]) -> int:
        """The inference threads this runner runs with, from the ``threads`` asked for (None or 0: jetseg's
        default). On the CPU: ``threads`` when > 0, else :func:`default_threads`. Not on the CPU: 0, the
        runtime's own choice (e.g. ONNX Runtime's for the CPU part of a GPU provider); a number given there is
        not applied, and the log says so."""
        if not self.on_cpu:
            if threads:
                log.info("%s: threads=%d not applied; it does not compute on the CPU, and its runtime chooses "
                         "its own threads", self.label, threads)
            return 0
        return threads if threads else default_threads()

    # ------------------------------------------------------------------ lifecycle
    @property
    def is_active(self) -> bool:
        return self.started

    def activate(self) -> Runner:
        self._open_with(self._activate)
        return self

    def deactivate(self) -> None:
        self._close_with(self._deactivate)

    def _enter(self) -> None:
        self.activate()

    def _exit(self) -> None:
        self.deactivate()

    def infer(self, batch: np.ndarray, extra_inputs: Optional[Mapping[str, np.ndarray]] = None) -> np.ndarray:
        """Run the model on a preprocessed batch and return its output (``output.name``).

        Args:
            batch: the main input ``input.name``, ``(N, C, H, W) float32``.
            extra_inputs: the model's other inputs by name, each of the batch's shape: for a registration
                model ``{spec.registration.fixed_input: fixed}`` (the batch is the moving image); none for a
                one-input model.
        """
        self._require_started("active; use it as a context manager or call activate()")
        self.check_input(batch)
        extras = self.check_extra_inputs(batch, extra_inputs)
        start = time.perf_counter()
        out = self._infer(batch, extras)
        self.last_inference_ms = (time.perf_counter() - start) * 1e3
        return out

    # ------------------------------------------------------------------ checks
    @property
    def input_name(self) -> str:
        return self.spec.input.name

    def expected_shape(self, n: int = 1) -> Tuple[int, ...]:
        return (n,) + tuple(self.spec.input_shape[1:])

    @property
    def extra_input_names(self) -> Tuple[str, ...]:
        """The model's inputs besides :attr:`input_name` (a registration model's fixed image), in model order."""
        return tuple(name for kind, name, _, _ in extra_io(self.spec.registration, self.spec.input_shape)
                     if kind == "input")

    def input_names(self) -> Tuple[str, ...]:
        """Every input of the model: :attr:`input_name` first, then :attr:`extra_input_names`."""
        return (self.input_name,) + self.extra_input_names

    def check_extra_inputs(self, batch: np.ndarray, extra_inputs: Optional[Mapping[str, Any]]) -> Dict[str, np.ndarray]:
        """The extra inputs checked against the spec (names; each a float32 array of the batch's shape)."""
        extras = dict(extra_inputs or {})
        wanted = self.extra_input_names
        unknown = sorted(set(extras) - set(wanted))
        if unknown:
            raise RunnerError("input %r: received it, but this model's inputs are %s (spec.yaml)"
                              % (unknown[0], ", ".join(repr(n) for n in self.input_names())))
        missing = [n for n in wanted if n not in extras]
        if missing:
            raise RunnerError("input %r: missing; this model (task %s) takes %s, so pass extra_inputs={%r: array} "
                              "shaped like input %r" % (missing[0], self.spec.task, ", ".join(
                                  repr(n) for n in self.input_names()), missing[0], self.input_name))
        for name, array in extras.items():
            self._check_array(name, array, "%s (the shape of input %r)" % (tuple(batch.shape), self.input_name))
            if array.shape != batch.shape:
                raise RunnerError("input %r: received shape %s; expected %s, the shape of input %r"
                                  % (name, tuple(array.shape), tuple(batch.shape), self.input_name))
        return extras

    def _check_array(self, name: str, array: Any, shape: Any) -> None:
        if not isinstance(array, np.ndarray):
            raise RunnerError("input %r: received %s; expected a numpy array of shape %s float32"
                              % (name, type(array).__name__, shape))
        if array.dtype != np.float32:
            raise RunnerError("input %r: received dtype %s; expected float32" % (name, array.dtype))

    def check_input(self, batch: Any) -> None:
        self._check_array(self.input_name, batch, self.expected_shape())
        n = batch.shape[0] if batch.ndim == 4 else 1
        if batch.ndim != 4 or batch.shape[1:] != self.expected_shape()[1:] or not 1 <= n <= self.batch_size:
            raise RunnerError("input %r: received shape %s; expected %s with batch 1..%d"
                              % (self.input_name, tuple(batch.shape), self.expected_shape(), self.batch_size))

    def describe(self) -> Dict[str, Any]:
        """What this runner is (for reports): its backend name, providers/devices, precision."""
        return {"backend": self.name, "precision": self.bundle.precision}

    # ------------------------------------------------------------------ hooks
    def _activate(self) -> None:
        raise NotImplementedError

    def _infer(self, batch: np.ndarray, extra_inputs: Dict[str, np.ndarray]) -> np.ndarray:
        """Run the checked inputs: ``batch`` is ``input.name``, ``extra_inputs`` the others by name (empty for a
        one-input model)."""
        raise NotImplementedError

    def _deactivate(self) -> None:
        pass

