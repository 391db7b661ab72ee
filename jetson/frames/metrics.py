"""Runtime metrics: Prometheus exposition, ``health()`` and ``stats()`` for the web viewer, run summaries.

One :class:`Metrics` object per daemon (it outlives config reloads) or per :func:`run_pipeline` call. The
pipeline reports events to it from its worker threads; every series has a single writer thread, and all
storage is bounded (counters, fixed histograms, fixed-size latency reservoirs, a short fps window), so
memory stays flat over a long run.

Prometheus series (own ``CollectorRegistry``, never the global one)::

    jetseg_frames_processed_total                       frames through post-processing
    jetseg_frames_dropped_total{where=source|pipeline}  lost before inference (newest frame wins)
    jetseg_sink_frames_written_total{sink}              per sink
    jetseg_sink_frames_dropped_total{sink}              a slow sink's queue overflowed; jetseg_sink_errors_total{sink}
    jetseg_fps                                          recent frames per second
    jetseg_stage_latency_seconds{stage}                 capture, preprocess, infer, postprocess, sink:<name>
    jetseg_capture_to_sink_latency_seconds{sink}        end to end, per sink
    jetseg_source_state{jetseg_source_state=...}        opening, running, reconnecting, ended, stopped
    jetseg_source_reconnects_total, jetseg_uptime_seconds, jetseg_last_frame_age_seconds
    jetseg_input_frozen_seconds                         the same picture repeated (frozenstate.py)
    jetseg_device_<name>                                from the optional device telemetry hook
    jetseg_motion_*                                     a registration model's motion (jetson/frames/motion.py)

Several streams in one daemon (``sources:``) have one :class:`Metrics` each and one exposition over them
all (:class:`StreamsExposition`): every series above carries a ``stream`` label, except the device ones.
"""
from __future__ import annotations

import collections
import random
import re
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetseg.jetson.frames.frozenstate import FrozenState
from jetseg.jetson.frames.motion import MotionStats
from jetseg.optional import require
from jetseg.redact import redact

SOURCE_STATES = ("opening", "running", "reconnecting", "ended", "stopped")
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
PERCENTILES = (50, 90, 95, 99)

#: Device telemetry hook: returns ``{name: value}`` (power in mW, temperatures in C, GPU load, ...).
DeviceTelemetry = Callable[[], Dict[str, float]]


class Reservoir:
    """A bounded sample of a stream of values (seconds).

    Keeps the last ``window`` values (live statistics) and a uniform random sample of ``size`` values over
    the whole stream (Vitter's algorithm R, for run summaries), plus count, sum and maximum.
    """

    def __init__(self, size: int = 4096, window: int = 256, seed: int = 0) -> None:
        self._sample = np.zeros(size, dtype=np.float64)
        self._recent = np.zeros(window, dtype=np.float64)
        self._rng = random.Random(seed)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, value: float) -> None:
        n = self.count
        size = self._sample.shape[0]
        if n < size:
            self._sample[n] = value
        else:
            j = self._rng.randrange(n + 1)
            if j < size:
                self._sample[j] = value
        self._recent[n % self._recent.shape[0]] = value
        self.count = n + 1
        self.total += value
        if value > self.max:
            self.max = value

    def values(self, recent: bool = False) -> np.ndarray:
        n = self.count
        if recent:
            return self._recent[:min(n, self._recent.shape[0])].copy()
        return self._sample[:min(n, self._sample.shape[0])].copy()

    def summary_ms(self, recent: bool = False) -> Dict[str, float]:
        """``{count, mean, p50, p90, p95, p99, max}`` in milliseconds (empty dict before the first value)."""
        vals = self.values(recent)
        if vals.size == 0:
            return {}
        pct = np.percentile(vals, PERCENTILES) * 1e3
        out = {"count": int(self.count if not recent else vals.size),
               "mean": round(float(self.total / self.count if not recent else vals.mean()) * 1e3, 3)}
        out.update({"p%d" % p: round(float(v), 3) for p, v in zip(PERCENTILES, pct)})
        out["max"] = round(float(self.max if not recent else vals.max()) * 1e3, 3)
        return out


class Metrics(FrozenState):
    """Counters, latencies and state of one daemon or pipeline run.

    Args:
        info: static labels for ``jetseg_info`` and ``stats()`` (model, backend, source, ...).
        device_telemetry: optional hook returning ``{name: number}``; called at every scrape and ``health()``
            (the Jetson device module provides one reading tegrastats/jtop).
        stale_after_s: ``health()`` says degraded when no frame arrived for this long.
    """

    def __init__(self, info: Optional[Dict[str, str]] = None,
                 device_telemetry: Optional[DeviceTelemetry] = None, stale_after_s: float = 5.0) -> None:
        prom = require("prometheus_client", "the daemon's metrics")
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        self.info: Dict[str, str] = {k: redact(v) for k, v in (info or {}).items()}
        self.device_telemetry = device_telemetry
        self.stale_after_s = float(stale_after_s)
        self.started = time.monotonic()
        self._started_wall = time.time()
        reg = self.registry
        self._frames = prom.Counter("jetseg_frames_processed", "Frames through post-processing", registry=reg)
        self._dropped = prom.Counter("jetseg_frames_dropped", "Frames lost before inference (newest wins)",
                                     ["where"], registry=reg)
        self._sink_written = prom.Counter("jetseg_sink_frames_written", "Frames written per sink", ["sink"],
                                          registry=reg)
        self._sink_dropped = prom.Counter("jetseg_sink_frames_dropped", "Frames a slow sink had to skip",
                                          ["sink"], registry=reg)
        self._sink_errors = prom.Counter("jetseg_sink_errors", "Failed sink writes", ["sink"], registry=reg)
        self._stage = prom.Histogram("jetseg_stage_latency_seconds", "Time spent in each stage", ["stage"],
                                     buckets=LATENCY_BUCKETS, registry=reg)
        self._e2e = prom.Histogram("jetseg_capture_to_sink_latency_seconds",
                                   "From capture to the end of the sink's write", ["sink"],
                                   buckets=LATENCY_BUCKETS, registry=reg)
        self._state = prom.Enum("jetseg_source_state", "Capture source state", states=list(SOURCE_STATES),
                                registry=reg)
        self._reconnects = prom.Counter("jetseg_source_reconnects", "Source reconnections", registry=reg)
        self._captured = prom.Counter("jetseg_source_frames_captured",
                                      "Frames the source captured (delivered or dropped)", registry=reg)
        prom.Gauge("jetseg_fps", "Recent end-to-end frames per second", registry=reg).set_function(self.fps)
        self.register_frozen(prom, reg)
        prom.Gauge("jetseg_uptime_seconds", "Seconds since start", registry=reg).set_function(self.uptime)
        prom.Gauge("jetseg_last_frame_age_seconds", "Seconds since the last processed frame (-1: none yet)",
                   registry=reg).set_function(self.last_frame_age)
        reg.register(_DeviceCollector(self))
        self._info = prom.Info("jetseg", "What is running", registry=reg)
        self._info.info({k: str(v) for k, v in self.info.items()})
        self._stage_children: Dict[str, Any] = {}
        self._e2e_children: Dict[str, Any] = {}
        self._lock = threading.Lock()
        self.frames = 0
        self.dropped: Dict[str, int] = {"source": 0, "pipeline": 0}
        self.sinks: Dict[str, Dict[str, int]] = {}
        self.reconnects = 0
        self.captured = 0
        self.source_state = "opening"
        self.source_note = ""
        self.stopped = False
        # the exposition of the registry this stream is one of (several streams), else None: its own registry
        self.shared_exposition: Optional[Callable[[], Tuple[bytes, str]]] = None
        self.roi: Optional[Tuple[int, int, int, int]] = None
        self.stages: Dict[str, Reservoir] = {}
        self.e2e: Dict[str, Reservoir] = {}
        self.to_mask = Reservoir()  # capture to mask ready (end of post-processing), seconds
        self.source_delay = Reservoir()  # capture stamp to the pipeline reading the frame, seconds
        self.around_model = Reservoir()  # capture to mask minus the frame's own inference time, seconds
        self._times: Deque[float] = collections.deque(maxlen=64)
        self.first_frame: Optional[float] = None
        self.last_frame: Optional[float] = None
        self.motion = MotionStats(prom, reg)  # a registration model's motion per frame
        self._state.state("opening")

    # ------------------------------------------------------------------ registration (before the run)
    def add_stage(self, name: str) -> None:
        if name not in self.stages:
            self.stages[name] = Reservoir()
            self._stage_children[name] = self._stage.labels(stage=name)

    def add_sink(self, name: str) -> None:
        if name not in self.sinks:
            self.sinks[name] = {"written": 0, "dropped": 0, "errors": 0, "lost": 0}
            self.e2e[name] = Reservoir()
            self._e2e_children[name] = self._e2e.labels(sink=name)
            for counter in (self._sink_written, self._sink_dropped, self._sink_errors):
                counter.labels(sink=name)
            self.add_stage("sink:" + name)

    def set_info(self, **info: str) -> None:
        """Labels of ``jetseg_info`` (also in ``stats()``); URL credentials and tokens are redacted."""
        self.info.update({k: redact(v) for k, v in info.items()})
        self._info.info({k: str(v) for k, v in self.info.items()})

    # ------------------------------------------------------------------ events (from worker threads)
    def stage(self, name: str, seconds: float) -> None:
        """A stage finished one frame in ``seconds``."""
        self.stages[name].add(seconds)
        self._stage_children[name].observe(seconds)

    def frame(self, now: float, captured: Optional[float] = None, inference_s: Optional[float] = None) -> None:
        """One frame left post-processing (called by the single post-processing thread); ``captured``: its
        capture stamp, for the capture-to-mask latency; ``inference_s``: its own time in the model, for what
        the pipeline adds around the model frame by frame."""
        if captured is not None:
            self.to_mask.add(now - captured)
            if inference_s is not None:
                self.around_model.add(now - captured - inference_s)
        self.frames += 1
        self._frames.inc()
        self._times.append(now)
        if self.first_frame is None:
            self.first_frame = now
        self.last_frame = now

    def source_captured(self, count: int = 1) -> None:
        """Frames the source captured: delivered to the pipeline or dropped inside the source."""
        if count > 0:
            with self._lock:
                self.captured += count
            self._captured.inc(count)

    def drop(self, where: str, count: int = 1) -> None:
        """``where``: ``source`` (inside the source) or ``pipeline`` (overwritten before inference)."""
        if count > 0:
            with self._lock:
                self.dropped[where] = self.dropped.get(where, 0) + count
            self._dropped.labels(where=where).inc(count)

    def sink_written(self, name: str, write_s: float, e2e_s: float) -> None:
        self.sinks[name]["written"] += 1
        self._sink_written.labels(sink=name).inc()
        self.stage("sink:" + name, write_s)
        self.e2e[name].add(e2e_s)
        self._e2e_children[name].observe(e2e_s)

    def sink_dropped(self, name: str, count: int = 1) -> None:
        with self._lock:
            self.sinks[name]["dropped"] += count
        self._sink_dropped.labels(sink=name).inc(count)

    def sink_error(self, name: str) -> None:
        with self._lock:
            self.sinks[name]["errors"] += 1
        self._sink_errors.labels(sink=name).inc()

    def sink_lost(self, name: str, count: int) -> None:
        """``count`` frames a sink had accepted were lost when it closed (an encoder that failed to finish)."""
        with self._lock:
            self.sinks[name]["lost"] += count

    def set_source_state(self, state: str, note: str = "") -> None:
        self.source_state = state
        self.source_note = redact(note) if note else note
        self._state.state(state)

    def reconnected(self) -> None:
        self.reconnects += 1
        self._reconnects.inc()

    # ------------------------------------------------------------------ reading
    def lost_frames(self) -> Dict[str, Tuple[int, int]]:
        """``{sink: (lost, given)}`` for each sink that lost frames to failures: failed writes plus frames lost
        when it closed, out of the frames it was given (frames a slow sink skipped are not failures)."""
        out = {}
        for name, c in sorted(self.sinks.items()):
            lost = c["errors"] + c["lost"]
            if lost:
                out[name] = (lost, c["written"] + c["errors"])
        return out

    def lost_sinks(self) -> List[str]:
        """Sinks that failed on every frame they were given (nothing of what they were given was kept)."""
        return [name for name, (lost, given) in self.lost_frames().items() if lost >= given]

    def uptime(self) -> float:
        return time.monotonic() - self.started

    def last_frame_age(self) -> float:
        last = self.last_frame
        return -1.0 if last is None else time.monotonic() - last

    def fps(self) -> float:
        """Frames per second over the last (up to) 64 frames; 0 when the stream has stalled."""
        times = list(self._times)
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        if span <= 0 or time.monotonic() - times[-1] > self.stale_after_s:
            return 0.0
        return (len(times) - 1) / span

    def telemetry(self) -> Dict[str, float]:
        """The device telemetry hook's values (empty without a hook; a failing hook reports its error)."""
        if self.device_telemetry is None:
            return {}
        try:
            values = self.device_telemetry()
        except Exception as exc:  # a broken hook must not take /metrics or /health down; it is reported
            return {"error": "%s: %s" % (type(exc).__name__, exc)}  # type: ignore[dict-item]
        return dict(values or {})

    def health(self) -> Dict[str, Any]:
        """``{status: starting|ok|degraded|stopped, uptime_s, fps, last_frame_age_s, source_state, reasons, ...}``."""
        reasons: List[str] = []
        age = self.last_frame_age()
        if self.stopped:
            status = "stopped"
        else:
            if self.source_state == "reconnecting":
                reasons.append("source lost, reconnecting" + (": " + self.source_note if self.source_note else ""))
            if age < 0 and self.uptime() > self.stale_after_s:
                reasons.append("no frame yet after %.0f s" % self.uptime())
            elif age > self.stale_after_s:
                reasons.append("last frame %.1f s ago" % age)
            failing = sorted(name for name, c in list(self.sinks.items()) if c["errors"])
            if failing:
                reasons.append("sink errors: " + ", ".join(failing))
            self.frozen_reason(reasons)
            status = "degraded" if reasons else "ok"
            if status == "ok" and (self.source_state == "opening" or age < 0):
                # not ok before the source has opened and delivered a frame
                reasons.append("the source is not open yet" if self.source_state == "opening"
                               else "waiting for the first frame")
                status = "starting"
        out: Dict[str, Any] = {"status": status, "uptime_s": round(self.uptime(), 3), "fps": round(self.fps(), 2),
                               "last_frame_age_s": None if age < 0 else round(age, 3),
                               "source_state": self.source_state, "frames": self.frames,
                               "reconnects": self.reconnects, "reasons": reasons, "input_frozen_s": self.frozen_for()}
        if self.motion.frames:
            out["motion"] = self.motion.stats()["last"]
        device = self.telemetry()
        if device:
            out["device"] = device
        return out

    def stats(self, recent: bool = True) -> Dict[str, Any]:
        """Live statistics for the web viewer (recent window) or a run summary (``recent=False``)."""
        return {
            "info": dict(self.info),
            "frames": self.frames,
            "fps": round(self.fps(), 2),
            "uptime_s": round(self.uptime(), 3),
            "source_state": self.source_state, "input_frozen_s": self.frozen_for(),
            "reconnects": self.reconnects,
            "source": {"captured": self.captured, "dropped": self.dropped.get("source", 0),
                       "reconnects": self.reconnects},
            "roi": list(self.roi) if self.roi else None,
            "dropped": dict(self.dropped),
            "latency_ms": {
                "stages": {name: r.summary_ms(recent) for name, r in list(self.stages.items())},
                "capture_to_sink": _merged_ms([r.values(recent) for r in list(self.e2e.values())]),
                "capture_to_mask": self.to_mask.summary_ms(recent),
                "source_delay": self.source_delay.summary_ms(recent),
                "around_model": self.around_model.summary_ms(recent),
            },
            "sinks": {name: dict(c, latency_ms=self.e2e[name].summary_ms(recent))
                      for name, c in list(self.sinks.items())},
            "motion": self.motion.stats() if self.motion.frames else None,
        }

    def exposition(self) -> Tuple[bytes, str]:
        """``(payload, content_type)`` in the Prometheus text format (for ``/metrics``): every stream's when
        this one is part of a :class:`StreamsExposition`."""
        if self.shared_exposition is not None:
            return self.shared_exposition()
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST


class StreamsExposition:
    """One Prometheus registry over several streams' :class:`Metrics`: each family once, each sample with a
    ``stream`` label (the device telemetry once, without one). Every stream's ``exposition()`` serves it.

    Args:
        streams: ``{stream name: Metrics}``.
    """

    def __init__(self, streams: Dict[str, Metrics]) -> None:
        self._prom = require("prometheus_client", "the daemon's metrics")
        self.streams = dict(streams)
        self.registry = self._prom.CollectorRegistry()
        self.registry.register(self)
        for metrics in self.streams.values():
            metrics.shared_exposition = self.exposition

    def collect(self):
        from prometheus_client.core import Metric

        families: Dict[str, Any] = {}
        for stream, metrics in self.streams.items():
            for family in metrics.registry.collect():
                device = family.name.startswith("jetseg_device_")
                if device and family.name in families:
                    continue
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type,
                                                            family.unit)
                for sample in family.samples:
                    merged.samples.append(sample if device else
                                          sample._replace(labels=dict(sample.labels, stream=stream)))
        return list(families.values())

    def describe(self):
        return []

    def exposition(self) -> Tuple[bytes, str]:
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST


def _merged_ms(parts: Sequence[np.ndarray]) -> Dict[str, float]:
    vals = np.concatenate(list(parts)) if parts else np.zeros(0)
    if vals.size == 0:
        return {}
    pct = np.percentile(vals, PERCENTILES) * 1e3
    out = {"mean": round(float(vals.mean()) * 1e3, 3)}
    out.update({"p%d" % p: round(float(v), 3) for p, v in zip(PERCENTILES, pct)})
    out["max"] = round(float(vals.max()) * 1e3, 3)
    return out


class _DeviceCollector:
    """Exports the device telemetry hook's numbers as ``jetseg_device_<name>`` gauges at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        for name, value in sorted(_flatten(self.metrics.telemetry()).items()):
            metric = "jetseg_device_" + re.sub(r"[^a-zA-Z0-9_]", "_", name).lower()
            yield GaugeMetricFamily(metric, "Device telemetry: %s" % name, value=value)

    def describe(self):
        return []


def _flatten(data: Dict[str, Any], prefix: str = "") -> Dict[str, float]:
    """``{"power_mw": {"GPU": 812}, "gpu_load_pct": 87, "cpu_load_pct": [5, 9]}`` ->
    ``{"power_mw_GPU": 812.0, "gpu_load_pct": 87.0, "cpu_load_pct_0": 5.0, "cpu_load_pct_1": 9.0}``
    (numbers only)."""
    out: Dict[str, float] = {}
    for key, value in data.items():
        name = prefix + str(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            out[name] = float(value)
        elif isinstance(value, dict):
            out.update(_flatten(value, name + "_"))
        elif isinstance(value, (list, tuple)):
            out.update(_flatten({str(i): v for i, v in enumerate(value)}, name + "_"))
    return out
