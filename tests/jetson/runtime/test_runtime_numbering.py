"""Frame numbers go on across every reload of the daemon, successful or failed (mask files never overwritten)."""
from __future__ import annotations

import json
import socket

import numpy as np

from jetseg.jetson.daemon.config import DaemonConfig
from jetseg.jetson.daemon.flags import apply_overrides
from jetseg.jetson.daemon.service import Daemon
from jetseg.jetson.pipeline.reader import SourceReader
from jetseg.jetson.pipeline.stages import ReadFrames
from tests.fixtures.streams import ListSource
from tests.fixtures.waiting import count_lines, run_in_thread, wait_for

PACED = "synthetic://ultrasound?width=160&height=120&fps=20&realtime=1"


def _config(bundle, sinks, source=PACED):
    return DaemonConfig.from_dict({"model": str(bundle.path), "backend": {"options": {"threads": 1}},
                                   "source": source, "sinks": sinks, "logging": {"interval_s": 0},
                                   "device": {"telemetry": "off"}})


def _frames(path):
    return [json.loads(line)["frame"] for line in path.read_text().splitlines()]


def _reader(frames, live=False):
    reader = SourceReader(ListSource([np.zeros((4, 4), np.uint8)] * frames, live=live))
    reader.open()
    return reader


def _indices(read, calls):
    out = []
    for _ in range(calls):
        out.extend(item.frame.index for item in read.process(None))
    return out


def test_a_pipeline_counts_its_own_frames_and_the_reader_counts_on_across_pipelines():
    reader = _reader(10)
    first = ReadFrames(reader, max_frames=3)
    first.start()
    assert _indices(first, 5) == [0, 1, 2] and first.captured == 3 and first.ended
    first.stop()
    second = ReadFrames(reader, max_frames=3)  # a reload's pipeline on the same reader
    second.start()
    assert second.captured == 0
    assert _indices(second, 5) == [3, 4, 5] and second.captured == 3
    assert reader.read_count == reader.source.delivered == 6 and reader.next_index == 6


def test_a_new_reader_numbers_on_from_the_one_it_replaces():
    old = _reader(4, live=True)
    assert [old.read().index for _ in range(4)] == [0, 1, 2, 3]
    new = _reader(3)
    new.continue_after(old)
    assert [new.read().index for _ in range(3)] == [4, 5, 6]
    assert new.read_count == 3 and new.next_index == 7


def _assert_numbered_on(out, more):
    """Frames keep increasing (none written twice) and PNGs were not overwritten."""
    before = count_lines(out / "frames.jsonl")
    wait_for(lambda: count_lines(out / "frames.jsonl") >= before + more, what="frames after the reload")
    frames = _frames(out / "frames.jsonl")
    assert frames == sorted(set(frames)), "frame numbers restarted or repeated: %s" % frames
    assert len(list((out / "masks").glob("*.png"))) >= len(frames)


def test_a_reload_that_fails_midway_keeps_numbering_frames(tiny_bundle, tmp_path):
    out = tmp_path / "m"
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    base = _config(tiny_bundle, ["masks://%s" % out])
    broken = apply_overrides(base, {"sinks": ["masks://%s" % out,
                                              "http://127.0.0.1:%d" % holder.getsockname()[1]]})
    daemon = Daemon(base, reload_config=lambda: broken)
    thread, result = run_in_thread(daemon)
    try:
        wait_for(lambda: count_lines(out / "frames.jsonl") >= 3, what="masks")
        daemon.request_reload()  # the http sink cannot bind: restarted with the previous configuration
        wait_for(lambda: daemon.restarts == 1, what="the fallback to the previous configuration")
        _assert_numbered_on(out, 3)
    finally:
        holder.close()
        daemon.request_stop()
        thread.join(30)
    assert result == {"code": 0}


def test_reloads_that_keep_or_replace_the_source_keep_numbering_frames(tiny_bundle, tmp_path):
    out = tmp_path / "m"
    base = _config(tiny_bundle, ["masks://%s" % out])
    configs = [apply_overrides(base, {"postprocess.smoothing": 0.5}),  # the source is taken over
               apply_overrides(base, {"source.uri": PACED + "&seed=3"})]  # a new source
    daemon = Daemon(base, reload_config=lambda: configs[daemon.reloads])
    thread, result = run_in_thread(daemon)
    try:
        wait_for(lambda: count_lines(out / "frames.jsonl") >= 3, what="masks")
        for done in (1, 2):
            daemon.request_reload()
            wait_for(lambda done=done: daemon.reloads == done, what="reload %d" % done)
            _assert_numbered_on(out, 3)
    finally:
        daemon.request_stop()
        thread.join(30)
    assert result == {"code": 0}
