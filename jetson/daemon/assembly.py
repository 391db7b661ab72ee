"""From a configuration to a running pipeline, written once for the daemon, ``run_pipeline`` and the demo.

:func:`assemble` builds the runner, the source (a :class:`SourceReader`), the sinks and the
:class:`Pipeline` from a :class:`DaemonConfig`, opens them and returns them as an :class:`Assembly` (the
pipeline is not started). It is :func:`build` (construct and validate everything, activate the runner) then
:func:`finish` (open the source and the sinks, make the pipeline); a config reload runs the two halves
apart, so that a bad new configuration is found before the running one is stopped.

:func:`run_pipeline` is the one-call form used by the benchmarks and the demo.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

from jetseg.bundle import Bundle, BundleLike
from jetseg.errors import JetsegError
from jetseg.jetson.daemon.config import ConfigError, DaemonConfig, DeviceConfig
from jetseg.jetson.daemon.flags import apply_overrides
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.frames.postprocess import post_processor
from jetseg.jetson.frames.reference import check_reference
from jetseg.jetson.frames.roi import RoiMode, RoiPolicy, calibrated_mode
from jetseg.jetson.pipeline import Pipeline, PipelineError, SourceReader, sink_names
from jetseg.jetson.runners import open_runner
from jetseg.jetson.sinks import SinkContext, open_sink
from jetseg.jetson.sinks.base import Sink, check_targets
from jetseg.jetson.sinks.tokens import TOKEN_RULE, check_token
from jetseg.jetson.sources import open_source
from jetseg.options import unknown_message
from jetseg.redact import add_secret

log = logging.getLogger("jetseg.daemon")

TOKEN_ENV = "JETSEG_WEB_TOKEN"
#: More sinks than this is a mistake (a generated list), and each costs a thread: refused before any is built.
MAX_SINKS = 32


def default_bundle() -> str:
    """The bundled ultrasound demo bundle (``jetseg.models.bundled("ultrasound")``), or a clear error."""
    import jetseg.models as models  # only needed when no --model is given

    bundled = getattr(models, "bundled", None)
    hint = "pass --model BUNDLE (make one with 'jetseg train' or 'jetseg export')"
    if bundled is None:
        raise ConfigError("no --model given and this install has no bundled models; " + hint)
    try:
        return str(bundled("ultrasound"))
    except JetsegError as exc:
        raise ConfigError("no --model given and the bundled ultrasound model is not available (%s); %s"
                          % (exc, hint)) from None


class Assembly:
    """What one configuration holds open: bundle, runner, reader (the source), sinks and the pipeline.

    ``shared`` names the parts taken over from a previous assembly (``runner``, ``source``, ``sinks``):
    :meth:`close` with ``shared=False`` leaves those to their first owner.
    """

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.bundle: Any = None
        self.runner: Any = None
        self.own_runner = True
        self.reader: Optional[SourceReader] = None
        self.sinks: List[Tuple[str, Sink]] = []
        self.sinks_open = False
        self.pipeline: Optional[Pipeline] = None
        self.shared: Set[str] = set()
        self.metrics: Optional[Metrics] = None  # told about frames a sink lost when it closed

    def close(self, sinks: bool = True, source: bool = True, runner: bool = True, shared: bool = True) -> None:
        """Close the parts asked for; a failing close is logged and the other parts still close."""
        if sinks and self.sinks_open and (shared or "sinks" not in self.shared):
            for name, sink in self.sinks:
                close_quietly(sink.close, "sink " + name)
                if sink.lost and self.metrics is not None:
                    self.metrics.sink_lost(name, sink.lost)
            self.sinks_open = False
        if source and self.reader is not None and (shared or "source" not in self.shared):
            close_quietly(self.reader.source.close, "source")
        if runner and self.runner is not None and self.own_runner and (shared or "runner" not in self.shared):
            close_quietly(self.runner.deactivate, "runner")


def changed_parts(old: DaemonConfig, new: DaemonConfig) -> Set[str]:
    """Which parts a switch from ``old`` to ``new`` has to rebuild: ``runner``, ``source``, ``sinks``."""
    out = set()
    if old.model != new.model or old.backend != new.backend:
        out.add("runner")
    if old.source != new.source:
        out.update(("source", "sinks"))  # a recording follows its source
    if old.sinks != new.sinks or old.web != new.web or old.roi.roi_only != new.roi.roi_only:
        out.add("sinks")
    return out


def build(config: DaemonConfig, metrics: Metrics, reuse: Optional[Assembly] = None,
          bundle: Optional[Bundle] = None, runner: Any = None) -> Assembly:
    """Construct and validate everything for ``config`` and activate the runner; open nothing else.

    Args:
        reuse: a running assembly whose unchanged parts are taken over (see :func:`changed_parts`).
        bundle, runner: an activated runner (and its bundle) to use as is; the caller deactivates it.
    """
    parts = Assembly(config)
    parts.metrics = metrics
    parts.shared = {"runner", "source", "sinks"} - changed_parts(reuse.config, config) if reuse else set()
    keep = parts.shared
    try:
        if reuse is not None and "sinks" in keep:
            parts.sinks, parts.sinks_open = reuse.sinks, reuse.sinks_open
        else:  # URIs and options are checked before anything heavy starts
            if len(config.sinks) > MAX_SINKS:
                raise ConfigError("%d sinks; at most %d are allowed (one per output)" % (len(config.sinks), MAX_SINKS))
            uris = [s.uri for s in config.sinks]
            parts.sinks = [(name, open_sink(s.uri, **s.options)) for name, s in zip(sink_names(uris), config.sinks)]
            check_targets([sink for _, sink in parts.sinks])
            if serves_web(parts.sinks):
                web_token(config)  # --check refuses the token the run would refuse
        if reuse is not None and "source" in keep:
            parts.reader = reuse.reader
        else:
            src = config.source
            parts.reader = SourceReader(open_source(src.uri, **src.options), realtime=src.realtime, fps=src.fps,
                                        stall_timeout_s=src.stall_timeout_s,
                                        reconnect_initial_s=src.reconnect_initial_s,
                                        reconnect_max_s=src.reconnect_max_s, metrics=metrics,
                                        frozen_after_s=src.frozen_after_s)
        if reuse is not None and "runner" in keep and runner is None:
            parts.bundle, parts.runner = reuse.bundle, reuse.runner
        else:
            parts.bundle = bundle if bundle is not None else Bundle(config.model.path or default_bundle())
            parts.bundle.spec.require_task("jetseg run", "segmentation", "enhancement", "registration")
        check_reference(config.postprocess.reference, parts.bundle.spec.task)  # --check reads the file too
        if runner is not None:
            parts.runner, parts.own_runner = runner, False
        elif parts.runner is None:
            parts.runner = open_runner(config.backend.name, parts.bundle, **config.backend.options)
            parts.runner.activate()
    except BaseException:
        parts.close(sinks=False, shared=False)
        raise
    return parts


def roi_mode(config: DaemonConfig, bundle: Bundle) -> RoiMode:
    """``roi.mode``, with ``bundle`` (the default) replaced by the mode the bundle was calibrated with."""
    mode = config.roi.mode
    if mode != "bundle":
        return mode
    chosen = calibrated_mode(bundle.calibration())
    log.info("ROI mode %s: as %s was calibrated", chosen, bundle.name)
    return chosen


def finish(parts: Assembly, metrics: Metrics, after: Optional[SourceReader] = None) -> Assembly:
    """Open the source and the sinks of a built assembly and make its pipeline (not started).

    Args:
        after: the reader of the configuration this one replaces (stopped by now): a new reader numbers
            its frames on from it, so frame numbers never restart (mask files are never overwritten).
    """
    config, reader = parts.config, parts.reader
    assert reader is not None
    if after is not None and after is not reader:
        reader.continue_after(after)
    if "source" not in parts.shared:
        reader.open()
    if not parts.sinks_open:
        open_sinks(parts, metrics)
    metrics.set_info(model=parts.bundle.name, precision=parts.bundle.precision,
                     backend=getattr(parts.runner, "name", config.backend.name), source=config.source.uri)
    spec = parts.bundle.spec
    parts.pipeline = pipeline = Pipeline(reader, parts.runner, parts.sinks, spec=spec,
                              roi=RoiPolicy(spec, roi_mode(config, parts.bundle), config.roi.auto_frames),
                              post=post_processor(spec, config.postprocess.smoothing, config.postprocess.min_area_px,
                                                  config.postprocess.reference),
                              metrics=metrics, settings=config.pipeline)
    log.info("pipeline scheduler %s: %s", pipeline.schedule["name"], pipeline.schedule["reason"],
             extra={"fields": {"event": "scheduler", "scheduler": pipeline.schedule["name"]}})
    return parts


def assemble(config: DaemonConfig, metrics: Metrics, bundle: Optional[Bundle] = None,
             runner: Any = None) -> Assembly:
    """Build, open and wire everything for ``config``; on failure close what was opened and raise."""
    parts = build(config, metrics, bundle=bundle, runner=runner)
    try:
        return finish(parts, metrics)
    except BaseException:
        parts.close()
        raise


def open_sinks(parts: Assembly, metrics: Metrics) -> None:
    """Open the sinks with the context they share (spec, fps, ROI-only, the metrics' endpoints, token)."""
    config = parts.config
    token = web_token(config) if serves_web(parts.sinks) else None
    add_secret(token)  # never logged, whatever prints it
    context = SinkContext(spec=parts.bundle.spec, fps=parts.reader.fps if parts.reader else None,
                          roi_only=config.roi.roi_only, live=bool(parts.reader and parts.reader.live),
                          health=metrics.health, metrics=metrics.exposition,
                          stats=metrics.stats, model=parts.bundle.name, precision=parts.bundle.precision,
                          extra=dict({"token": token} if token else {}, **viewer_share(metrics)))
    opened = []
    try:
        for name, sink in parts.sinks:
            sink.open(context)
            opened.append(sink)
            log.info("sink %s open: %s", name, getattr(sink, "url", None) or sink.uri or name,
                     extra={"fields": {"event": "sink_open", "sink": name}})
    except BaseException:
        for sink in opened:
            close_quietly(sink.close, "sink")
        raise
    parts.sinks_open = True


def viewer_share(metrics: Metrics) -> Dict[str, Any]:
    """A stream of several (``sources:``): its name and the group whose web sinks share one viewer (one per
    set of streams; jetson/sinks/webshare.py). One stream: nothing."""
    if metrics.shared_exposition is None:
        return {}
    return {"stream": metrics.info.get("stream"), "viewer_group": metrics.shared_exposition}


def serves_web(sinks: Sequence[Tuple[str, Sink]]) -> bool:
    return any(sink.kind == "http" for _, sink in sinks)


def web_token(config: DaemonConfig) -> Optional[str]:
    """The web viewer's token: ``--token`` / ``web.token``, else ``$JETSEG_WEB_TOKEN``, checked (None: none).
    A set but empty variable is an error, never a viewer without a token."""
    if config.web.token is not None:
        return check_token(config.web.token, "--token (web.token)")
    env = os.environ.get(TOKEN_ENV)
    if env is None:
        return None
    if not env.strip():
        raise ConfigError("%s is set but empty; set it to a token (%s) or unset it for a viewer without a token"
                          % (TOKEN_ENV, TOKEN_RULE))
    return check_token(env, TOKEN_ENV)


def close_quietly(close: Any, what: str) -> None:
    """Close one component during shutdown; a failure is logged and the other components still close."""
    try:
        close()
    except Exception as exc:  # one failing close must not leave the other recordings unfinished
        log.error("closing the %s failed: %s", what, exc, exc_info=not isinstance(exc, JetsegError))


#: run_pipeline's keyword overrides: every field of these config sections by its own name, except the ones
#: given by a parameter of their own (``source_uri``, ``roi``, ``source_options`` / ``backend_options``)
RUN_SECTIONS = ("source", "roi", "postprocess", "pipeline")
RUN_OWN_PARAMETERS = ("uri", "mode", "options")


def run_overrides() -> Dict[str, str]:
    """``{keyword: "section.field"}`` of the overrides :func:`run_pipeline` takes, from the config dataclasses."""
    defaults = DaemonConfig()
    return {f.name: "%s.%s" % (section, f.name) for section in RUN_SECTIONS
            for f in dataclasses.fields(getattr(defaults, section)) if f.name not in RUN_OWN_PARAMETERS}


def run_config(bundle: Bundle, source_uri: str, sink_uris: Optional[Sequence[str]] = None,
               backend: Optional[str] = None, config: Optional[DaemonConfig] = None, backend_options: Optional[Dict[str, Any]] = None,
               source_options: Optional[Dict[str, Any]] = None, roi: Union[RoiMode, Sequence[int], None] = None,
               **overrides: Any) -> DaemonConfig:
    """The :class:`DaemonConfig` :func:`run_pipeline` runs: ``config`` (default: every section's defaults,
    device telemetry off) with the arguments applied, validated. An unknown keyword is a ConfigError naming
    it and the known ones."""
    known = run_overrides()
    for name in overrides:
        if name not in known:
            raise ConfigError(unknown_message("run_pipeline argument", name, known, "arguments"))
    base = config if config is not None else DaemonConfig(device=DeviceConfig(telemetry="off"))
    given: Dict[str, Any] = {"model.path": str(bundle.path), "backend.name": backend,
                             "backend.options": backend_options, "source.uri": source_uri,
                             "source.options": source_options,
                             "sinks": None if sink_uris is None else list(sink_uris),
                             "roi.mode": roi if roi is None or isinstance(roi, (str, dict)) else [int(v) for v in roi]}
    given.update((known[name], value) for name, value in overrides.items())
    return apply_overrides(base, given)


def run_pipeline(bundle: BundleLike, source_uri: str, sink_uris: Optional[Sequence[str]] = None,
                 backend: Optional[str] = None, runner: Any = None, metrics: Optional[Metrics] = None,
                 config: Optional[DaemonConfig] = None, backend_options: Optional[Dict[str, Any]] = None,
                 source_options: Optional[Dict[str, Any]] = None, roi: Union[RoiMode, Sequence[int], None] = None,
                 **overrides: Any) -> Dict[str, Any]:
    """Run the full pipeline once and return its statistics (see docs/runtime.md).

    Args:
        bundle: a :class:`~jetseg.bundle.Bundle` or its path.
        source_uri: any source URI (``synthetic://ultrasound?frames=200``, a video file, ...).
        sink_uris: sink URIs (default: the config's, ``null://``, which measures the pipeline itself).
        backend: runner name (default: the config's, ``auto``: the fastest here, see :func:`~jetseg.jetson.runners.choose_backend`);
            ``backend_options`` are passed to it (without ``threads``, a runner on the CPU takes
            :func:`~jetseg.jetson.runners.default_threads`). Ignored when ``runner`` is given
            (an already activated runner, reused as is, e.g. the one the bare-runner timing used).
        config: a :class:`DaemonConfig` to start from (default: the config dataclasses' defaults, device
            telemetry off); the other arguments replace its values.
        source_options: keyword options of the source; ``roi``: the ROI mode (``spec``, ``auto``, ``none`` or
            ``[x, y, w, h]``).
        **overrides: any field of the config's ``source``, ``roi``, ``postprocess`` and ``pipeline`` sections by
            its name, with its default there (:func:`run_overrides`): ``max_frames``, ``duration_s`` (a
            source without an end needs one of them), ``realtime`` (pace the source at its frame rate and drop
            frames like a live source), ``smoothing``, ``min_area_px``, ``roi_only``, ``queue_size``,
            ``sink_queue``, ``post_thread``, ``scheduler``, ...

    Returns:
        ``{"frames", "captured", "elapsed_s", "fps", "fps_wall", "latency_ms": {"stages": {name: {count,
        mean, p50, p90, p95, p99, max}}, "capture_to_sink", "capture_to_mask", "source_delay", "around_model":
        {...}}, "dropped": {"source", "pipeline"}, "sinks": {name: {"written", "dropped", "errors", "latency_ms"}},
        "roi", "live", "scheduler": {"name", "reason"}, "source", "backend"}``. ``fps`` is the steady rate from
        the first to the last processed frame.
    """
    bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    config = run_config(bundle, source_uri, sink_uris, backend, config, backend_options, source_options, roi,
                        **overrides)
    metrics = metrics if metrics is not None else Metrics(info={"model": bundle.name,
                                                                "backend": config.backend.name,
                                                                "source": source_uri})
    parts = build(config, metrics, bundle=bundle, runner=runner)
    try:
        if config.pipeline.duration_s is None and config.pipeline.max_frames is None:
            assert parts.reader is not None
            try:
                len(parts.reader.source)
            except TypeError:
                raise PipelineError("source %s has no end; give duration_s or max_frames" % source_uri) from None
        finish(parts, metrics)
    except BaseException:
        parts.close()
        raise
    pipeline = parts.pipeline
    assert pipeline is not None
    try:
        pipeline.start()
        try:
            pipeline.wait()
        except KeyboardInterrupt:
            pipeline.stop()
            pipeline.wait(timeout=10.0)
            raise
    finally:
        if pipeline.running:
            pipeline.abort()
        metrics.stopped = True
        parts.close()
    summary = pipeline.summary()
    summary["backend"] = parts.runner.describe()
    return summary
