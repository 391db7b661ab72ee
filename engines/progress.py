"""Progress output while TensorRT builds (first builds on a Xavier take minutes).

TensorRT 10 and later report phases through ``IProgressMonitor``; :func:`make_monitor` prints the top phases
with their step counts. Older TensorRT (8.5 on Xavier) has no callback, so :class:`Heartbeat` prints the
elapsed time every few seconds from a daemon thread until the build returns.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, TextIO

if TYPE_CHECKING:
    import tensorrt


class Heartbeat:
    """Prints ``<label>: 35 s elapsed`` every ``interval`` seconds while active (a context manager)."""

    def __init__(self, label: str, interval: float = 10.0, stream: Optional[TextIO] = None) -> None:
        self.label = label
        self.interval = float(interval)
        self.stream = stream or sys.stderr
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.start_time = 0.0
        self.beats = 0

    def __enter__(self) -> Heartbeat:
        self.start_time = time.monotonic()
        self._done.clear()
        self._thread = threading.Thread(target=self._run, name="jetseg-build-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.beats += 1
            print("%s: %.0f s elapsed" % (self.label, time.monotonic() - self.start_time), file=self.stream,
                  flush=True)

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start_time


def make_monitor(stream: Optional[TextIO] = None, max_depth: int = 1) -> tensorrt.IProgressMonitor:
    """An ``IProgressMonitor`` printing phases up to ``max_depth`` levels deep (TensorRT >= 10 only)."""
    import tensorrt as trt

    out = stream or sys.stderr

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.depth: Dict[str, int] = {}
            self.steps: Dict[str, int] = {}
            self.start = time.monotonic()

        def phase_start(self, phase_name: str, parent_phase: Optional[str], num_steps: int) -> None:
            depth = self.depth.get(parent_phase, -1) + 1 if parent_phase else 0
            self.depth[phase_name] = depth
            self.steps[phase_name] = num_steps
            if depth <= max_depth:
                print("%s[%5.0f s] %s (%d steps)" % ("  " * depth, time.monotonic() - self.start, phase_name,
                                                    num_steps), file=out, flush=True)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            self.depth.pop(phase_name, None)

    return Monitor()
