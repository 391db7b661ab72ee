"""Engine building on the device: ONNX (or torch2trt) -> TensorRT engine under ``BUNDLE/engines/<device-key>/``.

* :mod:`.build`: :func:`~jetseg.calibration.engine.build.build_engine`, used by ``jetseg build``.
* :mod:`.store`: the ``engines/`` layout, build.json and staleness (pure Python).
* :mod:`.placement`: DLA vs GPU placement and the U-Net DLA rules.
* :mod:`.qdq`: Q/DQ model helpers (the float network for DLA INT8).
* :mod:`.progress`: progress output during long builds.
"""
from __future__ import annotations
