"""The build itself: the serialized engine from a parsed network and a config (the step of
:mod:`jetseg.engines.build` that takes minutes), with progress, and the one retry without precision
constraints.

TensorRT 8.5's ``build_serialized_network`` returns None when the build fails (its reasons go to the logger);
with ``OBEY_PRECISION_CONSTRAINTS`` a build fails when any constrained layer has no implementation in its
precision (pyCoreDoc.h: "Build fails otherwise."), so a build with constraints is tried once more without the
flag and build.json says so (``precision_retry``).
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, TextIO, Tuple

from jetseg import trtcompat
from jetseg.engines.precision import Constraints
from jetseg.engines.progress import Heartbeat, make_monitor
from jetseg.errors import DeviceError


def serialize_engine(trt: Any, feats: trtcompat.Features, parsed: Any, config: Any, label: str,
                     out: TextIO, uploader: Any = None) -> bytes:
    """Build the serialized engine, with progress on ``out`` (TensorRT's progress monitor where it has one, else
    a heartbeat); ``uploader``: an on-device calibration's, whose CUDA context is current during the build and
    released after it."""
    print("%s (TensorRT %s; this can take minutes)" % (label, trt.__version__), file=out, flush=True)
    context: Any = uploader.context if uploader is not None else contextlib.nullcontext()
    try:
        with context:
            if feats.progress_monitor and hasattr(trt, "IProgressMonitor"):
                config.progress_monitor = make_monitor(out)
                serialized = parsed.builder.build_serialized_network(parsed.network, config)
            else:
                with Heartbeat(label, stream=out):
                    serialized = parsed.builder.build_serialized_network(parsed.network, config)
            if uploader is not None:
                uploader.free()
    finally:
        if uploader is not None:
            uploader.context.release()
    if serialized is None:
        raise DeviceError("TensorRT could not build the engine; run 'jetseg build --verbose' to see its messages")
    return bytes(memoryview(serialized))


def serialize_with_retry(trt: Any, feats: trtcompat.Features, parsed: Any, config: Any, label: str,
                         out: TextIO, uploader: Any, constraints: Constraints) -> Tuple[bytes, Dict[str, Any]]:
    """:func:`serialize_engine`; when the build fails with OBEY_PRECISION_CONSTRAINTS set, once more without the
    flag (the FP16 constraints then become hints). Returns ``(engine, retry)``, ``retry`` empty when the first
    build worked, else what failed and what was retried (build.json's ``precision_retry``)."""
    try:
        return serialize_engine(trt, feats, parsed, config, label, out, uploader), {}
    except DeviceError as exc:
        if not constraints.obeyed:
            raise
        first = str(exc)
    print("the build with OBEY_PRECISION_CONSTRAINTS on %s failed; retrying once without the flag"
          % ", ".join(constraints.layers), file=out, flush=True)
    config.clear_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    retry = {"first_error": first, "cleared_flag": "OBEY_PRECISION_CONSTRAINTS",
             "constrained_layers": list(constraints.layers)}
    try:
        engine = serialize_engine(trt, feats, parsed, config, label + " (without precision constraints)", out)
    except DeviceError as exc:
        raise DeviceError("TensorRT could not build the engine with OBEY_PRECISION_CONSTRAINTS nor without it; run "
                          "'jetseg build --verbose' to see its messages (%s)" % exc) from None
    return engine, retry
