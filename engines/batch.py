"""The batch step of a build (``jetseg build --batch N``): the input's optimization profile.

What the profile is comes from :func:`jetseg.jetson.trt.profile.batch_profile` (plain Python, tested alone);
this module reads the ONNX input it applies to and makes the few TensorRT calls, as TensorRT 8.5's Python API
binds them (python/src/infer/pyCore.cpp): ``Builder.create_optimization_profile()``,
``IOptimizationProfile.set_shape(input, min, opt, max)``, ``IBuilderConfig.add_optimization_profile(profile)``
(returns the profile's index, -1 if invalid) and, for implicit INT8 calibration of a network with runtime
dimensions, ``IBuilderConfig.set_calibration_profile(profile)`` (returns False when refused).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, List

from jetseg.bundle import Bundle
from jetseg.errors import DeviceError, JetsegError
from jetseg.jetson.trt.plan import BuildPlan
from jetseg.jetson.trt.profile import BatchProfile, batch_profile
from jetseg.onnxgraph import dims


def plan_profile(bundle: Bundle, plan: BuildPlan) -> BatchProfile:
    """The profile of the plan's network for ``plan.batch`` (a one-line JetsegError when the ONNX cannot run
    that batch, before anything is built)."""
    from jetseg.optional import require

    onnx = require("onnx", "'jetseg build'")
    path: Path = plan.network or bundle.model_path
    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    shapes = {i.name: dims(i) for i in inputs}
    if len(set(map(tuple, shapes.values()))) != 1:  # one image, or a registration model's moving and fixed image
        raise JetsegError("%s has inputs of different shapes %s; jetseg builds models whose inputs share one shape"
                          % (path, shapes))
    calibrating = plan.int8_mode in ("cache", "device")
    profile = batch_profile(inputs[0].name, dims(inputs[0]), plan.batch, dla=plan.dla_core is not None,
                            calibrating=calibrating, calibration_batch=int(bundle.spec.input_shape[0]))
    return replace(profile, others=tuple(i.name for i in inputs[1:]))


def set_profile(builder: Any, config: Any, profile: BatchProfile) -> List[str]:
    """Add ``profile`` to the builder config (and its calibration profile); returns notes for build.json.
    Nothing for a network without runtime dimensions (TensorRT makes its default profile itself)."""
    if profile.shapes is None:
        return ["input %s has the static shape %s" % (profile.input, list(profile.static))]
    low, opt, high = profile.shapes
    made = builder.create_optimization_profile()
    for name in profile.inputs:
        made.set_shape(name, low, opt, high)
    if config.add_optimization_profile(made) < 0:
        raise DeviceError("TensorRT refused the optimization profile %s min %s opt %s max %s"
                          % (profile.input, list(low), list(opt), list(high)))
    notes = ["optimization profile %s: min %s, opt %s, max %s" % (profile.input, list(low), list(opt), list(high))]
    if profile.calibration is not None:
        calib = builder.create_optimization_profile()
        for name in profile.inputs:
            calib.set_shape(name, profile.calibration, profile.calibration, profile.calibration)
        if not config.set_calibration_profile(calib):
            raise DeviceError("TensorRT refused the calibration profile %s %s"
                              % (profile.input, list(profile.calibration)))
        notes.append("calibration profile %s: %s" % (profile.input, list(profile.calibration)))
    return notes
