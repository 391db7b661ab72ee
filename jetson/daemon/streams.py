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
import time
from typing import Any, Dict, Optional

from jetseg.bundle import Bundle
from jetseg.jetson.daemon.assembly import Assembly, build, close_quietly, default_bundle, finish
from jetseg.jetson.daemon.config import DaemonConfig, SourceConfig, StreamConfig
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.pipeline.batcher import Batcher, default_max_delay_s
from jetseg.jetson.pipeline.stages import PipelineError
from jetseg.jetson.runners import open_runner


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

    def __init__(self, config: DaemonConfig, bundle: Optional[Bundle] = None) -> None:
        self.config = config
        self.streams = config.streams()
        self.bundle = bundle if bundle is not None else Bundle(config.model.path or default_bundle())
        self.metrics: Dict[str, Metrics] = {
            s.name: Metrics(info={"stream": s.name}, stale_after_s=s.stall_timeout_s) for s in self.streams}
        self.parts: Dict[str, Assembly] = {}
        self.runner: Any = None
        self.batcher: Optional[Batcher] = None
        self.started: Optional[float] = None
        self.finished: Optional[float] = None

    def open(self) -> StreamSet:
        """Activate the runner, start the batcher, assemble every stream (nothing flows yet)."""
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
                metrics = self.metrics[stream.name]
                parts = build(stream_config(self.config, stream), metrics, bundle=self.bundle, runner=port)
                self.parts[stream.name] = parts
                finish(parts, metrics)
                metrics.set_info(stream=stream.name)
        except BaseException:
            self.close()
            raise
        return self

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

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until every stream ended (False after ``timeout`` s); raises the first stream's failure."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for parts in self.parts.values():
            assert parts.pipeline is not None
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not parts.pipeline.wait(left):
                return False
        self.finished = time.monotonic()
        return True

    def close(self) -> None:
        """Stop the pipelines still running, the batcher, then close every stream's parts and the runner."""
        for parts in self.parts.values():
            if parts.pipeline is not None and parts.pipeline.running:
                parts.pipeline.abort()
        if self.batcher is not None:
            self.batcher.stop()
        for name, parts in self.parts.items():
            self.metrics[name].stopped = True
            parts.close()
        if self.runner is not None and self.runner.is_active:
            close_quietly(self.runner.deactivate, "runner")

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
