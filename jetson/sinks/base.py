"""The sink interface. Sinks are plain and synchronous: ``open(context)``, ``write(result)``, ``close()``.

A sink implementation reads its options in ``__init__`` (``self.read_options(options)``: unknown or malformed
options raise a SinkError naming the option) and overrides the hooks ``_open(context)``, ``_write(result)``
and ``_close()``; the base runs ``_open`` and ``_close`` once each and refuses ``write()`` outside
``open()`` .. ``close()``.

The pipeline, not the sink, decides threading: each sink runs in its own worker with a bounded queue, so
a slow sink drops frames (counted) instead of stalling capture or inference. ``close()`` must leave
finished files (an mp4 that plays) even when called from a SIGTERM handler's shutdown path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Type

from jetseg.component import Component, split_uri
from jetseg.errors import SinkError
from jetseg.jetson.frames.result import Result
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
        live: the source is live (frames may be dropped): recordings keep real time from the capture stamps.
        health: returns the daemon's health as a JSON-able dict (``/health``).
        metrics: returns ``(payload, content_type)`` in Prometheus text format (``/metrics``).
        stats: returns live statistics (fps, latencies, drops) as a JSON-able dict (web viewer).
        model: the bundle's name (``dicom-seg://`` names the algorithm with it; empty: ``spec.name``).
        precision: the bundle's precision (``fp32``, ``int8``), for the algorithm identification.
    """

    spec: Spec
    fps: Optional[float] = None
    roi_only: bool = False
    live: bool = False
    health: Callable[[], Dict[str, Any]] = _empty
    metrics: Callable[[], Tuple[bytes, str]] = _no_metrics
    stats: Callable[[], Dict[str, Any]] = _empty
    model: str = ""
    precision: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


class Sink(Component):
    """Base class of all sinks.

    Class attributes:
        kind: the sink's URI scheme (``masks``), for messages.
        blocking_ok: True for sinks that must see every frame of a finite source (recordings, masks);
            the pipeline then gives them a larger queue, but still never lets them stall a live source.
    """

    kind = ""
    blocking_ok = False
    family = "sink"
    error = SinkError

    def __init__(self, uri: str) -> None:
        super().__init__()
        self.uri = uri
        self.written = 0
        self.lost = 0  # frames write() accepted that did not survive close() (an encoder that failed to finish)
        self.context: Optional[SinkContext] = None

    @property
    def label(self) -> str:
        return "%s:// sink" % self.kind if self.kind else "sink"

    @property
    def target(self) -> Optional[str]:
        """What the sink writes to (a resolved file or folder path), for refusing two sinks on one target;
        None for sinks without one."""
        return None

    def open(self, context: SinkContext) -> Sink:
        """Start the sink for a run described by ``context``; ``with sink.open(context):`` closes it at the end."""
        self.context = context
        self._open_with(lambda: self._open(context))
        return self

    def write(self, result: Result) -> None:
        """Hand one :class:`~jetseg.jetson.frames.result.Result` to the sink."""
        self._require_started("open; write() came before open() or after close()")
        self._write(result)

    def close(self) -> None:
        self._close_with(self._close)

    def _enter(self) -> None:
        self._require_started("open; use it as 'with sink.open(context):'")

    def _exit(self) -> None:
        self.close()

    # hooks
    def _open(self, context: SinkContext) -> None:
        pass

    def _write(self, result: Result) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass


#: Sink classes by URI scheme.
SINKS: Registry[Type[Sink]] = Registry("sink", SinkError)
SINKS.register("dicom-seg", "jetseg.jetson.sinks.dicomseg:DicomSegSink", "DICOM Segmentation objects")
SINKS.register("display", "jetseg.jetson.sinks.display:DisplaySink", "OpenCV window")
SINKS.register("file", "jetseg.jetson.sinks.video:VideoFileSink", "overlay video (mp4)")
SINKS.register("http", "jetseg.jetson.sinks.web:WebSink", "web viewer, /metrics, /health")
SINKS.register("masks", "jetseg.jetson.sinks.masks:MaskSink", "mask PNGs and per-frame JSON lines")
SINKS.register("null", "jetseg.jetson.sinks.null:NullSink", "discard (benchmarks)")


def parse_sink_uri(uri: str) -> Tuple[str, str, Dict[str, str]]:
    """``masks://out/dir?every=2`` -> ``("masks", "out/dir", {"every": "2"})``; ``http://host:port`` keeps host:port."""
    if not isinstance(uri, str) or "://" not in uri:
        raise SinkError("sink %r is not a URI; expected one of display://, file://out.mp4, "
                        "http://127.0.0.1:8080, masks://DIR, dicom-seg://DIR, null://" % (uri,))
    kind, target, query = split_uri(uri)
    return SINKS.check(kind), target, query


def check_targets(sinks: Sequence[Sink]) -> None:
    """Refuse two sinks writing to the same file or folder (they would corrupt each other's output)."""
    seen: Dict[str, str] = {}
    for sink in sinks:
        target = sink.target
        if target is None:
            continue
        if target in seen:
            raise SinkError("sinks %s and %s both write to %s; give each sink its own file or folder"
                            % (seen[target], sink.kind + "://" + sink.uri, target))
        seen[target] = sink.kind + "://" + sink.uri


def open_sink(uri: str, **options: Any) -> Sink:
    """Construct (not yet open) the sink for ``uri``; keyword options override the URI's query."""
    kind, target, query = parse_sink_uri(uri)
    merged: Dict[str, Any] = dict(query)
    merged.update(options)
    return SINKS.get(kind)(target, **merged)
