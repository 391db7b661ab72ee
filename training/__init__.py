"""Training: fit a U-Net from ``jetseg.models`` on frames from a source and write a bundle (``jetseg train``).

An app on top of the runtime: it reads frames through ``jetseg.jetson.sources`` and scores held-out frames
through ``jetseg.jetson.runners``, the same way calibration and the benchmarks do.
"""
