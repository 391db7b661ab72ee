"""The sink interface. Sinks are plain and synchronous: ``open(context)``, ``write(result)``, ``close()``.

The pipeline, not the sink, decides threading: each sink runs in its own worker with a bounded queue, so
a slow sink drops frames (counted) instead of stalling capture or inference. ``close()`` must leave
finished files (an mp4 that plays) even when called from a SIGTERM handler's shutdown path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

from jetseg.errors import SinkError
from jetseg.registry import Registry
from jetseg.spec import Spec


def _empty() -> Dict[str, Any]:
    return {}


def _no_metrics() -> Tuple[bytes, str]:
    return b"", "text/plain"


@dataclass
class SinkContext:
    """What a sink may know about the run.

    Attributes:
        spec: the model's spec.
        fps: the source's native frame rate if known (recordings use it), else None.
        roi_only: record/serve only the ROI (no burned-in patient text).
        health: returns the daemon's health as a JSON-able dict (``/health``).
        metrics: returns ``(payload, content_type)`` in Prometheus text format (``/metrics``).
        stats: returns live statistics (fps, latencies, drops) as a JSON-able dict (web viewer).
    """

    spec: Spec
    fps: Optional[float] = None
    roi_only: bool = False
    health: Callable[[], Dict[str, Any]] = _empty
    metrics: Callable[[], Tuple[bytes, str]] = _no_metrics
    stats: Callable[[], Dict[str, Any]] = _empty
    extra: Dict[str, Any] = field(default_factory=dict)


class Sink:
    """Base class of all sinks.

    Attributes:
        blocking_ok: True for sinks that must see every frame of a finite source (recordings, masks);
            the pipeline then gives them a larger queue, but still never lets them stall a live source.
    """

    blocking_ok = False

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri
        self.options = options
        self.written = 0

    def open(self, context: SinkContext) -> None:
        self.context = context

    def write(self, result: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


SINKS = Registry("sink")
SINKS.register("display", "jetseg.jetson.sinks.display:DisplaySink", "OpenCV window")
SINKS.register("file", "jetseg.jetson.sinks.video:VideoFileSink", "overlay video (mp4)")
SINKS.register("http", "jetseg.jetson.sinks.web:WebSink", "web viewer, /metrics, /health")
SINKS.register("masks", "jetseg.jetson.sinks.masks:MaskSink", "mask PNGs and per-frame JSON lines")
SINKS.register("null", "jetseg.jetson.sinks.null:NullSink", "discard (benchmarks)")


def parse_sink_uri(uri: str) -> Tuple[str, str, Dict[str, str]]:
    """``masks://out/dir?every=2`` -> ``("masks", "out/dir", {"every": "2"})``; ``http://host:port`` keeps host:port."""
    if not isinstance(uri, str) or "://" not in uri:
        raise SinkError("sink %r is not a URI; expected one of display://, file://out.mp4, "
                        "http://127.0.0.1:8080, masks://DIR, null://" % (uri,))
    parts = urlsplit(uri)
    kind = SINKS.check(parts.scheme.lower())
    return kind, parts.netloc + parts.path, dict(parse_qsl(parts.query))


def open_sink(uri: str, **options: Any) -> Sink:
    """Construct (not yet open) the sink for ``uri``; keyword options override the URI's query."""
    kind, target, query = parse_sink_uri(uri)
    merged: Dict[str, Any] = dict(query)
    merged.update(options)
    return SINKS.get(kind)(target, **merged)
