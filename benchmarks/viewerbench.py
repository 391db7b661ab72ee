"""``jetseg bench BUNDLE --viewer``: the web viewer measured on screen against a daemon bench starts itself.

The daemon is the real one (:class:`jetseg.jetson.daemon.service.Daemon`, what ``jetseg run`` runs), in this
process: the bundle on ``--backend``, a synthetic ultrasound source paced like a scanner (``fps`` frames per
second, the newest frame wins), the web sink on 127.0.0.1 at a free port. For each tab count headless chromium
opens that many viewer windows and :func:`jetseg.benchmarks.viewer.measure_viewer` reads capture-to-display
latency and shown fps from the page's own log; then the daemon is stopped. The figures and their conditions
go into report.json's ``viewer`` and report.md.

Chromium and ``websocket-client`` are checked before the daemon starts (:func:`check_browser`).
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from jetseg.benchmarks import conditions
from jetseg.benchmarks.browser import chromium_path
from jetseg.benchmarks.inputs import roi_mode
from jetseg.benchmarks.viewer import measure_viewer
from jetseg.bundle import Bundle, check_out
from jetseg.errors import JetsegError
from jetseg.jetson.frames.roi import RoiMode
from jetseg.optional import available
from jetseg.records import BenchReport

log = logging.getLogger("jetseg.bench")

#: the paced source of the measurement: a scanner's rate, pictures rendered once and cycled (rendering a
#: synthetic scan is not work a scanner's pipeline does)
SOURCE = "synthetic://ultrasound?realtime=1&fps=%d&loop=16"
#: seconds the daemon may take to stop after the measurement
STOP_TIMEOUT_S = 60.0


def check_browser() -> None:
    """Raise a one-line JetsegError when headless chromium cannot be driven here (checked before any work)."""
    if chromium_path() is None:
        raise JetsegError("--viewer needs chromium (headless) on PATH, and it is not installed; apt-get install "
                          "chromium (./setup.sh installs it), or leave out --viewer")
    if not available("websocket"):
        raise JetsegError("--viewer needs the websocket-client package to drive chromium; pip install "
                          "websocket-client (the dev extra), or leave out --viewer")


@contextmanager
def running_daemon(bundle: Bundle, source: str, backend: str,
                   roi: RoiMode) -> Iterator[Dict[str, Any]]:
    """Start the daemon on ``source`` with the web sink on 127.0.0.1 at a free port; yield ``{"url", "daemon"}``;
    stop it (and raise what its thread raised) at the end."""
    from jetseg.jetson.daemon.config import DaemonConfig
    from jetseg.jetson.daemon.service import Daemon

    config = DaemonConfig.from_dict({"model": str(bundle.path), "backend": {"name": backend},
                                     "source": {"uri": source}, "sinks": ["http://127.0.0.1:0"],
                                     "roi": {"mode": roi if isinstance(roi, str) else [int(v) for v in roi]}})
    daemon = Daemon(config)
    daemon.start()
    failures: List[BaseException] = []

    def serve() -> None:
        try:
            daemon.run()
        except BaseException as exc:  # handed to the caller below, after the stop
            failures.append(exc)

    thread = threading.Thread(target=serve, name="jetseg-bench-viewer-daemon", daemon=True)
    thread.start()
    url = next(sink.url for _, sink in daemon.parts.sinks if hasattr(sink, "url"))
    log.info("viewer benchmark: daemon running %s on %s, web viewer at %s", bundle.name, backend, url)
    try:
        yield {"url": url, "daemon": daemon}
    finally:
        daemon.request_stop("viewer measurement done")
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            raise JetsegError("the daemon did not stop within %.0f s of the viewer measurement" % STOP_TIMEOUT_S)
        if failures:  # the daemon's failure is the cause of whatever the measurement saw
            raise failures[0]


def measure(bundle: Bundle, tabs: Sequence[int], seconds: float, backend: str = "auto",
            roi: RoiMode = "bundle", fps: int = 30, warmup_s: float = 3.0) -> Dict[str, Any]:
    """The viewer figures of ``bundle`` per tab count, with the conditions they were measured under.

    Returns:
        ``{"conditions": {"bundle", "backend", "source", "fps", "roi", "sink", "daemon", "seconds", "warmup_s"},
        "runs": [measure_viewer(...) per tab count]}``.
    """
    check_browser()
    mode, how = roi_mode(roi, [bundle])
    source = SOURCE % fps
    with running_daemon(bundle, source, backend, mode) as running:
        daemon = running["daemon"]
        runs = [measure_viewer(running["url"], count, seconds, warmup_s=warmup_s, server_in_process=True)
                for count in tabs]
        runner = daemon.parts.runner.describe()
        roi_used = daemon.metrics.roi
    return {"conditions": {"bundle": bundle.name, "bundle_path": str(bundle.path), "backend": runner,
                           "source": source, "fps": fps, "roi": {"mode": mode, "how": how,
                                                                 "roi": list(roi_used) if roi_used else None},
                           "sink": "http://127.0.0.1 (a free port)",
                           "daemon": "jetseg.jetson.daemon.service.Daemon in the bench process (what 'jetseg run' "
                                     "runs); chromium in its own processes",
                           "seconds": seconds, "warmup_s": warmup_s},
            "runs": runs}


def run_viewer_benchmark(bundle: Union[str, Path], tabs: Sequence[int], seconds: float,
                         out_dir: Optional[Union[str, Path]] = None, backend: str = "auto",
                         roi: RoiMode = "bundle", fps: int = 30, overwrite: bool = False,
                         command: Optional[str] = None) -> Dict[str, Any]:
    """Measure the web viewer of ``bundle`` (:func:`measure`) and write report.json and report.md to
    ``out_dir`` (None writes nothing); return the report."""
    if not tabs or any(int(t) < 1 for t in tabs) or seconds <= 0:
        raise JetsegError("--tabs %s with --viewer-seconds %s; expected tab counts >= 1 such as 1,4 and seconds "
                          "> 0" % (",".join(str(t) for t in tabs), seconds))
    if out_dir is not None:
        check_out(out_dir, overwrite, [bundle])
    check_browser()
    conds = conditions.collect(command)
    viewer = measure(Bundle(bundle), [int(t) for t in tabs], seconds, backend=backend, roi=roi, fps=fps)
    conds["load_average_end"] = conditions.load_average()
    conds["versions"] = conditions.versions()
    conds["threads"] = conditions.threads()
    report: Dict[str, Any] = {"schema": str(BenchReport.FORMAT), "conditions": conds,
                              "settings": {"viewer": True, "tabs": [int(t) for t in tabs], "seconds": seconds,
                                           "backends": [backend], "roi": roi, "fps": fps},
                              "results": [], "viewer": viewer}
    if out_dir is not None:
        from jetseg.benchmarks.report import write_report

        write_report(report, out_dir, plots=False, overwrite=overwrite)
    return report
