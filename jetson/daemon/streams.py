"""Several streams in one process, sharing one model: a :class:`StreamSet` from a config's ``sources:``.

One runner is activated with ``batch_size`` = ``batch.size`` (default: the number of streams) and run by a
:class:`~jetseg.jetson.pipeline.batcher.Batcher`; each stream is assembled as a one-stream configuration
(:func:`jetseg.jetson.daemon.assembly.build` / ``finish``) whose runner is its
:class:`~jetseg.jetson.pipeline.batcher.StreamPort`, so it keeps its own source, ROI, post-processing state,
sinks, recordings, :class:`Metrics` (``jetseg_info{stream=...}``) and health.

:func:`run_streams` is the one-call form (the benchmarks' ``--streams``), as ``run_pipeline`` is for one.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from jetseg.bundle import Bundle
from jetseg.errors import JetsegError
from jetseg.jetson.daemon.assembly import Assembly, build, close_quietly, default_bundle, finish
from jetseg.jetson.daemon.config import ConfigError, DaemonConfig, SinkConfig, SourceConfig, StreamConfig
from jetseg.jetson.frames.metrics import Metrics, StreamsExposition
from jetseg.jetson.pipeline import Pipeline
from jetseg.jetson.pipeline.batcher import Batcher, default_max_delay_s
from jetseg.jetson.pipeline.stages import PipelineError
from jetseg.jetson.runners import open_runner
from jetseg.redact import redact_data

log = logging.getLogger("jetseg.daemon")

#: ``--source NAME=URI``: a stream name, then ``=`` (a URI's own ``=`` comes after ``:``, ``/`` or ``?``)
NAMED_SOURCE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,31})=(.+)$")


def check_same_mode(old: DaemonConfig, new: DaemonConfig) -> None:
    """A reload cannot switch between one ``source:`` and ``sources:`` (a ConfigError says so)."""
    if bool(new.sources) != bool(old.sources):
        raise ConfigError("the new configuration has %s where the running one has %s; a reload cannot switch "
                          "between one 'source:' and 'sources:': restart the daemon"
                          % (("'sources:'", "'source:'") if new.sources else ("'source:'", "'sources:'")))


def split_sources(values: Sequence[str]) -> Tuple[Optional[str], Dict[str, str]]:
    """Repeated ``--source`` values -> ``(one unnamed URI or None, {name: URI})``; a mix, a repeated name or
    several unnamed URIs is a ConfigError saying what to write instead."""
    plain = [v for v in values if not NAMED_SOURCE.match(v)]
    named: Dict[str, str] = {}
    for value in values:
        match = NAMED_SOURCE.match(value)
        if match:
            if match.group(1) in named:
                raise ConfigError("--source %s is given twice; give each stream one --source NAME=URI"
                                  % match.group(1))
            named[match.group(1)] = match.group(2)
    if plain and named:
        raise ConfigError("--source %s has no stream name next to --source %s=...; name every stream "
                          "(--source NAME=URI) or give one URI" % (plain[0], next(iter(named))))
    if len(plain) > 1:
        raise ConfigError("--source is given %d times without names (%s); name each stream: --source NAME=URI"
                          % (len(plain), ", ".join(plain)))
    return (plain[0] if plain else None), named


def with_named_sources(config: DaemonConfig, named: Dict[str, str],
                       sinks: Optional[List[str]] = None) -> DaemonConfig:
    """``config`` with the command line's ``--source NAME=URI`` streams: a stream of the config's
    ``sources:`` with that name gets the URI (keeping its sinks), another is added with the top-level source
    settings (``--source-option``, ``--realtime``). ``sinks`` (``--sink``) go to every stream, ``{stream}``
    replaced by its name; with several streams a sink without ``{stream}`` (other than ``null://``, and
    ``http://``: the streams share one web viewer, a page each) would write one file twice and is refused."""
    if not named:
        return config
    streams = {s.name: s for s in config.sources}
    defaults = {f.name: getattr(config.source, f.name) for f in dataclasses.fields(SourceConfig)}
    for name, uri in named.items():
        if name in streams:
            streams[name] = dataclasses.replace(streams[name], uri=uri)
        else:
            streams[name] = StreamConfig(**dict(defaults, name=name, uri=uri))
    if sinks:
        shared = [uri for uri in sinks if "{stream}" not in uri and not uri.startswith(("null:", "http:"))]
        if shared and len(streams) > 1:
            raise ConfigError("--sink %s would be shared by %d streams; put {stream} in it (e.g. "
                              "masks:///data/{stream}) or give each stream its sinks in --config's sources:"
                              % (shared[0], len(streams)))
        for name, stream in streams.items():
            streams[name] = dataclasses.replace(
                stream, sinks=[SinkConfig(uri.replace("{stream}", name)) for uri in sinks])
    return dataclasses.replace(config, source=SourceConfig(), sinks=[SinkConfig("null://")],
                               sources=list(streams.values())).validate()


def stream_config(config: DaemonConfig, stream: StreamConfig) -> DaemonConfig:
    """The one-stream configuration of ``stream`` (its source, ROI, post-processing and sinks)."""
    fields = {f.name: getattr(stream, f.name) for f in dataclasses.fields(SourceConfig)}
    return dataclasses.replace(config, source=SourceConfig(**fields), sources=[], roi=stream.roi,
                               postprocess=stream.postprocess, sinks=list(stream.sinks))


class StreamSet:
    """The streams of one config, their shared runner and batcher (see the module docstring).

    Args:
        config: a validated :class:`DaemonConfig` (``sources:``, or one ``source:``).
        bundle: the bundle (default: ``model.path``, or the bundled ultrasound model).

    Attributes:
        parts: ``{stream name: Assembly}``; metrics: ``{stream name: Metrics}``.
    """

    def __init__(self, config: DaemonConfig, bundle: Optional[Bundle] = None,
                 metrics: Optional[Dict[str, Metrics]] = None, device_telemetry: Any = None) -> None:
        self.config = config
        self.streams = config.streams()
        self.bundle = bundle if bundle is not None else Bundle(config.model.path or default_bundle())
        known = metrics or {}
        self.metrics: Dict[str, Metrics] = {
            s.name: known.get(s.name) or Metrics(info={"stream": s.name}, device_telemetry=device_telemetry,
                                                 stale_after_s=s.stall_timeout_s) for s in self.streams}
        self.parts: Dict[str, Assembly] = {}
        self.runner: Any = None
        self.batcher: Optional[Batcher] = None
        self.started: Optional[float] = None
        self.finished: Optional[float] = None
        self.closed = False
        self.exposition: Optional[StreamsExposition] = None

    def open(self) -> StreamSet:
        """Activate the runner, start the batcher, assemble every stream (nothing flows yet)."""
        self.build()
        try:
            self.finish()
        except BaseException:
            self.close()
            raise
        return self

    def build(self) -> StreamSet:
        """Activate the runner, start the batcher, construct and check every stream's parts; open no source
        or sink (a reload builds the new set while the old one still runs). On failure, closes what it made."""
        batch = self.config.batch
        size = batch.size or len(self.streams)
        fps = max((s.fps or 30.0) for s in self.streams)
        delay_s = batch.max_delay_ms / 1e3 if batch.max_delay_ms is not None else default_max_delay_s(fps)
        try:
            self.runner = open_runner(self.config.backend.name, self.bundle, batch_size=size,
                                      **self.config.backend.options)
            self.runner.activate()
            self.batcher = Batcher(self.runner, size, delay_s).start()
            for stream in self.streams:
                port = self.batcher.port(stream.name)
                self.parts[stream.name] = build(stream_config(self.config, stream), self.metrics[stream.name],
                                                bundle=self.bundle, runner=port)
        except BaseException:
            self.close()
            raise
        return self

    def finish(self, after: Optional[StreamSet] = None) -> None:
        """Open every stream's source and sinks and make its pipeline (not started).

        Args:
            after: the set this one replaces (stopped by now): a stream of the same name numbers its frames
                on from there, so its mask files are never overwritten.
        """
        for stream in self.streams:  # a stream kept over a reload keeps its counters, with its new settings
            self.metrics[stream.name].stale_after_s = stream.stall_timeout_s
            self.metrics[stream.name].stopped = False
        self.exposition = StreamsExposition(self.metrics)  # one /metrics, with a stream label, for every stream
        for name, parts in self.parts.items():
            previous = after.parts.get(name) if after is not None else None
            finish(parts, self.metrics[name], after=previous.reader if previous is not None else None)
            self.metrics[name].set_info(stream=name)

    def start(self) -> None:
        self.started = time.monotonic()
        for parts in self.parts.values():
            assert parts.pipeline is not None
            parts.pipeline.start()

    def stop(self) -> None:
        """Stop reading every source; frames in flight drain."""
        for parts in self.parts.values():
            if parts.pipeline is not None:
                parts.pipeline.stop()

    def abort(self) -> None:
        """Stop every stream at once, dropping frames in flight."""
        for parts in self.parts.values():
            if parts.pipeline is not None and parts.pipeline.running:
                parts.pipeline.abort()

    def drain(self, timeout: float, give_up: Callable[[], bool] = lambda: False) -> bool:
        """Stop every stream and let the frames in flight through, for up to ``timeout`` s (or until
        ``give_up()``); then abort the streams still running. A stream's failure does not cut the others' drain
        (it was reported by :meth:`wait`). True when every stream drained."""
        self.stop()
        deadline = time.monotonic() + timeout
        while any(p.running for p in self.pipelines.values()) and not give_up() and time.monotonic() < deadline:
            time.sleep(0.05)
        drained = not any(p.running for p in self.pipelines.values())
        self.abort()
        for name, pipeline in self.pipelines.items():
            try:
                pipeline.wait(5.0)
            except JetsegError as exc:  # reported by wait() or the stage already; shutting down anyway
                log.warning("stream %s ended with: %s", name, exc)
        return drained

    @property
    def pipelines(self) -> Dict[str, Pipeline]:
        out = {}
        for name, parts in self.parts.items():
            assert parts.pipeline is not None
            out[name] = parts.pipeline
        return out

    @property
    def running(self) -> bool:
        """Some stream still runs and none has failed (a failed stream ends the set: :meth:`wait` raises)."""
        pipelines = self.pipelines.values()
        return any(p.running for p in pipelines) and not any(p.error is not None for p in pipelines)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until every stream ended (False after ``timeout`` s); raises the first failure of a stream,
        with its name, as soon as that stream has failed (not once the others ended)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(p.running for p in self.pipelines.values()):
            self._raise_failure(ended_only=True)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(0.05 if left is None else min(0.05, left))
        self._raise_failure(ended_only=False)
        self.finished = time.monotonic()
        return True

    def _raise_failure(self, ended_only: bool) -> None:
        """Wait for each ended stream (all of them unless ``ended_only``), raising its failure with its name."""
        for name, pipeline in self.pipelines.items():
            if ended_only and (pipeline.running or pipeline.error is None):
                continue
            try:
                pipeline.wait(0)
            except JetsegError as exc:
                raise _named(exc, name) from exc

    def responsive(self, limit: float) -> bool:
        """For the watchdog: the batcher and every stream's threads are alive and none is stuck."""
        batcher = self.batcher
        if batcher is None or not batcher.running or time.monotonic() - batcher.beat > limit:
            return False
        return all(p.responsive(limit) for p in self.pipelines.values() if p.running)

    def finished_reason(self) -> str:
        """Why every stream ended: ``source ended`` (all finite sources done), else as each pipeline ran out."""
        if all(p.reader.state == "ended" for p in self.pipelines.values()):
            return "source ended"
        return "every stream ended"

    def lost_frames(self) -> Dict[str, Tuple[int, int]]:
        """``{"STREAM/SINK": (lost, given)}`` over every stream (see :meth:`Metrics.lost_frames`)."""
        return {"%s/%s" % (name, sink): lost for name, m in self.metrics.items()
                for sink, lost in m.lost_frames().items()}

    def close(self) -> None:
        """Stop the pipelines still running, the batcher, then close every stream's parts and the runner
        (once: closing again does nothing)."""
        if self.closed:
            return
        self.closed = True
        self.abort()
        if self.batcher is not None:
            self.batcher.stop()
        for name, parts in self.parts.items():
            self.metrics[name].stopped = True
            parts.close()
        if self.runner is not None and self.runner.is_active:
            close_quietly(self.runner.deactivate, "runner")

    def take_over(self, old: StreamSet) -> None:
        """Replace ``old`` (a reload): drain and close it (its runner too), then open and start this set;
        a stream of the same name numbers its frames on and keeps its Metrics."""
        old.drain(15.0)
        old.close()
        self.finish(after=old)
        self.start()

    def check(self) -> Dict[str, Any]:
        """Build everything (the runner activated once), describe it and close it: ``jetseg run --check``."""
        self.build()
        try:
            backend = self.runner.describe()
        finally:
            self.close()
        streams = {name: {"source": parts.reader.source.uri, "live": parts.reader.live,
                          "sinks": [sink for sink, _ in parts.sinks]}
                   for name, parts in self.parts.items() if parts.reader is not None}
        return redact_data({"ok": True, "model": str(self.bundle.path), "precision": self.bundle.precision,
                            "backend": backend, "streams": streams, "config": self.config.to_dict()})

    def health(self) -> Dict[str, Any]:
        """``{"status": the worst stream's, "streams": {name: that stream's health()}}``."""
        streams = {name: m.health() for name, m in self.metrics.items()}
        order = ("ok", "starting", "degraded", "stopped")
        worst = max((h["status"] for h in streams.values()), key=order.index, default="starting")
        return {"status": worst, "streams": streams}

    def summary(self) -> Dict[str, Any]:
        """``{"streams": {name: its pipeline summary}, "frames", "fps" (all streams, wall clock), "batcher":
        Batcher.stats(), "backend"}``."""
        streams = {}
        for name, parts in self.parts.items():
            assert parts.pipeline is not None
            streams[name] = parts.pipeline.summary()
        frames = sum(s["frames"] for s in streams.values())
        end = self.finished or time.monotonic()
        elapsed = end - self.started if self.started is not None else 0.0
        return {"streams": streams, "frames": frames, "elapsed_s": round(elapsed, 4),
                "fps": round(frames / elapsed, 3) if elapsed > 0 else 0.0,
                "batcher": self.batcher.stats() if self.batcher is not None else {},
                "backend": self.runner.describe() if self.runner is not None else {}}


def _named(exc: JetsegError, stream: str) -> JetsegError:
    """``exc`` with the stream's name in front of its message (same type, same exit code)."""
    try:
        return type(exc)("stream %s: %s" % (stream, exc))
    except TypeError:  # an error type with a constructor of its own keeps its message as it is
        return exc


def run_streams(config: DaemonConfig, bundle: Optional[Bundle] = None) -> Dict[str, Any]:
    """Run every stream of ``config`` to its end (each needs one: a finite source, or ``pipeline.max_frames``
    / ``duration_s``) and return :meth:`StreamSet.summary`."""
    streams = StreamSet(config, bundle).open()
    try:
        if config.pipeline.duration_s is None and config.pipeline.max_frames is None:
            for name, parts in streams.parts.items():
                assert parts.reader is not None
                try:
                    len(parts.reader.source)
                except TypeError:
                    raise PipelineError("stream %s (%s) has no end; give pipeline.duration_s or max_frames"
                                        % (name, parts.reader.source.uri)) from None
        streams.start()
        streams.wait()
    finally:
        streams.close()
    return streams.summary()
