"""The pipeline with a real (tiny) ONNX model: every frame of a finite source, slow sinks, live sources."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from jetseg.errors import JetsegError, SourceError
from jetseg.jetson.daemon.assembly import run_pipeline
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.frames.roi import RoiPolicy
from jetseg.jetson.frames.slot import END, Queue, Slot
from jetseg.jetson.pipeline import Pipeline, PipelineError, SourceReader, sink_names
from jetseg.jetson.runners import choose_backend
from jetseg.jetson.sources.base import Source
from jetseg.jetson.sources.reconnect import Reconnecting
from tests.fixtures.media import disc_frame
from tests.fixtures.streams import BrokenSource, GateSink, ListSource, RecordingSink
from tests.fixtures.waiting import wait_for


def _run(pipeline: Pipeline, timeout: float = 60.0) -> None:
    pipeline.start()
    assert pipeline.wait(timeout), "pipeline did not finish"


@pytest.mark.parametrize("post_thread", [None, True, False], ids=["auto", "post-thread", "in-infer-thread"])
def test_finite_source_delivers_every_frame_in_order(runner, post_thread):
    source = ListSource([disc_frame(i) for i in range(40)]).open()
    first, second = RecordingSink(), RecordingSink()
    pipeline = Pipeline(source, runner, [("first", first), ("second", second)], post_thread=post_thread)
    assert pipeline.post_thread is (post_thread if post_thread is not None else False)  # onnxrt on the CPU
    _run(pipeline)
    assert ("postprocess" in pipeline.beats) is pipeline.post_thread
    assert first.indices == list(range(40))
    assert second.indices == list(range(40))
    summary = pipeline.summary()
    assert summary["frames"] == 40 and summary["captured"] == 40
    assert summary["dropped"] == {"source": 0, "pipeline": 0}
    assert summary["sinks"]["first"]["written"] == 40 and summary["sinks"]["first"]["dropped"] == 0
    assert pipeline.reader.state == "ended"
    # per-stage stamps, in stage order, on every frame
    for stamps in first.stamps:
        order = [stamps[k] for k in ("captured", "preprocessed", "inferred", "postprocessed", "sink")]
        assert order == sorted(order)
    stages = summary["latency_ms"]["stages"]
    assert set(stages) == {"capture", "preprocess", "infer", "postprocess", "sink:first", "sink:second"}
    assert stages["infer"]["count"] == 40
    assert summary["latency_ms"]["capture_to_sink"]["p50"] > 0


def test_masks_follow_the_model(runner):
    """The tiny model marks bright pixels: the mask is the disc, mapped back to the full 64x48 frame."""
    image = disc_frame(0)
    source = ListSource([image]).open()
    got = []

    class Keep(RecordingSink):
        def write(self, result):
            got.append(result)
            super().write(result)

    _run(Pipeline(source, runner, [("keep", Keep())]))
    (result,) = got
    assert result.mask.shape == image.shape and result.mask.dtype == np.uint8
    disc = image > 128
    agreement = (result.mask.astype(bool) == disc).mean()
    assert agreement > 0.97
    assert result.areas_px["lesion"] == int(result.mask.sum())
    assert result.areas_mm2 is None
    assert result.roi == (0, 0, 64, 48)


def test_slow_sink_drops_and_does_not_stall_the_others(runner):
    """A sink stuck in write() loses frames (counted); capture, inference and the other sink go on."""
    source = ListSource([disc_frame(i) for i in range(60)]).open()
    gate, fast = GateSink(), RecordingSink(blocking_ok=True)
    pipeline = Pipeline(source, runner, [("stuck", gate), ("fast", fast)], sink_queue=4)
    pipeline.start()
    try:
        deadline = time.monotonic() + 60
        while len(fast.indices) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fast.indices == list(range(60))  # all frames reached the fast sink while the other was stuck
        assert gate.indices == []
        assert pipeline.metrics.frames == 60
    finally:
        gate.release.set()
    assert pipeline.wait(30)
    summary = pipeline.summary()
    stuck = summary["sinks"]["stuck"]
    assert stuck["written"] + stuck["dropped"] == 60
    assert stuck["written"] <= 1 + 4  # the frame in write() and a full queue of 4
    assert summary["sinks"]["fast"] == dict(summary["sinks"]["fast"], written=60, dropped=0)


def test_blocking_ok_sink_gets_every_frame_of_a_finite_source(runner):
    slow = RecordingSink(blocking_ok=True, delay=0.01)
    source = ListSource([disc_frame(i) for i in range(25)]).open()
    _run(Pipeline(source, runner, [("slow", slow)], sink_queue_blocking=2))
    assert slow.indices == list(range(25))


class SlowRunner:
    """Wraps an active runner; each inference takes at least ``delay`` seconds (a model slower than the camera)."""

    def __init__(self, runner, delay):
        self.runner, self.delay, self.spec, self.name = runner, delay, runner.spec, "slow"
        self.last_inference_ms = 0.0

    def infer(self, batch):
        time.sleep(self.delay)
        return self.runner.infer(batch)


def test_live_source_newest_frame_wins(runner):
    """A camera faster than the model: frames are dropped before inference, never queued; the newest is used."""
    source = ListSource([disc_frame(i) for i in range(200)], live=True).open()
    sink = RecordingSink(blocking_ok=True)
    pipeline = Pipeline(source, SlowRunner(runner, 0.005), [("rec", sink)], max_frames=200, queue_size=8)
    _run(pipeline)
    summary = pipeline.summary()
    assert summary["live"] is True and summary["captured"] == 200
    # every captured frame was either processed or dropped before inference; none is left queued
    assert summary["frames"] + summary["dropped"]["pipeline"] == 200
    assert summary["dropped"]["pipeline"] > 100
    assert sink.indices == sorted(sink.indices) and sink.indices[-1] == 199  # the newest frame was processed
    assert summary["sinks"]["rec"]["written"] == summary["frames"]  # blocking_ok does not matter when live


def test_finite_source_frames_are_read_just_in_time(runner):
    """With a slow model a file is not read ahead: a frame is read only when inference can take the last one,
    so it does not wait in line (low capture-to-sink latency)."""
    slow = SlowRunner(runner, 0.02)
    finished = []
    infer = slow.infer

    def counting(batch):
        out = infer(batch)
        finished.append(1)
        return out

    slow.infer = counting
    ahead = []

    class Watched(ListSource):
        def _read(self, timeout):
            ahead.append(self._next - len(finished))  # frames read (this one included) but not inferred yet
            return super()._read(timeout)

    sink = RecordingSink()
    _run(Pipeline(Watched([disc_frame(i) for i in range(12)]).open(), slow, [("rec", sink)]))
    assert sink.indices == list(range(12))
    assert max(ahead) <= 1, ahead


def test_live_source_slow_sink_drops_too(runner):
    gate = GateSink()
    source = ListSource([disc_frame(i) for i in range(100)], live=True).open()
    pipeline = Pipeline(source, runner, [("stuck", gate)], max_frames=100)
    pipeline.start()
    try:
        wait_for(lambda: pipeline.metrics.frames + pipeline.metrics.dropped["pipeline"] >= 100, what="all frames")
    finally:
        gate.release.set()
    assert pipeline.wait(30)
    stuck = pipeline.summary()["sinks"]["stuck"]
    assert stuck["written"] + stuck["dropped"] == pipeline.metrics.frames and stuck["written"] <= 1 + 4


def test_max_frames_and_duration_stop_an_endless_source(runner):
    class Endless(Source):
        def _read(self, timeout):
            return Frame(index=self.delivered, image=disc_frame(self.delivered), timestamp=time.monotonic())

    sink = RecordingSink()
    _run(Pipeline(Endless("endless://").open(), runner, [("rec", sink)], max_frames=7))
    assert sink.indices == list(range(7))
    pipeline = Pipeline(Endless("endless://").open(), runner, [("rec", RecordingSink())], duration_s=0.3)
    _run(pipeline)
    assert pipeline.summary()["frames"] > 0


def test_auto_roi_holds_the_first_frames_and_keeps_their_order(runner):
    images = []
    for _ in range(6):
        img = np.zeros((120, 160), np.uint8)
        img[20:100, 40:130] = 90 + (np.arange(90) % 7).astype(np.uint8)[None, :] * 10
        images.append(img)
    sink = RecordingSink()
    pipeline = Pipeline(ListSource(images).open(), runner, [("rec", sink)],
                        roi=RoiPolicy(runner.spec, "auto", auto_frames=4))
    _run(pipeline)
    assert sink.indices == list(range(6))
    assert pipeline.summary()["roi"] == [40, 20, 90, 80]


def test_auto_roi_on_black_frames_falls_back_to_the_whole_frame(runner):
    sink = RecordingSink()
    pipeline = Pipeline(ListSource([np.zeros((48, 64), np.uint8)] * 3).open(), runner, [("rec", sink)],
                        roi=RoiPolicy(runner.spec, "auto", auto_frames=2))
    _run(pipeline)
    assert sink.indices == [0, 1, 2]


def test_stage_failure_stops_the_pipeline_and_is_raised(runner):
    pipeline = Pipeline(BrokenSource(disc_frame(0), good=3).open(), runner, [("rec", RecordingSink())])
    pipeline.start()
    with pytest.raises(SourceError, match="disk unplugged"):
        pipeline.wait(30)
    assert not pipeline.running


def test_failing_sink_is_counted_and_others_continue(runner):
    class Failing(RecordingSink):
        def write(self, result):
            raise OSError("No space left on device")

    good = RecordingSink()
    pipeline = Pipeline(ListSource([disc_frame(i) for i in range(5)]).open(), runner,
                        [("bad", Failing()), ("good", good)])
    _run(pipeline)
    assert good.indices == list(range(5))
    assert pipeline.summary()["sinks"]["bad"]["errors"] == 5
    assert pipeline.metrics.health()["status"] in ("degraded", "stopped")
    assert "sink errors: bad" in pipeline.metrics.health()["reasons"]


class _Flaky(Source):
    """A live source without its own reconnection: fails after 3 frames of each connection."""

    live = True

    def __init__(self):
        super().__init__("flaky://")
        self.opens = 0
        self._served = 0

    def _open(self):
        self.opens += 1
        self._served = 0

    def _read(self, timeout):
        if self._served >= 3:
            raise SourceError("connection reset")
        self._served += 1
        return Frame(index=self._served, image=disc_frame(self._served), timestamp=time.monotonic())


def test_reader_gets_a_lost_live_source_reopened_with_backoff():
    """A live source without its own reconnection is wrapped in the source layer's Reconnecting."""
    source = _Flaky()
    metrics = Metrics()
    capture = SourceReader(source, reconnect_initial_s=0.01, reconnect_max_s=0.02, metrics=metrics)
    assert isinstance(capture.source, Reconnecting) and capture.source.inner is source
    capture.open()
    indices = []
    deadline = time.monotonic() + 10
    while len(indices) < 10 and time.monotonic() < deadline:
        frame = capture.read()
        assert frame is not END
        if frame is not None:
            indices.append(frame.index)
    assert indices == list(range(10))  # renumbered across reconnections
    assert source.opens >= 4 and metrics.reconnects >= 3
    assert capture.source.reconnects == metrics.reconnects and capture.source.failures >= 3
    assert capture.state == "running"


def test_reader_mirrors_a_self_healing_source():
    class Healing(Source):
        live = True

        def __init__(self):
            super().__init__("healing://")
            self.reconnects = 0
            self.last_error = "no frame (stream lost or ended)"
            self.silent = True

        def _read(self, timeout):
            time.sleep(0.01)
            if self.silent:
                return None
            return Frame(index=0, image=disc_frame(0), timestamp=time.monotonic())

    source = Healing()
    metrics = Metrics()
    capture = SourceReader(source, stall_timeout_s=0.05, metrics=metrics)
    assert capture.source is source  # it reconnects by itself: not wrapped
    capture.open()
    for _ in range(10):
        assert capture.read() is None
    assert capture.state == "reconnecting" and metrics.health()["status"] == "degraded"
    assert "stream lost" in metrics.health()["reasons"][0]
    source.reconnects, source.silent = 1, False
    assert capture.read() is not None
    assert capture.state == "running" and metrics.reconnects == 1


def test_pipeline_hand_over_policies():
    """Live sources: newest wins (drops counted); finite sources: backpressure (the producer waits)."""
    latest = Slot(2)
    assert [latest.put(i) for i in range(5)] == [0, 0, 1, 1, 1]
    assert latest.dropped == 3 and latest.get() == 3 and latest.get() == 4
    latest.close()
    assert latest.get() is END
    block = Queue(1)
    block.put("a")
    done = threading.Event()

    def producer():
        block.put("b")
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    assert not done.wait(0.2)  # backpressure: the producer waits for room
    assert block.get() == "a"
    assert done.wait(5) and block.get() == "b"
    thread.join(5)
    assert not thread.is_alive()


def test_sink_names_are_unique_labels():
    assert sink_names(["file://a.mp4", "masks://d", "file://b.mp4", "null://"]) == ["file", "masks", "file-2",
                                                                                   "null"]


def test_run_pipeline_returns_the_benchmark_statistics(tiny_bundle, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    import cv2

    for i in range(6):
        cv2.imwrite(str(folder / ("f%02d.png" % i)), disc_frame(i))
    stats = run_pipeline(tiny_bundle, str(folder), ["null://", "masks://%s" % (tmp_path / "m")],
                         backend_options={"threads": 1})
    assert stats["frames"] == 6 and stats["captured"] == 6
    for key in ("elapsed_s", "fps", "fps_wall", "latency_ms", "dropped", "sinks", "backend", "roi", "source"):
        assert key in stats
    assert stats["sinks"]["masks"]["written"] == 6
    assert stats["backend"]["backend"] == choose_backend(tiny_bundle)[0]  # the default backend is auto
    assert len(list((tmp_path / "m" / "masks").glob("*.png"))) == 6


def test_run_pipeline_needs_a_limit_for_an_endless_source(tiny_bundle):
    with pytest.raises(PipelineError, match="has no end; give duration_s or max_frames"):
        run_pipeline(tiny_bundle, "synthetic://ultrasound")
    assert issubclass(PipelineError, JetsegError)
