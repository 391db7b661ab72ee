"""Engine building on the device: ONNX (or torch2trt) -> TensorRT engine under ``BUNDLE/engines/<device-key>/``.

* :mod:`.build`: :func:`~jetseg.calibration.engine.build.build_engine`, used by ``jetseg build``.
* :mod:`.store`: the ``engines/`` layout, build.json and staleness (pure Python).
* :mod:`.placement`: DLA vs GPU placement and the U-Net DLA rules.
* :mod:`.int8`: implicit INT8 (calibration cache, on-device calibration) through calibration/calibrator.py.
* :mod:`.qdq`: Q/DQ model helpers (the float network for DLA INT8).
* :mod:`.via_torch2trt`: the torch2trt route.
* :mod:`.progress`: progress output during long builds.
"""
from __future__ import annotations
