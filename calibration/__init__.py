"""INT8 calibration: representative scans -> curated frames -> Q/DQ INT8 + TensorRT cache -> accuracy gate.

Modules (each imports its heavy dependencies lazily):

- :mod:`.scans`: read any source URI, preprocess with the bundle's spec, hash the source files.
- :mod:`.curate`: k-center greedy choice of calibration frames and a disjoint held-out set.
- :mod:`.quantize`: calibration ranges and Q/DQ quantization (targets ``tensorrt`` and ``cpu``).
- :mod:`.check`: TensorRT's explicit-quantization rules, checked on a Q/DQ ONNX.
- :mod:`.cache`: the TensorRT calibration cache (implicit INT8, Xavier DLA), reader and writer.
- :mod:`.calibrator`: on-device calibrator (batching, cache handling, TensorRT adapter).
- :mod:`.gate`: INT8 vs FP32 on held-out frames, layer sensitivity, fallback.
- :mod:`.workflow`: ``jetseg calibrate`` as a function.
- ``engine/``: engine building on the device (the jetson-device area).
"""
