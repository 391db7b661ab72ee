"""``jetseg run --source NAME=URI ...``: several streams in one daemon from the command line."""
from __future__ import annotations

import json

import pytest

from jetseg.jetson.daemon.config import ConfigError, DaemonConfig, SinkConfig
from jetseg.jetson.daemon.streams import split_sources, with_named_sources
from tests.fixtures.processes import daemon, jetseg, last_line, logtext, stop
from tests.fixtures.waiting import count_lines, wait_for

PACED = "synthetic://ultrasound?width=160&height=120&fps=20&realtime=1"


def test_named_and_plain_sources_are_told_apart():
    assert split_sources([]) == (None, {})
    assert split_sources(["synthetic://ultrasound?frames=3"]) == ("synthetic://ultrasound?frames=3", {})
    assert split_sources(["left=v4l2:///dev/video0", "right=udp://0.0.0.0:5000?fps=30"]) == (
        None, {"left": "v4l2:///dev/video0", "right": "udp://0.0.0.0:5000?fps=30"})


@pytest.mark.parametrize("values, message", [
    (["a=x.mp4", "b.mp4"], "--source b.mp4 has no stream name next to --source a=...; name every stream"),
    (["a.mp4", "b.mp4"], "--source is given 2 times without names (a.mp4, b.mp4); name each stream"),
    (["a=x.mp4", "a=y.mp4"], "--source a is given twice"),
])
def test_mixed_or_repeated_sources_are_refused(values, message):
    with pytest.raises(ConfigError) as info:
        split_sources(values)
    assert str(info.value).startswith(message)


def test_named_sources_join_the_config_streams_and_take_the_sinks_per_stream():
    config = DaemonConfig.from_dict({"sources": [{"name": "a", "uri": "old.mp4", "sinks": ["masks://keep"]}]})
    config.source.realtime = True
    joined = with_named_sources(config, {"a": "new.mp4", "b": "b.mp4"})
    assert [(s.name, s.uri, s.sinks) for s in joined.sources] == [
        ("a", "new.mp4", [SinkConfig("masks://keep")]), ("b", "b.mp4", None)]
    assert joined.sources[1].realtime is True  # --realtime / --source-option reach the new streams
    both = with_named_sources(DaemonConfig(), {"a": "a.mp4", "b": "b.mp4"}, ["masks:///data/{stream}", "null://"])
    assert [s.sinks[0].uri for s in both.sources] == ["masks:///data/a", "masks:///data/b"]
    viewer = with_named_sources(DaemonConfig(), {"a": "a.mp4", "b": "b.mp4"}, ["http://127.0.0.1:8080"])
    assert [s.sinks[0].uri for s in viewer.sources] == ["http://127.0.0.1:8080"] * 2  # one viewer, a page each
    with pytest.raises(ConfigError, match=r"--sink masks://out would be shared by 2 streams; put \{stream\} in it"):
        with_named_sources(DaemonConfig(), {"a": "a.mp4", "b": "b.mp4"}, ["masks://out"])


def test_run_two_named_sources_until_sigterm(tiny_bundle, tmp_path):
    out = tmp_path / "out"
    with daemon("--model", str(tiny_bundle.path), "--backend", "onnxrt", "--backend-option", "threads=1",
                "--source", "left=" + PACED, "--source", "right=" + PACED,
                "--sink", "masks://%s/{stream}" % out) as proc:
        wait_for(lambda: proc.poll() is not None or (count_lines(out / "left" / "frames.jsonl") >= 5
                                                     and count_lines(out / "right" / "frames.jsonl") >= 5),
                 timeout=120, what="masks of both streams")
        assert proc.poll() is None, logtext(proc)
        assert stop(proc) == 0, logtext(proc)
        log = logtext(proc)
    assert "Traceback" not in log and "stopped (SIGTERM)" in log
    assert "2 streams (left, right)" in log
    for name in ("left", "right"):
        frames = [json.loads(line)["frame"] for line in (out / name / "frames.jsonl").read_text().splitlines()]
        assert frames == list(range(len(frames)))
        assert len(list((out / name / "masks").glob("*.png"))) == len(frames)


def test_a_shared_sink_with_named_sources_is_one_line(tiny_bundle, tmp_path):
    done = jetseg("run", "--model", tiny_bundle.path, "--source", "a=" + PACED, "--source", "b=" + PACED,
                  "--sink", "masks://%s" % tmp_path, "--check")
    assert last_line(done).startswith("jetseg run: error: --sink masks://%s would be shared by 2 streams" % tmp_path)
