"""The one timing helper for every jetseg benchmark.

Each callable is warmed up, then called until its measured calls add up to at least ``min_time`` seconds
(and at least ``min_runs`` calls). Several callables measured together are **interleaved**: every round
calls each of them once, in turn, so that a noisy neighbour, thermal throttling or a frequency change hits
all rows alike and their *ratios* stay meaningful even on a busy machine.

Statistics are over the per-call latencies: p50 (median), p90, p99, mean, std, min, max, in milliseconds;
throughput ``fps = batch_size * 1000 / mean_ms`` (frames per second of back-to-back calls).

    stats = measure_interleaved({"fp32": lambda: r32.infer(x), "int8": lambda: r8.infer(x)}, min_time=2.0)
    stats["int8"].fps / stats["fp32"].fps
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

Clock = Callable[[], float]


@dataclass
class TimingStats:
    """Latency statistics of one measured callable (milliseconds; ``fps`` in frames per second)."""

    runs: int
    warmup: int
    batch_size: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    fps: float
    total_s: float
    samples_ms: List[float] = field(default_factory=list, repr=False)

    def latency_ms(self) -> Dict[str, float]:
        """The report's ``latency_ms`` block: p50, p90, p99, mean, std, min, max."""
        return {k: round(getattr(self, k), 4) for k in ("p50", "p90", "p99", "mean", "std", "min", "max")}

    def to_dict(self, samples: bool = False) -> Dict[str, object]:
        data = asdict(self)
        if not samples:
            data.pop("samples_ms")
        return data


def summarize(samples_ms: Sequence[float], batch_size: int = 1, warmup: int = 0) -> TimingStats:
    """Statistics of latencies already measured (milliseconds per call of ``batch_size`` frames)."""
    arr = np.asarray(list(samples_ms), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no timing samples to summarize")
    mean = float(arr.mean())
    p50, p90, p99 = (float(v) for v in np.percentile(arr, [50, 90, 99]))
    return TimingStats(runs=int(arr.size), warmup=warmup, batch_size=batch_size, p50=p50, p90=p90, p99=p99,
                       mean=mean, std=float(arr.std()), min=float(arr.min()), max=float(arr.max()),
                       fps=batch_size * 1000.0 / mean if mean > 0 else float("inf"),
                       total_s=float(arr.sum()) / 1000.0, samples_ms=[float(v) for v in arr])


def measure_interleaved(fns: Dict[str, Callable[[], object]], warmup: int = 5, min_time: float = 2.0,
                        min_runs: int = 10, max_runs: Optional[int] = None, max_time: Optional[float] = None,
                        batch_sizes: Optional[Dict[str, int]] = None, clock: Clock = time.perf_counter,
                        progress: Optional[Callable[[int], None]] = None) -> Dict[str, TimingStats]:
    """Measure several callables round-robin; return their statistics by name.

    Args:
        fns: name -> callable doing one unit of work (one batch).
        warmup: untimed calls of each callable first (also round-robin).
        min_time: seconds of measured calls every callable must reach.
        min_runs: calls every callable must reach.
        max_runs: stop after this many rounds even if ``min_time`` is not reached.
        max_time: stop when the whole measurement (wall clock) has taken this long, once ``min_runs`` is reached.
        batch_sizes: name -> frames per call (for fps); default 1.
        clock: time source in seconds (tests pass a fake one).
        progress: called with the number of rounds done after each round.
    """
    if not fns:
        raise ValueError("nothing to measure")
    if min_runs < 1 or warmup < 0 or min_time < 0:
        raise ValueError("need min_runs >= 1, warmup >= 0, min_time >= 0")
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: Dict[str, List[float]] = {name: [] for name in names}
    spent = {name: 0.0 for name in names}
    start = clock()
    rounds = 0
    while True:
        for name in names:
            t0 = clock()
            fns[name]()
            dt = clock() - t0
            samples[name].append(dt * 1e3)
            spent[name] += dt
        rounds += 1
        if progress is not None:
            progress(rounds)
        if rounds < min_runs:
            continue
        if min(spent.values()) >= min_time:
            break
        if max_runs is not None and rounds >= max_runs:
            break
        if max_time is not None and clock() - start >= max_time:
            break
    sizes = batch_sizes or {}
    return {name: summarize(samples[name], batch_size=int(sizes.get(name, 1)), warmup=warmup) for name in names}


def measure(fn: Callable[[], object], warmup: int = 5, min_time: float = 2.0, min_runs: int = 10,
            max_runs: Optional[int] = None, max_time: Optional[float] = None, batch_size: int = 1,
            clock: Clock = time.perf_counter) -> TimingStats:
    """Measure one callable (see :func:`measure_interleaved`)."""
    return measure_interleaved({"fn": fn}, warmup=warmup, min_time=min_time, min_runs=min_runs,
                               max_runs=max_runs, max_time=max_time, batch_sizes={"fn": batch_size},
                               clock=clock)["fn"]
