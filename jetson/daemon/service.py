"""The daemon behind ``jetseg run``: a pipeline kept running next to the scanner, as a service.

- Builds the runner, source, sinks and :class:`~jetseg.jetson.pipeline.Pipeline` from a
  :class:`~jetseg.jetson.daemon.config.DaemonConfig` with :mod:`jetseg.jetson.daemon.assembly`.
- SIGTERM / SIGINT: stop capturing, drain the frames in flight, close the sinks (recordings are finalised
  so they play), exit 0. A second signal skips the drain.
- The signal handlers only set a flag and write one byte to a self-pipe that wakes the main loop, which does the
  work: a handler that takes a lock (``Event.set()``) deadlocks when its signal lands while that lock is held.
- SIGHUP: reload the config file (CLI flags still override it), build a new set of parts (the unchanged
  ones are taken over) and swap it in; a bad file or a part that cannot be built is reported and the
  daemon keeps running on the old set.
- A lost live source does not stop the daemon: ``/health`` says degraded while the source reconnects.
- systemd: ``READY=1`` once running, ``WATCHDOG=1`` while every pipeline thread is alive and not stuck,
  ``RELOADING=1`` / ``STOPPING=1``, ``STATUS=...``; sent to ``$NOTIFY_SOCKET`` with the stdlib socket module.
- A finite source (a file, a DICOM cine, ``synthetic://...?frames=N``) ends the run cleanly at its end.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import select
import signal
import threading
import time
from typing import Any, Callable, Dict, Optional, Union

from jetseg.errors import JetsegError, SinkError
from jetseg.jetson.daemon.assembly import Assembly, build, close_quietly, finish
from jetseg.jetson.daemon.config import DaemonConfig
from jetseg.jetson.daemon.streams import StreamSet, check_same_mode
from jetseg.jetson.daemon.support import (  # noqa: F401 (sd_notify etc.: public here too)
    apply_logging,
    log_status_line,
    lost_frames_message,
    poke,
    sd_notify,
    watchdog_interval,
)
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.pipeline import Pipeline
from jetseg.redact import redact_data

log = logging.getLogger("jetseg.daemon")


# ====================================================================== the daemon
class Daemon:
    """Runs one :class:`DaemonConfig` until stopped (or a finite source ends).

    Args:
        config: the validated configuration.
        config_path: the file to re-read on SIGHUP (None: reload keeps the current configuration).
        reload_config: how to rebuild the configuration on SIGHUP (default: ``DaemonConfig.load(config_path)``;
            the CLI passes one that re-applies its flags).
        telemetry_hook: a callable giving ``{name: number}`` device gauges instead of ``device.telemetry``.
    """

    def __init__(self, config: DaemonConfig, config_path: Optional[str] = None,
                 reload_config: Optional[Callable[[], DaemonConfig]] = None,
                 telemetry_hook: Optional[Callable[[], Dict[str, Any]]] = None) -> None:
        self.config = config
        self.config_path = config_path
        self._reload_config = reload_config
        self._sampler: Any = None
        self._sampler_started = False
        self.metrics = Metrics(device_telemetry=self._telemetry_hook(config.device.telemetry, telemetry_hook),
                               stale_after_s=config.source.stall_timeout_s)
        self.parts = Assembly(config)  # what is open; replaced by start() and by each reload
        # With 'sources:' the streams run as a StreamSet instead (self.parts stays unused); each stream's
        # Metrics outlives reloads like self.metrics does, so its counters and frame numbers go on.
        self.streams: Optional[StreamSet] = None
        self.stream_metrics: Dict[str, Metrics] = {}
        # Plain flags, set by the signal handlers and request_*(): no locks (a handler may interrupt the main
        # thread anywhere); the self-pipe wakes the main loop's select().
        self._stopping = False
        self._force = False
        self._reload_pending = False
        self._wake_lock = threading.Lock()  # closing the pipe vs. request_*() from other threads
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self.reloads = 0
        self.restarts = 0  # reloads that failed midway and fell back to the previous configuration
        self.exit_reason = ""

    def _telemetry_hook(self, setting: Optional[str], hook: Any) -> Optional[Callable[[], Dict[str, Any]]]:
        from jetseg.jetson.device.telemetry import IsolatedHook, open_sampler
        if hook is not None:
            return IsolatedHook(hook, getattr(hook, "__qualname__", repr(hook)))
        if setting in (None, "off"):
            return None
        self._sampler = open_sampler(interval_ms=1000)  # None when this is not a Jetson
        return IsolatedHook(self._sampler.latest, self._sampler.source) if self._sampler is not None else None

    # ------------------------------------------------------------------ building
    def start(self) -> None:
        """Build and start everything; on failure, close what was opened and raise. Frames are numbered on
        from the assembly this one replaces (a restart after a failed reload)."""
        config = self.config
        if config.sources:
            self._start_streams(self.streams)
            return
        previous = self.parts.reader
        self.parts = parts = build(config, self.metrics)  # kept even on failure: it says what was closed
        try:
            finish(parts, self.metrics, after=previous)
            assert parts.pipeline is not None
            parts.pipeline.start()
        except BaseException:
            parts.close()
            raise
        self._start_sampler()
        log.info("running %s on %s: %s -> %s", parts.bundle.name, config.backend.name, config.source.uri,
                 ", ".join(s.uri for s in config.sinks),
                 extra={"fields": {"event": "started", "model": str(parts.bundle.path),
                                   "backend": config.backend.name, "source": config.source.uri}})

    def _new_streams(self, config: DaemonConfig) -> StreamSet:
        """A StreamSet for ``config``; a stream keeps the Metrics of the running one of the same name."""
        return StreamSet(config, metrics=self.stream_metrics, device_telemetry=self.metrics.device_telemetry)

    def _start_streams(self, previous: Optional[StreamSet]) -> None:
        """Build, open and start ``sources:`` (frames numbered on from ``previous``); on failure close, raise."""
        config = self.config
        streams = self._new_streams(config).build()
        self.streams = streams
        try:
            streams.finish(after=previous)
            streams.start()
        except BaseException:
            streams.close()
            raise
        self.stream_metrics = streams.metrics
        self._start_sampler()
        log.info("running %s on %s: %d streams (%s), batch %s", streams.bundle.name, config.backend.name,
                 len(streams.streams), ", ".join(s.name for s in streams.streams), streams.batcher.max_batch
                 if streams.batcher is not None else "-",
                 extra={"fields": {"event": "started", "model": str(streams.bundle.path),
                                   "backend": config.backend.name,
                                   "streams": {s.name: s.uri for s in streams.streams}}})

    def _start_sampler(self) -> None:
        if self._sampler is not None and not self._sampler_started:
            self._sampler.start()
            self._sampler_started = True

    def health(self) -> Dict[str, Any]:
        """:meth:`Metrics.health`, or with ``sources:`` :meth:`StreamSet.health` (``streams: {name: health}``)."""
        if self.streams is not None:
            return self.streams.health()
        return self.metrics.health()

    def check(self) -> Dict[str, Any]:
        """Validate everything without running: sink and source URIs, the source's own preflight (a capture
        device that does not exist), the bundle, the backend (activated once)."""
        config = self.config
        if config.sources:
            return self._new_streams(config).check()
        parts = build(config, self.metrics)
        try:
            assert parts.reader is not None
            parts.reader.source.preflight()
            backend = parts.runner.describe()
        finally:
            parts.close()
        return redact_data({"ok": True, "model": str(parts.bundle.path), "precision": parts.bundle.precision,
                            "backend": backend, "source": parts.reader.source.uri, "live": parts.reader.live,
                            "sinks": [name for name, _ in parts.sinks], "config": config.to_dict()})

    # ------------------------------------------------------------------ signals and control
    def install_signal_handlers(self) -> Dict[int, Any]:
        """SIGTERM/SIGINT stop (a second one skips the drain), SIGHUP reloads. Returns the old handlers.

        The handlers set flags and write a byte to the wake-up pipe, nothing else: no lock, no logging, no
        allocation worth naming, so any number of them, nested at any point of the main thread, cannot hang it.
        """
        old: Dict[int, Any] = {}
        names = {int(sig): sig.name for sig in (signal.SIGTERM, signal.SIGINT)}

        def stop(signum: int, _frame: Any) -> None:
            if self._stopping:
                self._force = True
            elif not self.exit_reason:
                self.exit_reason = names.get(signum, "signal %d" % signum)
            self._stopping = True
            self._poke_from_handler()

        def reload(_signum: int, _frame: Any) -> None:
            self._reload_pending = True
            self._poke_from_handler()

        for sig, handler in ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, reload)):
            old[sig] = signal.signal(sig, handler)
        return old

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop as SIGTERM does (callable from any thread)."""
        if not self.exit_reason:
            self.exit_reason = reason
        self._stopping = True
        self._wake()

    def request_reload(self) -> None:
        """Reload as SIGHUP does (callable from any thread)."""
        self._reload_pending = True
        self._wake()

    def _poke_from_handler(self) -> None:
        # Handlers run in the main thread, which is also the only one that closes the pipe (after setting the
        # fd to -1): no lock needed, and none may be taken here.
        fd = self._wake_w
        if fd >= 0:
            poke(fd)

    def _wake(self) -> None:
        with self._wake_lock:
            if self._wake_w >= 0:
                poke(self._wake_w)

    def _sleep(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for a signal or a request, then empty the wake-up pipe."""
        if self._wake_r < 0:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self._wake_r], [], [], timeout)
        if ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass  # emptied

    def _close_wakeup(self) -> None:
        with self._wake_lock:
            fds, (self._wake_r, self._wake_w) = (self._wake_r, self._wake_w), (-1, -1)
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    # ------------------------------------------------------------------ the main loop
    def run(self) -> int:
        """Start (unless started), serve until stopped or the source is exhausted, shut down; return 0.

        Raises the pipeline's error (a JetsegError for user-fixable failures) after shutting down, and a
        SinkError when a sink lost frames to failures: every frame, or some (how many); the command then exits
        non-zero.
        """
        if self.parts.pipeline is None and self.streams is None:
            self.start()
        sd_notify("READY=1\nSTATUS=running")
        watchdog = watchdog_interval()
        last_status = next_ping = time.monotonic()
        try:
            while not self._stopping:
                if self._reload_pending:
                    self._reload_pending = False  # signals during the reload ask for one more
                    self.reload()
                    continue  # a stop that came meanwhile goes first
                active = self._active()
                if not active.running:
                    active.wait()  # raises the stage failure, if any
                    self.exit_reason = self.exit_reason or self._finished_reason(active)
                    break
                now = time.monotonic()
                if watchdog is not None and now >= next_ping:
                    if self.alive():
                        sd_notify("WATCHDOG=1")
                    next_ping = now + watchdog
                interval = self.config.logging.interval_s  # a reload may change it
                if interval and now - last_status >= interval:
                    self.log_status()
                    last_status = now
                self._sleep(min(0.5, watchdog or 0.5))
        finally:
            self.shutdown()
            self._close_wakeup()
        lost = self.streams.lost_frames() if self.streams is not None else self.metrics.lost_frames()
        if lost:
            raise SinkError(lost_frames_message(lost))
        return 0

    def _active(self) -> Union[Pipeline, StreamSet]:
        """What runs: the StreamSet (``sources:``) or the one pipeline; both have running, wait, stop, abort."""
        if self.streams is not None:
            return self.streams
        assert self.parts.pipeline is not None
        return self.parts.pipeline

    def _finished_reason(self, pipeline: Union[Pipeline, StreamSet]) -> str:
        if isinstance(pipeline, StreamSet):
            return pipeline.finished_reason()
        if pipeline.reader.state == "ended":
            return "source ended"
        if pipeline.max_frames is not None and pipeline.captured >= pipeline.max_frames:
            return "max frames reached"
        return "duration reached"

    def alive(self) -> bool:
        """For the watchdog: every pipeline thread is alive and none is stuck (a capture thread blocked while
        reconnecting a source does not count)."""
        limit = max(5.0, 2 * (watchdog_interval() or 2.5))
        if self.streams is not None:
            return self.streams.responsive(limit)
        pipeline = self.parts.pipeline
        if pipeline is None:
            return False
        return pipeline.responsive(limit)

    def shutdown(self) -> None:
        """Stop capture, drain, close sinks (finalising recordings), source and runner."""
        sd_notify("STOPPING=1")
        parts = self.parts
        pipeline: Any = self.streams if self.streams is not None else parts.pipeline
        if self.streams is not None:
            if not self.streams.drain(30.0, give_up=lambda: self._force):
                log.warning("streams did not drain%s; dropped frames in flight",
                            " (second signal)" if self._force else " within 30 s")
        elif pipeline is not None:
            pipeline.stop()
            deadline = time.monotonic() + 30.0
            while not self._force and time.monotonic() < deadline:
                try:
                    if pipeline.wait(timeout=0.25):
                        break
                except BaseException as exc:  # already reported by the main loop or the stage
                    log.debug("pipeline ended with %s", exc)
                    break
            if pipeline.running:
                log.warning("pipeline did not drain%s; dropping frames in flight",
                            " (second signal)" if self._force else " within 30 s")
                pipeline.abort()
                try:
                    pipeline.wait(timeout=5.0)
                except BaseException as exc:  # reported already; shutting down anyway
                    log.debug("pipeline abort: %s", exc)
        # A finite source that reached its end stays "ended" (the web viewer tells its pages "source ended").
        state = "ended" if self.exit_reason == "source ended" else "stopped"
        for metrics in [self.metrics] + list(self.stream_metrics.values()):
            metrics.stopped = True
            metrics.set_source_state(state)
        if self.streams is not None:
            self.streams.close()
        parts.close()
        if self._sampler_started:
            close_quietly(self._sampler.stop, "telemetry sampler")
            self._sampler_started = False
        summary = pipeline.summary() if pipeline is not None else {}
        frames = summary["frames"] if self.streams is not None else self.metrics.frames
        log.info("stopped (%s): %d frames", self.exit_reason or "done", frames,
                 extra={"fields": {"event": "stopped", "reason": self.exit_reason,
                                   "frames": frames, "dropped": summary.get("dropped"),
                                   "sinks": {k: {"written": v["written"], "dropped": v["dropped"]}
                                             for k, v in summary.get("sinks", {}).items()}}})

    def log_status(self) -> None:
        """One status line (with ``sources:``, one per stream, its name first)."""
        if self.streams is not None:
            for name, metrics in self.streams.metrics.items():
                log_status_line(metrics, "stream %s: " % name, {"stream": name})
            health = self.streams.health()
            frames = sum(h["frames"] for h in health["streams"].values())
            fps = sum(h["fps"] for h in health["streams"].values())
            sd_notify("STATUS=%s, %d streams, %.1f fps, %d frames" % (health["status"], len(health["streams"]),
                                                                      fps, frames))
            return
        log_status_line(self.metrics, "", {})
        stats = self.metrics.stats(recent=True)
        sd_notify("STATUS=%s, %.1f fps, %d frames" % (self.metrics.health()["status"], stats["fps"],
                                                      stats["frames"]))

    # ------------------------------------------------------------------ reload (SIGHUP)
    def reload(self) -> bool:
        """Re-read the configuration, build a new set of parts (taking over the unchanged ones) and swap it
        in. A bad file or a part that cannot be built is reported and the running set keeps running; a
        failure while switching restarts the previous configuration."""
        sd_notify("RELOADING=1")
        try:
            new = self._reload_config() if self._reload_config else (
                DaemonConfig.load(self.config_path) if self.config_path else self.config)
            check_same_mode(self.config, new)
            fresh: Any = self._new_streams(new).build() if new.sources else build(new, self.metrics,
                                                                                   reuse=self.parts)
        except Exception as exc:  # anything the new parts raise: reported, the running set keeps running
            reason = str(exc) if isinstance(exc, JetsegError) else "%s: %s" % (type(exc).__name__, exc)
            log.error("reload failed, keeping the running configuration: %s", reason.splitlines()[0] if reason
                      else type(exc).__name__, exc_info=not isinstance(exc, JetsegError) and log.isEnabledFor(logging.DEBUG),
                      extra={"fields": {"event": "reload_failed", "reason": reason}})
            sd_notify("READY=1")
            return False
        old = self.config
        changed = [f.name for f in dataclasses.fields(DaemonConfig) if getattr(old, f.name) != getattr(new, f.name)]
        try:
            self._swap(fresh)
        except JetsegError as exc:
            log.error("reload failed while switching (%s); restarting with the previous configuration", exc,
                      extra={"fields": {"event": "reload_failed"}})
            fresh.close()
            self._restart(old)
            self.restarts += 1
            sd_notify("READY=1")
            return False
        if new.logging != old.logging:
            apply_logging(new)
        self.reloads += 1
        log.info("configuration reloaded (%s)", ", ".join(changed) or "nothing changed",
                 extra={"fields": {"event": "reloaded", "changed": changed}})
        sd_notify("READY=1")
        return True

    def _swap(self, fresh: Any) -> None:
        """Drain the running pipeline, close the parts ``fresh`` does not take over, start ``fresh``."""
        if isinstance(fresh, StreamSet):
            self._swap_streams(fresh)
            return
        old = self.parts
        pipeline = old.pipeline
        if pipeline is not None:
            pipeline.stop()
            try:
                pipeline.wait(timeout=15.0)
            except JetsegError as exc:
                log.warning("the old pipeline ended with: %s", exc)
            if pipeline.running:
                pipeline.abort()
        old.close(sinks="sinks" not in fresh.shared, source="source" not in fresh.shared,
                  runner="runner" not in fresh.shared)
        self.parts, self.config = fresh, fresh.config
        self.metrics.stale_after_s = fresh.config.source.stall_timeout_s
        finish(fresh, self.metrics, after=old.reader)
        assert fresh.pipeline is not None
        fresh.pipeline.start()

    def _swap_streams(self, fresh: StreamSet) -> None:
        assert self.streams is not None
        old, self.streams, self.config = self.streams, fresh, fresh.config
        fresh.take_over(old)
        self.stream_metrics = fresh.metrics

    def _restart(self, config: DaemonConfig) -> None:
        """Close everything and start again from ``config`` (raises if even that fails)."""
        if self.streams is not None:
            self.streams.close()
        pipeline = self.parts.pipeline
        if pipeline is not None and pipeline.running:
            pipeline.abort()
        self.parts.close()
        self.config = config
        self.start()

