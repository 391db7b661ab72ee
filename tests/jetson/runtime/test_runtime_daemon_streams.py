"""The daemon with ``sources:``: several streams, one runner, each with its own masks, numbering and health;
reload swaps a new set in (a failed one keeps the old), the watchdog covers every stream, stop drains all."""
from __future__ import annotations

import json

import pytest

from jetseg.jetson.daemon.config import ConfigError, DaemonConfig
from jetseg.jetson.daemon.service import Daemon
from tests.fixtures.waiting import count_lines, run_in_thread, wait_for

SMALL = "synthetic://ultrasound?width=160&height=120"
PACED = SMALL + "&fps=20&realtime=1"


def streams_config(bundle, sources, **more):
    data = {"model": str(bundle.path), "backend": {"name": "onnxrt", "options": {"threads": 1}},
            "sources": sources, "logging": {"interval_s": 0}, "device": {"telemetry": "off"}}
    data.update(more)
    return DaemonConfig.from_dict(data)


def frame_numbers(folder):
    return [json.loads(line)["frame"] for line in (folder / "frames.jsonl").read_text().splitlines()]


def test_three_finite_streams_run_to_their_ends_each_with_its_own_masks(tiny_bundle, tmp_path):
    sources = [{"name": "s%d" % i, "uri": SMALL + "&frames=%d" % (5 + i),
                "sinks": ["masks://%s" % (tmp_path / ("s%d" % i))]} for i in range(3)]
    daemon = Daemon(streams_config(tiny_bundle, sources, batch={"max_delay_ms": 50}))
    assert daemon.run() == 0
    assert daemon.exit_reason == "source ended"
    for i in range(3):
        assert frame_numbers(tmp_path / ("s%d" % i)) == list(range(5 + i))
        assert len(list((tmp_path / ("s%d" % i) / "masks").glob("*.png"))) == 5 + i
    health = daemon.health()
    assert health["status"] == "stopped"
    assert {name: h["frames"] for name, h in health["streams"].items()} == {"s0": 5, "s1": 6, "s2": 7}
    assert daemon.streams is not None and daemon.streams.runner.batch_size == 3
    assert not daemon.streams.runner.is_active  # closed with the daemon


def test_health_watchdog_and_stop_cover_every_stream(tiny_bundle, tmp_path):
    daemon = Daemon(streams_config(tiny_bundle, {"a": PACED, "b": PACED}))
    thread, result = run_in_thread(daemon)
    try:
        wait_for(lambda: daemon.streams is not None and all(
            m.frames >= 3 for m in daemon.streams.metrics.values()), what="frames in both streams")
        health = daemon.health()
        assert set(health["streams"]) == {"a", "b"}
        assert health["status"] == "ok", health
        assert daemon.alive()
        daemon.streams.batcher.beat -= 60  # a batcher that stopped going round its loop is stuck
        assert not daemon.alive()
    finally:
        daemon.request_stop("test stop")
        thread.join(30)
    assert result == {"code": 0} and daemon.exit_reason == "test stop"
    assert daemon.health()["status"] == "stopped"
    assert all(not p.running for p in daemon.streams.pipelines.values())


def test_reload_swaps_the_set_numbers_frames_on_and_keeps_it_after_a_bad_file(tiny_bundle, tmp_path):
    a_dir, b_dir, c_dir = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    first = streams_config(tiny_bundle, [{"name": "a", "uri": PACED, "sinks": ["masks://%s" % a_dir]},
                                         {"name": "b", "uri": PACED, "sinks": ["masks://%s" % b_dir]}])
    second = streams_config(tiny_bundle, [{"name": "a", "uri": PACED, "sinks": ["masks://%s" % a_dir]},
                                          {"name": "c", "uri": PACED, "sinks": ["masks://%s" % c_dir]}],
                            postprocess={"smoothing": 0.5})
    configs = [first]
    daemon = Daemon(first, reload_config=lambda: configs[-1])
    thread, result = run_in_thread(daemon)
    try:
        wait_for(lambda: count_lines(a_dir / "frames.jsonl") >= 3 and count_lines(b_dir / "frames.jsonl") >= 3,
                 what="masks of both streams")
        old = daemon.streams
        metrics_a = old.metrics["a"]
        configs.append(second)
        daemon.request_reload()
        wait_for(lambda: daemon.reloads == 1, what="the reload")
        wait_for(lambda: count_lines(c_dir / "frames.jsonl") >= 3, what="masks of the new stream")
        assert daemon.streams is not old and not old.runner.is_active
        assert set(daemon.streams.parts) == {"a", "c"} and daemon.streams.metrics["a"] is metrics_a
        done_in_b = count_lines(b_dir / "frames.jsonl")
        before = count_lines(a_dir / "frames.jsonl")
        wait_for(lambda: count_lines(a_dir / "frames.jsonl") >= before + 3, what="stream a after the reload")
        # a bad configuration (and a switch to one 'source:') is reported; the running set keeps running
        configs.append(DaemonConfig.from_dict({"source": PACED}))
        assert daemon.reload() is False
        configs.append(streams_config(tiny_bundle, {"a": "nowhere://at-all"}))
        running = daemon.streams
        assert daemon.reload() is False
        assert daemon.streams is running and daemon.reloads == 1 and running.running
        assert count_lines(b_dir / "frames.jsonl") == done_in_b
    finally:
        daemon.request_stop()
        thread.join(30)
    assert result == {"code": 0}
    numbers = frame_numbers(a_dir)  # one stream's numbering goes on over the reload: no mask overwritten
    assert numbers == list(range(len(numbers)))
    assert len(list((a_dir / "masks").glob("*.png"))) == len(numbers)


def test_a_failing_stream_ends_the_daemon_with_its_name(tiny_bundle, tmp_path):
    daemon = Daemon(streams_config(tiny_bundle, {"good": PACED, "bad": SMALL + "&frames=3"}))
    daemon.start()
    from jetseg.errors import SourceError

    def broken(timeout=None):
        raise SourceError("disk unplugged")

    daemon.streams.parts["bad"].reader.source._read = broken
    with pytest.raises(SourceError, match="^stream bad: .*disk unplugged"):
        daemon.run()
    assert not any(p.running for p in daemon.streams.pipelines.values())


def test_check_describes_every_stream(tiny_bundle):
    out = Daemon(streams_config(tiny_bundle, {"a": SMALL, "b": SMALL + "&frames=3"})).check()
    assert out["ok"] and set(out["streams"]) == {"a", "b"}
    assert out["streams"]["b"]["sinks"] == ["null"]


def test_a_reload_cannot_switch_a_single_source_daemon_to_sources(tiny_bundle):
    single = DaemonConfig.from_dict({"model": str(tiny_bundle.path), "source": SMALL + "&frames=2",
                                     "device": {"telemetry": "off"}})
    daemon = Daemon(single, reload_config=lambda: streams_config(tiny_bundle, {"a": SMALL}))
    daemon.start()
    try:
        assert daemon.reload() is False and daemon.streams is None
    finally:
        daemon.shutdown()
    with pytest.raises(ConfigError):
        DaemonConfig.from_dict({"sources": {"a": SMALL}, "source": SMALL})
