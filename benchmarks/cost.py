"""What a model costs besides time: file size, memory, and on a Jetson power (fps per watt).

Power comes from the jetson-device telemetry (``jetseg.jetson.device``) when it is importable and reports
a reading here; everywhere else it is recorded as ``"n/a"``, never guessed.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, Mapping, Optional

from jetseg.benchmarks.timing import measure

log = logging.getLogger("jetseg.bench")


def file_size(path: Any) -> int:
    return int(os.path.getsize(str(path)))


def rss_bytes() -> int:
    """Current resident set size of this process (psutil)."""
    from jetseg.optional import require

    psutil = require("psutil", "memory figures in benchmark reports")
    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (the kernel's high-water mark where it keeps one)."""
    current = rss_bytes()
    try:
        import resource

        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
        return max(current, int(peak_kb) * 1024)
    except (ImportError, OSError):
        return current


def open_power_sampler() -> Any:
    """A started telemetry sampler (``jetseg.jetson.device.telemetry``), or None off a Jetson.

    The sampler offers ``reset()``, ``mean_power_w()``, ``conditions()`` and ``stop()``.
    """
    from jetseg.optional import available

    if not available("jetseg.jetson.device.telemetry"):
        return None
    from jetseg.jetson.device.telemetry import open_sampler

    sampler = open_sampler(interval_ms=100)
    return sampler.start() if sampler is not None else None


def mean_power_w(calls: Mapping[str, Callable[[], Any]], duration: float,
                 conds: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """Mean board power while each call runs alone for ``duration`` seconds; empty without telemetry.

    The telemetry's own conditions go into ``conds["telemetry"]``.
    """
    sampler = open_power_sampler()
    if sampler is None:
        return {}
    out: Dict[str, Optional[float]] = {}
    try:
        conds["telemetry"] = sampler.conditions()
        for key, call in calls.items():
            measure(call, warmup=1, min_time=0.5, min_runs=1)
            sampler.reset()
            measure(call, warmup=0, min_time=duration, min_runs=1)
            out[key] = sampler.mean_power_w()
    finally:
        sampler.stop()
    return out


def bundle_bytes(bundle: Any) -> int:
    """Bytes a bundle ships: every file in its manifest (spec, model, weights, calibration files, manifest
    itself); engines built on a device are not part of what is shipped."""
    from jetseg.bundle import MANIFEST_FILE

    names = set(bundle.manifest.files) | {MANIFEST_FILE}
    return sum(file_size(bundle.file(n)) for n in sorted(names) if bundle.file(n).is_file())
