"""The timing helper, driven by a fake clock: counts and statistics, never wall-clock assertions."""
from __future__ import annotations

import time

import pytest

from jetseg.benchmarks.timing import cycling, measure, measure_interleaved, measure_paced, summarize


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _worker(clock, costs_s, log=None, name=""):
    """A callable that 'takes' the next cost (seconds, exact binary fractions) on the fake clock."""
    state = {"i": 0}

    def fn():
        clock.now += costs_s[state["i"] % len(costs_s)]
        state["i"] += 1
        if log is not None:
            log.append(name)
    fn.state = state
    return fn


def test_runs_until_min_time_after_warmup():
    clock = FakeClock()
    fn = _worker(clock, [0.25])
    stats = measure(fn, warmup=3, min_time=2.5, min_runs=2, clock=clock)
    assert stats.runs == 10  # 10 x 0.25 s reaches 2.5 s
    assert fn.state["i"] == 13  # plus 3 warm-up calls
    assert stats.p50 == pytest.approx(250.0)
    assert stats.fps == pytest.approx(4.0)
    assert stats.std == pytest.approx(0.0)


def test_min_runs_wins_over_min_time():
    clock = FakeClock()
    stats = measure(_worker(clock, [0.5]), warmup=0, min_time=0.25, min_runs=7, clock=clock)
    assert stats.runs == 7


def test_max_runs_caps_a_slow_callable():
    clock = FakeClock()
    stats = measure(_worker(clock, [1.0]), warmup=0, min_time=60.0, min_runs=1, max_runs=4, clock=clock)
    assert stats.runs == 4


def test_strict_round_robin_and_stop_on_slowest_accumulation():
    clock = FakeClock()
    log = []
    fns = {"fast": _worker(clock, [0.125], log, "fast"), "slow": _worker(clock, [0.5], log, "slow")}
    stats = measure_interleaved(fns, warmup=1, min_time=2.5, min_runs=1, clock=clock,
                                batch_sizes={"slow": 4}, block_time=0, settle_time=0)
    # one warm-up call each, then alternating timed calls
    assert log[:6] == ["fast", "slow", "fast", "slow", "fast", "slow"]
    # every row gets the same number of rounds; the fast one needs 20 x 0.125 s to reach 2.5 s
    assert stats["fast"].runs == stats["slow"].runs == 20
    assert stats["slow"].fps == pytest.approx(8.0)  # batch of 4 every 0.5 s
    assert stats["fast"].fps == pytest.approx(8.0)


def test_percentiles_of_known_samples():
    samples = list(range(1, 101))  # 1..100 ms
    stats = summarize(samples)
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.mean == pytest.approx(50.5)
    assert stats.min == 1 and stats.max == 100
    assert set(stats.latency_ms()) == {"p50", "p90", "p99", "mean", "std", "min", "max"}


def test_empty_and_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="no timing samples"):
        summarize([])
    with pytest.raises(ValueError, match="nothing to measure"):
        measure_interleaved({})


def test_blocks_with_untimed_settle_calls():
    clock = FakeClock()
    log = []
    fns = {"fast": _worker(clock, [0.125], log, "fast"), "slow": _worker(clock, [0.5], log, "slow")}
    stats = measure_interleaved(fns, warmup=1, min_time=2.0, min_runs=1, clock=clock, block_time=1.0,
                                settle_time=0.1)
    # per round: fast gets 1 untimed + 8 timed calls (1 s), slow 1 untimed + 2 timed (1 s); 2 rounds reach 2 s
    one_round = ["fast"] * 9 + ["slow"] * 3
    assert log == ["fast", "slow"] + one_round * 2
    assert stats["fast"].runs == 16 and stats["slow"].runs == 4
    assert stats["fast"].total_s == pytest.approx(2.0) and stats["slow"].total_s == pytest.approx(2.0)


def test_single_callable_has_no_settle_calls():
    clock = FakeClock()
    fn = _worker(clock, [0.5])
    stats = measure_interleaved({"only": fn}, warmup=0, min_time=1.0, min_runs=1, clock=clock, settle_time=5.0)
    assert stats["only"].runs == 2 and fn.state["i"] == 2


def test_cycling_goes_round_the_items():
    seen = []
    step = cycling(seen.append, ["a", "b", "c"])
    for _ in range(7):
        step()
    assert seen == ["a", "b", "c", "a", "b", "c", "a"]


def test_measure_paced_calls_at_the_given_rate():
    calls = []
    start = time.monotonic()
    samples = measure_paced(lambda: calls.append(time.monotonic()), count=5, fps=100.0)
    assert len(samples) == len(calls) == 5 and all(s >= 0 for s in samples)
    # call k is made no earlier than k periods after the start (sleep never returns early)
    assert all(t - start >= k * 0.01 for k, t in enumerate(calls))
