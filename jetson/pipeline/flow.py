"""The pipeline: source -> preprocess -> infer -> postprocess -> sinks, as a graph run by a scheduler."""
from __future__ import annotations

import gc
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.frames.postprocess import AnyPostProcessor, post_processor
from jetseg.jetson.frames.register import RegistrationPostProcessor
from jetseg.jetson.frames.roi import RoiPolicy
from jetseg.jetson.pipeline.graph import Node, chain
from jetseg.jetson.pipeline.reader import SourceReader
from jetseg.jetson.pipeline.schedulers import Scheduler, SerialScheduler, ThreadedScheduler
from jetseg.jetson.pipeline.settings import PipelineConfig, pipeline_settings
from jetseg.jetson.pipeline.stages import (
    Infer,
    PipelineError,
    Postprocess,
    Preprocess,
    ReadFrames,
    SinkWriter,
)
from jetseg.jetson.runners.base import Runner
from jetseg.jetson.sinks.base import Sink, parse_sink_uri
from jetseg.jetson.sources.base import Source
from jetseg.spec import Spec

#: ``auto`` runs a live source's frames capture-to-mask in one thread when one inference takes at most this
#: share of the frame period (the rest is left for capture, preprocessing, post-processing and jitter)
LATENCY_SHARE = 0.75


def runs_on_cpu(runner: Runner) -> bool:
    """The runner's own answer (:attr:`Runner.on_cpu`, the rule its default threads follow too); False for a
    stand-in that does not say."""
    return bool(getattr(runner, "on_cpu", False))


def settle_heap() -> None:
    """Collect garbage now and freeze what is left (``gc.freeze``), before frames flow: later collections then
    look only at objects made while streaming. Without it, a full collection of everything the process holds
    (PyTorch, OpenVINO and the rest: 45 ms measured on a loaded 2-core machine) stalls a frame now and then.
    Unfreezing first lets a reload's collection free what the previous pipeline left behind."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def probe_inference_ms(runner: Runner, calls: int = 3) -> float:
    """The median time (ms) of ``calls`` inferences on a blank input (they also warm the runner up: first
    calls allocate and tune)."""
    blank = np.zeros(runner.expected_shape(1), dtype=np.float32)
    reg = runner.spec.registration
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        if reg is None:
            runner.infer(blank)
        else:  # a registration model: the same blank as its fixed image
            runner.infer(blank, extra_inputs={reg.fixed_input: blank})
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def sink_names(uris: Sequence[str]) -> List[str]:
    """Metric labels for sinks: the URI scheme, numbered when repeated (``file``, ``file-2``)."""
    names: List[str] = []
    for uri in uris:
        kind = parse_sink_uri(uri)[0]
        name, n = kind, 2
        while name in names:
            name, n = "%s-%d" % (kind, n), n + 1
        names.append(name)
    return names


class Pipeline:
    """Runs source -> preprocess -> infer -> postprocess -> sinks until stopped or the source is exhausted.

    The pipeline does not own its components: the caller opens the source (or :class:`SourceReader`),
    activates the runner and opens the sinks before :meth:`start`, and closes them after :meth:`wait`
    (:mod:`jetseg.jetson.daemon.assembly` does all of that from a config).

    Args:
        source: a :class:`SourceReader` (or a plain :class:`Source`, read with defaults).
        runner: an activated runner (``jetseg.jetson.runners``).
        sinks: ``[(name, sink), ...]`` of opened sinks.
        spec: the model's spec (default: the runner's).
        roi: a :class:`RoiPolicy` (default: the spec's ROI).
        post: the task's post-processor (default: :func:`post_processor` of the spec: decode only).
        metrics: where events go (default: a new :class:`Metrics`).
        settings: queue sizes, limits, threads (:class:`PipelineConfig`, which declares the defaults).
        **overrides: fields of :class:`PipelineConfig` replacing those of ``settings`` (``max_frames=10``);
            an unknown name is a ConfigError that lists the known ones. Among them:

        queue_size: capacity of the hand-overs between stages for finite sources (frames are read when there
            is room, so 1 keeps capture-to-sink latency near two inference periods while still overlapping
            capture and preprocessing with inference).
        post_thread: post-process in a thread of its own (True) or right after inference in the inference
            thread (False). None (default): its own thread when the model runs on an accelerator, where it
            overlaps with inference for free; in the inference thread when the model runs on the CPU,
            where a separate thread would only take cores from the inference (measured: a few % of fps).
        scheduler: how stages share threads (docs/runtime.md, "Scheduling"):

            - ``threaded``: capture and preprocessing of the next frame overlap inference of this one (the
              most frames per second; each frame crosses a hand-over between threads);
            - ``latency``: capture, preprocessing, inference and post-processing of a frame in one thread,
              sinks in their own (no hand-over before the mask is ready; a live source's newest frame is
              read when the previous one is done);
            - ``serial``: every stage in the thread that calls :meth:`start`, which returns at the end of
              the stream;
            - ``auto`` (default): ``latency`` for a live (or paced) source whose frame period leaves room for
              the model (one warm-up inference <= ``LATENCY_SHARE`` of the period), else ``threaded``;
            - or a :class:`Scheduler`.

            :attr:`schedule` names the choice and why.
    """

    def __init__(self, source: Union[SourceReader, Source], runner: Runner, sinks: Sequence[Tuple[str, Sink]],
                 spec: Optional[Spec] = None, roi: Optional[RoiPolicy] = None, post: Optional[AnyPostProcessor] = None,
                 metrics: Optional[Metrics] = None, settings: Optional[PipelineConfig] = None,
                 **overrides: Any) -> None:
        given = overrides.pop("scheduler") if isinstance(overrides.get("scheduler"), Scheduler) else None
        self.settings = settings = pipeline_settings(settings, **overrides)
        self.metrics = metrics if metrics is not None else Metrics()
        reader = source if isinstance(source, SourceReader) else SourceReader(source, metrics=self.metrics)
        if reader.metrics is None:
            reader.metrics = self.metrics
        self.reader = reader
        self.runner = runner
        self.spec = spec if spec is not None else runner.spec
        self.sinks = list(sinks)
        self.max_frames = settings.max_frames
        self.post_thread = (not runs_on_cpu(runner)) if settings.post_thread is None else settings.post_thread
        self.schedule: Dict[str, str] = {}
        m = self.metrics
        self.read = ReadFrames(reader, settings.max_frames, settings.duration_s, m)
        post = post if post is not None else post_processor(self.spec)
        reference = post.reference if isinstance(post, RegistrationPostProcessor) else None
        self.graph: Node = chain(
            self.read,
            Preprocess(self.spec, roi if roi is not None else RoiPolicy(self.spec), m, reference),
            Infer(runner, m),
            Postprocess(self.spec, post, m),
            fan_out=[SinkWriter(name, sink, m) for name, sink in self.sinks])
        for name in ("capture", "preprocess", "infer", "postprocess"):
            m.add_stage(name)
        for name, _ in self.sinks:
            m.add_sink(name)
        self.scheduler = self._scheduler(given if given is not None else settings.scheduler)
        self.started: Optional[float] = None
        self.finished: Optional[float] = None

    def _scheduler(self, choice: Union[str, Scheduler]) -> Scheduler:
        if isinstance(choice, Scheduler):
            self.schedule = {"name": type(choice).__name__, "reason": "given"}
            return choice
        reason = "configured"
        if choice == "auto":
            choice, reason = self._auto_schedule()
        self.schedule = {"name": choice, "reason": reason}
        if choice == "serial":
            return SerialScheduler()
        if choice == "latency":
            own: Tuple[str, ...] = ("postprocess",) if self.settings.post_thread else ()
        else:
            own = ("infer", "postprocess") if self.post_thread else ("infer",)
        return ThreadedScheduler(self.reader.live, self.settings, own)

    def _auto_schedule(self) -> Tuple[str, str]:
        """``auto``: ``(scheduler, why)`` from the source's liveness, its frame rate and a warm-up inference."""
        if not self.reader.live:
            return "threaded", ("a finite source read as fast as it goes: capture and preprocessing overlap "
                                "inference")
        fps = self.reader.fps
        if not fps:
            return "threaded", "a live source of unknown frame rate: capture and preprocessing overlap inference"
        period_ms, model_ms = 1000.0 / fps, probe_inference_ms(self.runner)
        if model_ms <= LATENCY_SHARE * period_ms:
            return "latency", ("live at %.4g fps: one inference (%.1f ms) fits the %.1f ms frame period, so each "
                               "frame goes from capture to mask in one thread" % (fps, model_ms, period_ms))
        return "threaded", ("live at %.4g fps: one inference (%.1f ms) takes more than %d%% of the %.1f ms frame "
                            "period, so capture and preprocessing overlap inference to keep up"
                            % (fps, model_ms, LATENCY_SHARE * 100, period_ms))

    # ------------------------------------------------------------------ control
    def start(self) -> Pipeline:
        """Start (threaded: returns at once; serial: returns at the end of the stream)."""
        if self.started is not None:
            raise PipelineError("this pipeline was already started; build a new one")
        settle_heap()
        self.started = time.monotonic()
        self.scheduler.start(self.graph, self.metrics)
        return self

    def run(self) -> Dict[str, Any]:
        """Start, wait for the end, return :meth:`summary`."""
        self.start()
        self.wait()
        return self.summary()

    def stop(self) -> None:
        """Stop reading; frames already read still go through every stage (drain)."""
        self.scheduler.stop()

    def abort(self) -> None:
        """Stop at once, dropping frames in flight."""
        self.scheduler.abort()

    @property
    def running(self) -> bool:
        return self.scheduler.running

    @property
    def error(self) -> Optional[BaseException]:
        return self.scheduler.error

    @property
    def beats(self) -> Dict[str, float]:
        """Last time each part of the pipeline went round its loop (``capture``, ``infer``, ``sink:NAME``)."""
        return self.scheduler.beats

    @property
    def captured(self) -> int:
        return self.read.captured

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for the end (source exhausted, or stopped and drained); False if still running after
        ``timeout`` seconds. Raises the first stage failure."""
        if not self.scheduler.wait(timeout):
            return False
        if self.finished is None:
            self.finished = time.monotonic()
        return True

    def responsive(self, limit: float) -> bool:
        """Every thread is alive and went round its loop within ``limit`` seconds (for the systemd watchdog).
        A source thread waiting for a source that is reconnecting is not counted as stuck."""
        excused = ("capture",) if self.reader.state == "reconnecting" else ()
        return self.scheduler.responsive(limit, excused)

    # ------------------------------------------------------------------ results
    def summary(self) -> Dict[str, Any]:
        """Frames, elapsed seconds, fps, latency percentiles (ms), drops, per-sink counts."""
        m = self.metrics
        stats = m.stats(recent=False)
        end = self.finished or time.monotonic()
        elapsed = end - self.started if self.started is not None else 0.0
        span = (m.last_frame - m.first_frame) if m.first_frame is not None and m.last_frame is not None else 0.0
        steady = (m.frames - 1) / span if m.frames > 1 and span > 0 else 0.0
        return {
            "frames": m.frames,
            "captured": self.captured,
            "elapsed_s": round(elapsed, 4),
            "fps": round(steady, 3),
            "fps_wall": round(m.frames / elapsed, 3) if elapsed > 0 else 0.0,
            "latency_ms": stats["latency_ms"],
            "dropped": dict(stats["dropped"]),
            "sinks": stats["sinks"],
            "roi": stats["roi"],
            "live": self.reader.live,
            "scheduler": dict(self.schedule),
            "source": {"uri": self.reader.source.uri, "state": self.reader.state,
                       "reconnects": m.reconnects},
        }
