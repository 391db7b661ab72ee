"""Stages know nothing about threads: the same graph under the serial and the threaded scheduler; the
source layer's reconnection wrapper."""
from __future__ import annotations

import gc
import threading
import time

import pytest

from jetseg.errors import SourceError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.pipeline import (
    ConfigError,
    Pipeline,
    SerialScheduler,
    Stage,
    ThreadedScheduler,
    chain,
)
from jetseg.jetson.sources.base import Source
from jetseg.jetson.sources.reconnect import Backoff, Reconnecting, has_an_end, self_healing
from tests.fixtures.media import disc_frame
from tests.fixtures.streams import BrokenSource, ListSource, RecordingSink


class Count(Stage):
    """A source stage: 0, 1, ..., n-1."""

    name = "capture"

    def __init__(self, n):
        super().__init__()
        self.n, self.next = n, 0

    def process(self, item):
        if self.next >= self.n:
            self.ended = True
            return []
        self.next += 1
        return [self.next - 1]


class Pairs(Stage):
    """Holds items back and releases them two at a time (and the odd one at the end, in flush)."""

    name = "pairs"

    def __init__(self):
        super().__init__()
        self.held, self.calls = [], []

    def start(self):
        self.calls.append("start")

    def process(self, item):
        self.held.append(item)
        if len(self.held) < 2:
            return []
        out, self.held = self.held, []
        return out

    def flush(self):
        self.calls.append("flush")
        out, self.held = self.held, []
        return out

    def stop(self):
        self.calls.append("stop")


class Collect(Stage):
    name = "collect"
    timed = False

    def __init__(self):
        super().__init__()
        self.items, self.threads = [], set()

    def process(self, item):
        self.items.append(item)
        self.threads.add(threading.current_thread().name)
        return []


@pytest.mark.parametrize("scheduler", [SerialScheduler, lambda: ThreadedScheduler(live=False,
                                                                                   own_thread=("pairs",))])
def test_same_stages_under_either_scheduler(scheduler):
    pairs, first, second = Pairs(), Collect(), Collect()
    graph = chain(Count(7), pairs, fan_out=[first, second])
    run = scheduler()
    run.start(graph, Metrics())
    assert run.wait(30)
    assert first.items == second.items == list(range(7))  # the odd last item came out of flush()
    assert pairs.calls == ["start", "flush", "stop"]


def test_serial_scheduler_runs_every_stage_in_the_calling_thread(runner):
    sink = RecordingSink()
    threads = set()

    class Where(RecordingSink):
        def write(self, result):
            threads.add(threading.current_thread().name)
            super().write(result)

    where = Where()
    pipeline = Pipeline(ListSource([disc_frame(i) for i in range(12)]).open(), runner,
                        [("rec", sink), ("where", where)], scheduler="serial")
    summary = pipeline.run()  # returns at the end of the stream
    assert threads == {threading.current_thread().name}
    assert sink.indices == where.indices == list(range(12))
    assert summary["frames"] == 12 and summary["captured"] == 12
    assert summary["dropped"] == {"source": 0, "pipeline": 0}
    assert summary["sinks"]["rec"] == dict(summary["sinks"]["rec"], written=12, dropped=0)
    assert set(summary["latency_ms"]["stages"]) >= {"capture", "preprocess", "infer", "postprocess"}
    assert pipeline.reader.state == "ended" and not pipeline.running
    for stamps in sink.stamps:
        order = [stamps[k] for k in ("captured", "preprocessed", "inferred", "postprocessed", "sink")]
        assert order == sorted(order)


def test_serial_scheduler_raises_a_stage_failure(runner):
    sink = RecordingSink()
    pipeline = Pipeline(BrokenSource(disc_frame(0), good=2).open(), runner, [("rec", sink)], scheduler="serial")
    pipeline.start()
    with pytest.raises(SourceError, match="disk unplugged"):
        pipeline.wait(30)
    assert sink.indices == [0, 1] and not pipeline.running


def test_unknown_scheduler_is_named(runner):
    with pytest.raises(ConfigError, match="config field 'pipeline.scheduler' is 'fibers'; expected one of auto, "
                       "threaded, latency, serial"):
        Pipeline(ListSource([disc_frame(0)]), runner, [], scheduler="fibers")


class _Dropping(Source):
    """A live source that ends after 2 frames per connection, and fails to open every other time."""

    live = True

    def __init__(self):
        super().__init__("dropping://")
        self.opens = self.served = 0

    def _open(self):
        self.opens += 1
        if self.opens % 2 == 0:
            raise OSError("connection refused")
        self.served = 0
        self.ended = False

    def _read(self, timeout):
        if self.served >= 2:
            self.ended = True
            return None
        self.served += 1
        return Frame(index=self.served, image=disc_frame(self.served), timestamp=time.monotonic())


def test_reconnecting_reopens_with_backoff_and_counts():
    inner = _Dropping()
    source = self_healing(inner, backoff=0.01, backoff_max=0.02, stall_timeout_s=None)
    assert isinstance(source, Reconnecting)
    source.open()
    frames, deadline = 0, time.monotonic() + 10
    while frames < 6 and time.monotonic() < deadline:
        frames += source.read(timeout=0.05) is not None
    assert frames == 6
    assert source.reconnects >= 2 and source.failures >= source.reconnects + 1
    assert "connection refused" in source.last_error or source.last_error == "stream ended"
    stats = source.stats()
    assert stats["reconnects"] == source.reconnects and stats["state"] in ("running", "reconnecting")
    source.close()
    assert not inner.is_open


def test_finite_and_self_reconnecting_sources_are_not_wrapped():
    finite = ListSource([disc_frame(0)])
    assert self_healing(finite) is finite
    healing = ListSource([disc_frame(0)], live=True)
    healing.reconnects = 0
    assert self_healing(healing) is healing


def test_a_paced_source_with_an_end_is_not_wrapped():
    """A paced replay with a frame count ends; Reconnecting would reopen it and loop it for ever."""
    paced = ListSource([disc_frame(0), disc_frame(1)], live=True)
    assert has_an_end(paced) and self_healing(paced) is paced
    assert not has_an_end(_Dropping()) and isinstance(self_healing(_Dropping()), Reconnecting)


def test_backoff_doubles_to_its_limit_and_resets():
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5
    with pytest.raises(ValueError, match="backoff must be 0 < first <= largest"):
        Backoff(2.0, 1.0)


class _Timed:
    """Wraps an activated runner: records the thread of every call, and can take ``delay_s`` longer."""

    def __init__(self, inner, delay_s=0.0):
        self.inner, self.delay_s, self.threads = inner, delay_s, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def infer(self, batch):
        self.threads.append(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.inner.infer(batch)


def _paced(n=6, fps=30.0):
    from jetseg.jetson.pipeline import SourceReader

    return SourceReader(ListSource([disc_frame(i) for i in range(n)]), realtime=True, fps=fps)


def test_auto_runs_a_paced_source_capture_to_mask_in_one_thread_when_the_model_fits(runner):
    timed, where = _Timed(runner), set()

    class Where(RecordingSink):
        def write(self, result):
            where.add(threading.current_thread().name)
            super().write(result)

    sink = Where()
    reader = _paced()
    reader.open()
    pipeline = Pipeline(reader, timed, [("rec", sink)])
    assert pipeline.schedule["name"] == "latency"
    assert "fits the 33.3 ms frame period" in pipeline.schedule["reason"]
    warm_up_calls = len(timed.threads)
    assert warm_up_calls == 3  # the probe, in the constructing thread
    gc.unfreeze()
    summary = pipeline.run()
    assert gc.get_freeze_count() > 0  # the heap was settled before the first frame (settle_heap)
    assert summary["scheduler"]["name"] == "latency" and sink.indices == list(range(6))
    frame_threads = set(timed.threads[warm_up_calls:])
    assert frame_threads == {"jetseg-capture"}  # capture, preprocess, infer, postprocess: one thread
    assert where and not where & frame_threads  # sinks keep their own thread
    assert summary["latency_ms"]["source_delay"]["count"] == 6
    for stamps in sink.stamps:
        order = [stamps[k] for k in ("captured", "read", "preprocessed", "inferred", "postprocessed", "sink")]
        assert order == sorted(order)


def test_auto_overlaps_when_the_model_takes_most_of_the_frame_period(runner):
    timed = _Timed(runner, delay_s=0.03)  # 30 ms of a 33 ms period
    reader = _paced(n=4)
    reader.open()
    pipeline = Pipeline(reader, timed, [("rec", RecordingSink())])
    assert pipeline.schedule["name"] == "threaded"
    assert "takes more than 75% of the 33.3 ms frame period" in pipeline.schedule["reason"]
    pipeline.run()
    assert set(timed.threads[3:]) == {"jetseg-infer"}


def test_auto_overlaps_for_a_finite_source_and_a_live_one_of_unknown_rate(runner):
    timed = _Timed(runner)
    finite = Pipeline(ListSource([disc_frame(0)]).open(), timed, [])
    assert finite.schedule["name"] == "threaded" and "finite source" in finite.schedule["reason"]
    live = Pipeline(ListSource([disc_frame(0)], live=True).open(), timed, [])
    assert live.schedule["name"] == "threaded" and "unknown frame rate" in live.schedule["reason"]
    assert timed.threads == []  # no warm-up probe when the rate decides nothing


def test_a_configured_scheduler_is_used_as_given(runner):
    reader = _paced()
    reader.open()
    pipeline = Pipeline(reader, runner, [], scheduler="threaded")
    assert pipeline.schedule == {"name": "threaded", "reason": "configured"}
