"""Device telemetry while something runs: power per rail and total, temperatures, GPU load, RAM.

The API the benchmarks and the runtime metrics use::

    from jetseg.jetson.device.telemetry import open_sampler

    sampler = open_sampler(interval_ms=500)      # None when this is not a Jetson
    if sampler is not None:
        sampler.start()
        ...                                      # the work being measured
        sampler.stop()
        sampler.latest()      # {"power_mw": {...}, "power_total_mw": 9123, "temps_c": {...}, "gpu_load_pct": 87, ...}
        sampler.mean_power_w()                   # mean total power over the samples since start(), in W
        sampler.conditions()  # {"nvpmodel": {"id": 0, "name": "MAXN"}, "jetson_clocks": True, "source": "tegrastats"}

Samples come from ``tegrastats --interval MS`` (a child process read line by line on a daemon thread), or
from jetson-stats (``jtop``) when it is installed and its service is running. The sampler never stores
frames or anything about patients; it keeps the latest sample and running sums.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from jetseg.errors import DeviceError
from jetseg.jetson.device.tegrastats import parse_line, total_power

log = logging.getLogger("jetseg.device")


class IsolatedHook:
    """A device telemetry hook that cannot break ``/metrics`` or ``/health``: what it raises, or returns that
    is not a dict, becomes ``{"telemetry_errors": N, "error": "..."}``, logged at the first error and every
    100th. Every answer carries ``telemetry_errors`` (exported as ``jetseg_device_telemetry_errors``).

    Args:
        hook: returns ``{name: number or nested dict}`` (or None for nothing).
        name: what the hook is (its qualified name), for the log.
    """

    def __init__(self, hook: Callable[[], Any], name: str) -> None:
        self.hook = hook
        self.name = name
        self.errors = 0
        self._lock = threading.Lock()

    def __call__(self) -> Dict[str, Any]:
        try:
            values = self.hook()
            if values is not None and not isinstance(values, dict):
                raise TypeError("returned %s; expected a dict of numbers" % type(values).__name__)
            out = dict(values or {})
        except Exception as exc:  # isolated: the endpoints keep working; counted, logged, and reported in them
            with self._lock:
                self.errors += 1
                count = self.errors
            if count == 1 or count % 100 == 0:
                log.warning("device telemetry hook %s failed (%d errors so far): %s: %s", self.name, count,
                            type(exc).__name__, exc)
            return {"telemetry_errors": count, "error": "%s: %s" % (type(exc).__name__, exc)}
        out["telemetry_errors"] = self.errors
        return out


class Sampler:
    """Base class: keeps the latest sample and the mean of total power; subclasses feed :meth:`_add`."""

    source = "none"

    def __init__(self, interval_ms: int = 500) -> None:
        if int(interval_ms) < 10:
            raise DeviceError("telemetry interval %r ms is too short; expected at least 10 ms" % (interval_ms,))
        self.interval_ms = int(interval_ms)
        self._lock = threading.Lock()
        self._latest: Dict[str, Any] = {}
        self._power_sum_mw = 0.0
        self._power_count = 0
        self.samples = 0
        self._conditions: Optional[Dict[str, Any]] = None

    # ------------------------------------------------------------------ public API
    def start(self) -> Sampler:
        self.reset()
        self._conditions = self._read_conditions()
        self._start()
        return self

    def stop(self) -> None:
        self._stop()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget the running mean (the latest sample stays)."""
        with self._lock:
            self._power_sum_mw = 0.0
            self._power_count = 0

    def latest(self) -> Dict[str, Any]:
        """The newest sample (empty before the first): see :func:`jetseg.jetson.device.tegrastats.parse_line`."""
        with self._lock:
            return dict(self._latest)

    def mean_power_w(self) -> Optional[float]:
        """Mean total board power in watts since :meth:`start` (or :meth:`reset`); None without samples."""
        with self._lock:
            if not self._power_count:
                return None
            return self._power_sum_mw / self._power_count / 1000.0

    def conditions(self) -> Dict[str, Any]:
        """Power mode and clocks recorded at :meth:`start` (fps means nothing without them)."""
        data = dict(self._conditions or self._read_conditions())
        data["source"] = self.source
        data["interval_ms"] = self.interval_ms
        return data

    # ------------------------------------------------------------------ for subclasses
    def _add(self, sample: Dict[str, Any]) -> None:
        if not sample:
            return
        sample["time"] = time.time()
        with self._lock:
            self._latest = sample
            self.samples += 1
            if sample.get("power_total_mw") is not None:
                self._power_sum_mw += float(sample["power_total_mw"])
                self._power_count += 1

    def _read_conditions(self) -> Dict[str, Any]:
        from jetseg.jetson.device.info import jetson_clocks_state, nvpmodel_mode

        return {"nvpmodel": nvpmodel_mode(), "jetson_clocks": jetson_clocks_state()}

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError


class TegrastatsSampler(Sampler):
    """Reads ``tegrastats --interval MS`` line by line on a daemon thread.

    Args:
        interval_ms: sampling period.
        command: the tegrastats command (tests pass a script printing sample lines).
    """

    source = "tegrastats"

    def __init__(self, interval_ms: int = 500, command: Optional[List[str]] = None) -> None:
        super().__init__(interval_ms)
        self.command = list(command) if command else ["tegrastats", "--interval", str(self.interval_ms)]
        self._proc: Optional[subprocess.Popen] = None
        self._thread: Optional[threading.Thread] = None

    def _start(self) -> None:
        if self._proc is not None:
            return
        try:
            self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise DeviceError("cannot start %s (%s); tegrastats ships with JetPack (package nvidia-l4t-tools)"
                              % (self.command[0], exc.strerror or exc)) from None
        self._thread = threading.Thread(target=self._pump, name="jetseg-tegrastats", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self._add(parse_line(raw.decode("utf-8", "replace")))

    def _stop(self) -> None:
        proc, thread = self._proc, self._thread
        self._proc = self._thread = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)
        if thread is not None:
            thread.join(timeout=3)
        if proc.stdout is not None:
            proc.stdout.close()


class JtopSampler(Sampler):
    """Samples through jetson-stats (``jtop``), which talks to its own system service."""

    source = "jtop"

    def __init__(self, interval_ms: int = 500) -> None:
        super().__init__(interval_ms)
        self._jtop: Any = None
        self._thread: Optional[threading.Thread] = None
        self._running = threading.Event()

    def _start(self) -> None:
        from jtop import jtop

        self._jtop = jtop(interval=self.interval_ms / 1000.0)
        self._jtop.start()
        self._running.set()
        self._thread = threading.Thread(target=self._pump, name="jetseg-jtop", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while self._running.is_set() and self._jtop.ok():
            self._add(from_jtop(self._jtop.stats, self._jtop.power))

    def _stop(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        if self._jtop is not None:
            self._jtop.close()
            self._jtop = None


def from_jtop(stats: Dict[str, Any], power: Dict[str, Any]) -> Dict[str, Any]:
    """jtop's ``stats`` and ``power`` dicts (jetson-stats 4.x) -> the same keys as a tegrastats sample."""
    out: Dict[str, Any] = {}
    rails = {}
    for name, rail in (power.get("rail") or {}).items():
        if isinstance(rail, dict) and rail.get("power") is not None:
            rails[str(name)] = int(rail["power"])
    if rails:
        out["power_mw"] = rails
        tot = (power.get("tot") or {}).get("power")
        out["power_total_mw"] = int(tot) if tot is not None else total_power(rails)
    if stats.get("GPU") is not None:
        out["gpu_load_pct"] = float(stats["GPU"])
    if stats.get("RAM") is not None:
        out["ram_used_fraction"] = float(stats["RAM"])
    temps = {k[5:]: float(v) for k, v in stats.items()
             if str(k).startswith("Temp ") and isinstance(v, (int, float)) and v > -100}
    if temps:
        out["temps_c"] = temps
    return out


def _jtop_usable() -> bool:
    from jetseg.optional import available

    return available("jtop") and any(
        os.path.exists(p) for p in ("/run/jtop.sock", "/var/run/jtop.sock"))


def open_sampler(interval_ms: int = 500, prefer: str = "auto") -> Optional[Sampler]:
    """A telemetry sampler for this device (not started), or None when this is not a Jetson.

    Args:
        interval_ms: sampling period.
        prefer: ``auto`` (jtop when its service runs, else tegrastats), ``jtop`` or ``tegrastats``.
    """
    if prefer not in ("auto", "jtop", "tegrastats"):
        raise DeviceError("telemetry source %r is unknown; expected auto, jtop or tegrastats" % prefer)
    if prefer in ("auto", "jtop") and _jtop_usable():
        return JtopSampler(interval_ms)
    if prefer == "jtop":
        raise DeviceError("jtop is not usable here; install jetson-stats (pip install jetson-stats) and start its "
                          "service (sudo systemctl restart jtop.service)")
    if shutil.which("tegrastats") is None:
        return None
    return TegrastatsSampler(interval_ms)


def sample_once(timeout: float = 3.0) -> Optional[Dict[str, Any]]:
    """One telemetry sample (for ``jetseg doctor``), or None off a Jetson or when none arrives in ``timeout`` s."""
    sampler = open_sampler(interval_ms=200)
    if sampler is None:
        return None
    sampler.start()
    try:
        deadline = time.monotonic() + timeout
        while not sampler.samples and time.monotonic() < deadline:
            time.sleep(0.05)
        return sampler.latest() or None
    finally:
        sampler.stop()
