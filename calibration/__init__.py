"""INT8 calibration: representative scans -> curated frames -> Q/DQ INT8 + TensorRT cache -> accuracy gate.

Modules (each imports its heavy dependencies lazily):

- :mod:`.scans`: read any source URI, preprocess with the bundle's spec, hash the source files.
- :mod:`.curate`: k-center greedy choice of calibration frames and a disjoint held-out set.
- :mod:`.quantize`: calibration ranges and Q/DQ quantization (targets ``tensorrt`` and ``cpu``).
- :mod:`.check`: TensorRT's explicit-quantization rules, checked on a Q/DQ ONNX.
- :mod:`.gate`: INT8 vs FP32 on held-out frames, layer sensitivity, fallback.
- :mod:`.nncfquant`: ``--target cpu``: OpenVINO's own INT8 (NNCF, an IR) from the same frames, past the same gate.
- :mod:`.workflow`: ``jetseg calibrate`` as a function.

The TensorRT calibration cache format (``jetseg.jetson.trt.cache``) and the float-layer decision
(``jetseg.jetson.trt.floatlayers``) are runtime modules this app shares with ``jetseg.engines`` (engine
building, the TensorRT calibrator), which it never imports.
"""
