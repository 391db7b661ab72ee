"""A registration model's motion per frame, for the metrics: Prometheus gauges and a histogram, ``/health``
and the web viewer's ``/stats`` (one :class:`MotionStats` per :class:`~jetseg.jetson.frames.metrics.Metrics`,
``Metrics.motion``; its series are registered at the first frame, so other tasks export none of them)::

    jetseg_motion_mean_pixels           mean |u| of the last frame, frame pixels
    jetseg_motion_p95_pixels            95th percentile of |u| of the last frame, frame pixels
    jetseg_motion_folding_fraction      share of the last frame's pixels where the field folds (det J <= 0)
    jetseg_motion_p95_pixels_hist       histogram of the per-frame p95 (``_bucket``, ``_sum``, ``_count``)
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Optional

import numpy as np

#: |u| buckets in frame pixels
MOTION_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
KEYS = ("mean_px", "p95_px", "folding")


class MotionStats:
    """The motion of the frames of one stream (written by its post-processing thread, read by any).

    Args:
        prom: the ``prometheus_client`` module; registry: the stream's registry.
        window: how many recent frames :meth:`stats` summarises.
    """

    def __init__(self, prom: Any, registry: Any, window: int = 256) -> None:
        self._prom, self._registry = prom, registry
        self._gauges: Dict[str, Any] = {}
        self._hist: Any = None
        self._recent = np.zeros((window, len(KEYS)), dtype=np.float64)
        self._lock = threading.Lock()
        self.frames = 0
        self.last: Optional[Dict[str, float]] = None

    def _register(self) -> None:
        prom, registry = self._prom, self._registry
        self._gauges = {
            "mean_px": prom.Gauge("jetseg_motion_mean_pixels", "Mean displacement |u| of the last frame (frame "
                                  "pixels)", registry=registry),
            "p95_px": prom.Gauge("jetseg_motion_p95_pixels", "95th percentile of |u| of the last frame (frame "
                                 "pixels)", registry=registry),
            "folding": prom.Gauge("jetseg_motion_folding_fraction", "Share of the last frame's pixels where the "
                                  "field folds (Jacobian determinant <= 0)", registry=registry)}
        self._hist = prom.Histogram("jetseg_motion_p95_pixels_hist", "Per-frame 95th percentile of |u| (frame "
                                    "pixels)", buckets=MOTION_BUCKETS, registry=registry)

    def add(self, motion: Dict[str, float]) -> None:
        """One frame's ``{"mean_px", "p95_px", "folding"}``."""
        row = [float(motion[k]) for k in KEYS]
        if self._hist is None:
            self._register()
        with self._lock:
            self._recent[self.frames % self._recent.shape[0]] = row
            self.frames += 1
            self.last = dict(zip(KEYS, row))
        for key, value in zip(KEYS, row):
            self._gauges[key].set(value)
        self._hist.observe(row[1])

    def stats(self) -> Dict[str, Any]:
        """``{"frames", "last": {...}, "recent": {"mean_px", "p95_px", "folding", "max_p95_px"}}`` (recent: means
        over the last frames, and the largest p95)."""
        with self._lock:
            rows = self._recent[:min(self.frames, self._recent.shape[0])].copy()
            last = dict(self.last) if self.last else None
        recent: Dict[str, float] = {}
        if rows.size:
            recent = {k: round(float(v), 4) for k, v in zip(KEYS, rows.mean(axis=0))}
            recent["max_p95_px"] = round(float(rows[:, 1].max()), 4)
        return {"frames": self.frames, "last": None if last is None else {k: round(v, 4) for k, v in last.items()},
                "recent": recent}
