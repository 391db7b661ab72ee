"""The one timing helper for every jetseg benchmark.

Each callable is warmed up, then called until its timed calls add up to at least ``min_time`` seconds
(and at least ``min_runs`` calls). Several callables measured together are **interleaved**: rounds give
each of them, in turn, a block of about ``block_time`` seconds (0.5 s by default), so that a noisy
neighbour, thermal throttling or a frequency change hits all rows alike and their *ratios* stay meaningful
even on a busy machine. Each block starts with ``settle_time`` seconds of untimed calls: the previous
callable's thread pools (ONNX Runtime, OpenMP) may still be spinning, which is a cost of the interleaving
itself and not of the callable.

Statistics are over the per-call latencies: p50 (median), p90, p99, mean, std, min, max, in milliseconds;
throughput ``fps = batch_size * 1000 / mean_ms`` (frames per second of back-to-back calls).

    stats = measure_interleaved({"fp32": lambda: r32.infer(x), "int8": lambda: r8.infer(x)}, min_time=2.0)
    stats["int8"].fps / stats["fp32"].fps
"""
from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

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
                        batch_sizes: Optional[Dict[str, int]] = None, block_time: float = 0.5,
                        settle_time: float = 0.05, clock: Clock = time.perf_counter,
                        progress: Optional[Callable[[int], None]] = None) -> Dict[str, TimingStats]:
    """Measure several callables in interleaved blocks; return their statistics by name.

    Each round gives every callable, in turn, one block: first ``settle_time`` seconds of untimed calls (at
    least one; only when there is more than one callable, so that the previous callable's thread pools
    winding down are not charged to this one), then timed calls for about ``block_time`` seconds (at least
    one). Rounds repeat until every callable has ``min_runs`` timed calls adding up to ``min_time``.

    Args:
        fns: name -> callable doing one unit of work (one batch).
        warmup: untimed calls of each callable first.
        min_time: seconds of timed calls every callable must reach.
        min_runs: timed calls every callable must reach.
        max_runs: stop once every callable has this many timed calls, even short of ``min_time``.
        max_time: stop when the whole measurement (wall clock) has taken this long, once ``min_runs`` is reached.
        batch_sizes: name -> frames per call (for fps); default 1.
        block_time: seconds of timed calls per callable and round (0: one call per round, strict round-robin).
        settle_time: seconds of untimed calls before each block (0: none).
        clock: time source in seconds (tests pass a fake one).
        progress: called with the number of rounds done after each round.
    """
    if not fns:
        raise ValueError("nothing to measure")
    if min_runs < 1 or warmup < 0 or min_time < 0 or block_time < 0 or settle_time < 0:
        raise ValueError("need min_runs >= 1 and warmup, min_time, block_time, settle_time >= 0")
    names = list(fns)
    cost = {name: 0.0 for name in names}  # running estimate of one call's duration (s)
    for name in names:
        for _ in range(warmup):
            t0 = clock()
            fns[name]()
            cost[name] = clock() - t0
    settle = settle_time if len(names) > 1 else 0.0
    samples: Dict[str, List[float]] = {name: [] for name in names}
    spent = {name: 0.0 for name in names}
    start = clock()
    rounds = 0
    while True:
        for name in names:
            fn = fns[name]
            if settle > 0:
                t_settle = clock()
                fn()
                while clock() - t_settle < settle:
                    fn()
            calls = max(1, int(block_time / cost[name])) if block_time > 0 and cost[name] > 0 else 1
            for _ in range(calls):
                t0 = clock()
                fn()
                dt = clock() - t0
                samples[name].append(dt * 1e3)
                spent[name] += dt
            cost[name] = spent[name] / len(samples[name])
        rounds += 1
        if progress is not None:
            progress(rounds)
        runs = min(len(v) for v in samples.values())
        if runs < min_runs:
            continue
        if min(spent.values()) >= min_time:
            break
        if max_runs is not None and runs >= max_runs:
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
                               block_time=0.0, clock=clock)["fn"]


def cycling(fn: Callable[[Any], Any], items: Sequence[Any]) -> Callable[[], Any]:
    """A callable doing ``fn`` on the next of ``items`` at each call, round and round."""
    feed = itertools.cycle(items)
    return lambda: fn(next(feed))


def measure_paced(fn: Callable[[], object], count: int, fps: float,
                  clock: Clock = time.perf_counter) -> List[float]:
    """Latencies (ms) of ``count`` calls of ``fn`` made at ``fps`` calls per second, as a paced pipeline makes
    them: a model called 30 times a second runs with colder caches and clocks than one called back to back."""
    period, start, out = 1.0 / fps, time.monotonic(), []
    for k in range(count):
        wait = start + k * period - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        t0 = clock()
        fn()
        out.append((clock() - t0) * 1e3)
    return out
