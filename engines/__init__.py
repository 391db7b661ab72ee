"""Engine building on the device (app; ``jetseg build``): ONNX (or torch2trt) -> TensorRT engine under
``BUNDLE/engines/<device-key>/``.

Imports the runtime (``jetseg.jetson``: the engine store, key and plan, the calibration cache format and the
float-layer decision in ``jetson/trt/``), models and core; never another app. The runtime loads what this
builds and never imports it.

* :mod:`.build`: :func:`~jetseg.engines.build.build_engine`, used by ``jetseg build``: small steps chained.
* :mod:`.placement`: DLA vs GPU placement estimate and the U-Net DLA rules.
* :mod:`.engine_info`: where TensorRT put the layers (engine inspector).
* :mod:`.int8`: implicit INT8 (calibration cache, on-device calibration) through :mod:`.calibrator`.
* :mod:`.calibrator`: the TensorRT calibrator (batching, cache handling, TensorRT adapter).
* :mod:`.precision`: FP16 constraints on the layers the accuracy gate kept in float.
* :mod:`.qdq`: Q/DQ model helpers (the float network for DLA INT8).
* :mod:`.via_torch2trt`: the torch2trt route.
* :mod:`.progress`: progress output during long builds.
"""
from __future__ import annotations
