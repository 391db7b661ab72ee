"""Batch profiles: which input shapes an engine built with ``jetseg build --batch N`` accepts, and how the runner
runs a batch within them. Plain Python, no TensorRT (the builder and the runner make the TensorRT calls).

TensorRT (8.5's python/docstrings/infer/pyCoreDoc.h, IOptimizationProfile.set_shape): a network input with a
runtime dimension (-1; an ONNX ``dim_param``) needs an optimization profile, with ``min <= opt <= max`` and every
static dimension equal to the network's; the engine then accepts any shape in that range, set per call with
``IExecutionContext.set_input_shape``. jetseg's profile: batch ``min 1, opt N, max N`` on the GPU.

The DLA has no runtime dimensions: "DLA does not support dynamic dimensions, so the profile's min, max, and opt
values must be equal for wildcard dimensions", "the runtime dimensions must be the same as the dimensions used
for building", batch at most 4096 (NVIDIA, TensorRT developer guide, "DLA Supported Layers and Restrictions",
General Restrictions; read in the current guide,
https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/dla-layer-restrictions.html: the 8.5
edition could not be retrieved here, so the rule is unconfirmed for 8.5 and kept in this one place). A DLA
engine is therefore built for exactly N, and the runner pads a smaller batch to N.

INT8 calibration of a network with runtime dimensions needs a calibration profile
(``IBuilderConfig.set_calibration_profile``, 8.5's pyCoreDoc.h: "MIN and MAX values will be overwritten by
kOPT"): jetseg's calibrators feed batches of the spec's batch (1), so its shapes are that batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from jetseg.errors import JetsegError
from jetseg.onnxgraph import Dim

#: The DLA's largest batch (TensorRT developer guide, "DLA Supported Layers and Restrictions").
DLA_MAX_BATCH = 4096
#: What build.json says about batches on the DLA.
DLA_NOTE = ("the DLA has no runtime dimensions (min = opt = max) and runs exactly the batch it was built for, "
            "at most %d; the runner pads smaller batches" % DLA_MAX_BATCH)

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class BatchProfile:
    """The input shapes of an engine: ``shapes`` is None for a network without runtime dimensions (no
    profile is needed), else ``(min, opt, max)``; ``calibration`` the calibration profile's shape (or None);
    ``others`` the model's other inputs (a registration model's fixed image), which share the shapes."""

    input: str
    batch: int
    static: Shape
    shapes: Optional[Tuple[Shape, Shape, Shape]] = None
    calibration: Optional[Shape] = None
    dla: bool = False
    others: Tuple[str, ...] = ()

    @property
    def inputs(self) -> Tuple[str, ...]:
        return (self.input,) + self.others

    def to_dict(self) -> Dict[str, Any]:
        """build.json's ``profile``."""
        out: Dict[str, Any] = {"input": self.input, "batch": self.batch}
        if self.others:
            out["others"] = list(self.others)
        if self.shapes is not None:
            out.update(min=list(self.shapes[0]), opt=list(self.shapes[1]), max=list(self.shapes[2]))
        else:
            out["shape"] = list(self.static)
        if self.calibration is not None:
            out["calibration"] = list(self.calibration)
        if self.dla:
            out["dla"] = DLA_NOTE
        return out


def batch_profile(name: str, dims: Sequence[Dim], batch: int, dla: bool = False,
                  calibrating: bool = False, calibration_batch: int = 1) -> BatchProfile:
    """The profile of ONNX input ``name`` with dimensions ``dims`` (:func:`jetseg.onnxgraph.dims`) for ``--batch
    batch``; ``dla`` fixes the batch, ``calibrating`` (an implicit-INT8 calibrator) adds the calibration
    profile. A fixed batch other than ``batch``, or another runtime dimension, raises a one-line JetsegError."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise JetsegError("--batch %r: expected an integer >= 1" % (batch,))
    if dla and batch > DLA_MAX_BATCH:
        raise JetsegError("--batch %d: the DLA runs batches of at most %d" % (batch, DLA_MAX_BATCH))
    if len(dims) < 2:
        raise JetsegError("input %r has shape %s; expected (N, C, H, W)" % (name, list(dims)))
    rest = list(dims[1:])
    if not all(isinstance(d, int) for d in rest):
        raise JetsegError("input %r has shape %s; only the batch axis may be dynamic (re-export the model with a "
                          "static C, H, W)" % (name, list(dims)))
    tail = tuple(int(d) for d in rest)
    first = dims[0]
    if isinstance(first, int):
        if first != batch:
            raise JetsegError("--batch %d: %s has a fixed batch of %d; build with --batch %d, or re-export the model "
                              "with 'jetseg export --batch dynamic' (or --batch %d)"
                              % (batch, name, first, first, batch))
        return BatchProfile(name, batch, (batch,) + tail, dla=dla)
    low = batch if dla else 1
    shapes = ((low,) + tail, (batch,) + tail, (batch,) + tail)
    calib = (calibration_batch,) + tail if calibrating else None  # a profile of its own, not within shapes
    return BatchProfile(name, batch, (batch,) + tail, shapes, calib, dla)


def run_size(n: int, low: int, high: int) -> int:
    """The batch a chunk of ``n`` frames runs at in an engine accepting ``low..high``: ``n``, raised to ``low``
    (a DLA engine's fixed batch: the rest is padding)."""
    if not 1 <= n <= high:
        raise JetsegError("a chunk of %d frame(s) for an engine of batch %d..%d" % (n, low, high))
    return max(n, low)


def chunks(total: int, high: int) -> List[Tuple[int, int]]:
    """``(start, stop)`` of the pieces a batch of ``total`` frames runs in, at most ``high`` each."""
    return [(i, min(i + high, total)) for i in range(0, total, high)]
