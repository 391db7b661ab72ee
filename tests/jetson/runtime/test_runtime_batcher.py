"""The batcher: several streams' frames through one runner, in batches, each result back to its stream."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from jetseg.jetson.pipeline import PipelineError
from jetseg.jetson.pipeline.batcher import Batcher, default_max_delay_s
from jetseg.jetson.runners import open_runner


@pytest.fixture
def batch_runner(tiny_bundle):
    with open_runner("onnxrt", tiny_bundle, batch_size=4, threads=1) as active:
        yield active


def _tensor(value: float) -> np.ndarray:
    return np.full((1, 1, 32, 32), value, dtype=np.float32)


def _infer_all(ports, values):
    """Each port infers its own value from a thread of its own; returns {stream: logits}."""
    out = {}

    def one(port, value):
        out[port.stream] = port.infer(_tensor(value))

    threads = [threading.Thread(target=one, args=(p, v)) for p, v in zip(ports, values)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return out


def test_frames_of_every_stream_run_as_one_batch_and_return_to_their_stream(batch_runner):
    batcher = Batcher(batch_runner, max_delay_s=5.0)  # long: the batch is run because every stream has a frame
    ports = [batcher.port(name) for name in ("a", "b", "c")]
    batcher.start()
    try:
        start = time.monotonic()
        got = _infer_all(ports, [0.1, 0.9, 0.2])
        assert time.monotonic() - start < 4.0
    finally:
        batcher.stop()
    assert batcher.sizes == {3: 1}
    for name, value in zip("abc", (0.1, 0.9, 0.2)):
        assert np.array_equal(got[name], batch_runner.infer(_tensor(value))), name
    assert ports[0].last_batch == 3
    assert batcher.stats()["mean_batch"] == 3.0


def test_a_stream_without_a_frame_delays_the_others_at_most_max_delay(batch_runner):
    batcher = Batcher(batch_runner, max_delay_s=0.05)
    alone, _silent = batcher.port("alone"), batcher.port("silent")
    batcher.start()
    try:
        start = time.monotonic()
        alone.infer(_tensor(0.7))
        took = time.monotonic() - start
    finally:
        batcher.stop()
    assert 0.04 <= took < 1.0
    assert batcher.sizes == {1: 1}


def test_streams_left_out_of_a_full_batch_go_first_in_the_next(batch_runner):
    batcher = Batcher(batch_runner, max_batch=2, max_delay_s=0.3)
    ports = [batcher.port(name) for name in ("a", "b", "c")]
    order = []
    original = batch_runner.infer

    def recording(batch):
        order.append(sorted(round(float(v), 1) for v in batch[:, 0, 0, 0]))
        return original(batch)

    batch_runner.infer = recording
    batcher.start()
    try:
        got = _infer_all(ports, [0.1, 0.2, 0.3])
    finally:
        batcher.stop()
        del batch_runner.infer
    assert len(got) == 3
    assert [len(b) for b in order] == [2, 1]
    assert sorted(order[0] + order[1]) == [0.1, 0.2, 0.3]
    # the stream left out ran alone next, and is now last in the round-robin order
    left_out = {0.1: "a", 0.2: "b", 0.3: "c"}[order[1][0]]
    assert batcher._order[-1] == left_out


def test_a_failing_batch_fails_every_stream_in_it(batch_runner):
    batcher = Batcher(batch_runner, max_delay_s=0.01)
    port = batcher.port("a")

    def broken(batch):
        raise RuntimeError("device lost")

    batch_runner.infer = broken
    batcher.start()
    try:
        with pytest.raises(RuntimeError, match="device lost"):
            port.infer(_tensor(0.5))
    finally:
        batcher.stop()
        del batch_runner.infer


def test_errors_name_what_was_received_and_expected(batch_runner):
    with pytest.raises(PipelineError, match=r"batch size 8: expected an integer 1\.\.4"):
        Batcher(batch_runner, max_batch=8)
    batcher = Batcher(batch_runner)
    port = batcher.port("a")
    with pytest.raises(PipelineError, match="unique"):
        batcher.port("a")
    with pytest.raises(PipelineError, match="start"):
        port.infer(_tensor(0.5))


def test_default_delay_is_a_quarter_of_the_frame_period():
    assert default_max_delay_s(40.0) == pytest.approx(0.00625)
    assert default_max_delay_s(None) == pytest.approx(0.25 / 30)
