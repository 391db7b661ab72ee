"""Runners: one interface (:class:`~jetseg.jetson.runners.base.Runner`), several implementations, chosen by name.

    from jetseg.jetson.runners import open_runner
    with open_runner("onnxrt", bundle, threads=2) as runner:   # threads=0 or none: jetseg's default
        logits = runner.infer(spec.preprocess(frame))

Naming rule: in code the object that runs a model is a *runner* (``Runner``, ``RUNNERS``, ``open_runner``,
variables named ``runner``). *Backend* is only the user-facing name of a runner implementation: the CLI's
``--backend NAME`` and ``--backend-option``, daemon.yaml's ``backend:`` section, the ``backend`` key of
reports and :meth:`Runner.describe`, and messages (``unknown backend 'onxrt'``, ``trt backend option ...``).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple, Type

from jetseg.bundle import Bundle, BundleLike
from jetseg.errors import JetsegError, RunnerError
from jetseg.jetson.runners.base import Runner, default_threads, usable_cores
from jetseg.registry import Registry

__all__ = ["AUTO", "RUNNERS", "Runner", "choose_backend", "default_threads", "open_runner",
           "resolve_backend", "usable_cores"]

#: Runner implementations by backend name.
RUNNERS: Registry[Type[Runner]] = Registry("backend", RunnerError)
RUNNERS.register("onnxrt", "jetseg.jetson.runners.onnxrt:OnnxRuntimeRunner",
                 "ONNX Runtime (CPU here; CUDA/TensorRT providers with onnxruntime-gpu)")
RUNNERS.register("openvino", "jetseg.jetson.runners.openvino:OpenVinoRunner",
                 "OpenVINO on the CPU (x86; FP32 and INT8 Q/DQ ONNX)")
RUNNERS.register("torch", "jetseg.jetson.runners.torch:TorchRunner", "PyTorch eager FP32 reference")
RUNNERS.register("trt", "jetseg.jetson.runners.trt:TensorRTRunner", "native TensorRT engine (Jetson)")
RUNNERS.register("triton", "jetseg.jetson.runners.triton:TritonRunner",
                 "a Triton Inference Server over gRPC (url=grpc://HOST:8001, model=NAME)")


#: The backend name that picks the fastest runner for this machine (:func:`choose_backend`).
AUTO = "auto"


def choose_backend(bundle: Optional[BundleLike] = None) -> Tuple[str, str]:
    """What ``--backend auto`` runs, and why: ``(name, reason)``.

    On a Jetson with TensorRT: ``trt`` when the bundle has an engine this device can load with the trt
    runner's default options (the runner's own lookup, :func:`~jetseg.jetson.trt.plan.find_engine`: not a
    stale one, not one of another device or TensorRT version), else ONNX Runtime with the reason and the
    command that builds the engine. On an x86 host OpenVINO where it is installed; else ONNX Runtime.
    """
    import platform

    from jetseg import trtcompat
    from jetseg.jetson.device.info import on_jetson
    from jetseg.optional import available

    if on_jetson():
        version = trtcompat.installed_version()
        if version is None:
            return "onnxrt", "a Jetson without TensorRT's Python bindings (python3-libnvinfer): ONNX Runtime"
        if bundle is None:
            return "trt", "a Jetson with TensorRT %s" % version
        return _engine_choice(bundle if isinstance(bundle, Bundle) else Bundle(bundle), version)
    if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
        if available("openvino"):
            return "openvino", "an x86 CPU with OpenVINO installed, the fastest CPU runtime for these models"
        return "onnxrt", "an x86 CPU without OpenVINO: ONNX Runtime; pip install 'jetseg[openvino]' for more speed"
    return "onnxrt", "a %s CPU: ONNX Runtime" % platform.machine()


def _engine_choice(bundle: Bundle, trt_version: str) -> Tuple[str, str]:
    from jetseg.jetson.runners.trt import find_engine_here

    try:
        found = find_engine_here(bundle, trt_version)
    except JetsegError as exc:  # a bundle that cannot have the engine (plan_build's errors), or no GPU
        problem = str(exc)
    else:
        if found.usable:
            return "trt", "a Jetson with TensorRT %s and a usable engine in the bundle (%s)" % (trt_version, found.key)
        problem = found.message
    return "onnxrt", "a Jetson with TensorRT %s, but %s: ONNX Runtime until then" % (trt_version, problem)


def resolve_backend(name: str, bundle: Optional[BundleLike] = None) -> str:
    """``name``, or what ``auto`` stands for on this machine and bundle."""
    return choose_backend(bundle)[0] if name == AUTO else name


def open_runner(name: str, bundle: BundleLike, **options: Any) -> Runner:
    """Construct the runner registered as backend ``name`` for ``bundle`` (not yet activated).

    ``auto`` picks the runner with :func:`choose_backend`. Options (``batch_size`` and the implementation's
    own) are checked here: an unknown or malformed one raises a RunnerError that names it. Every runner takes
    ``threads`` and applies it only when it computes on the CPU; 0 (or none) is jetseg's default there
    (:meth:`Runner.threads_or_default`, docs/runtime.md "Threads").
    """
    bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    chosen, why = choose_backend(bundle) if name == AUTO else (name, "")
    try:
        return RUNNERS.get(chosen)(bundle, **options)
    except RunnerError as exc:
        if name != AUTO or not str(exc).startswith("unknown"):
            raise
        # the options were written for another backend than the one auto chose here
        raise RunnerError("%s (--backend auto chose %s here: %s; name the backend the options are for)"
                          % (exc, chosen, why)) from None
