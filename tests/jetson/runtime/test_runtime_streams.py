"""Several streams in one process: one runner, batched, each stream with its own counters, sinks and health."""
from __future__ import annotations

import pytest

from jetseg.jetson.daemon.config import DaemonConfig
from jetseg.jetson.daemon.streams import StreamSet, run_streams
from jetseg.jetson.pipeline import PipelineError


def _config(tiny_bundle, sources, **sections):
    return DaemonConfig.from_dict(dict({"model": str(tiny_bundle.path),
                                        "backend": {"name": "onnxrt", "options": {"threads": 1}},
                                        "device": {"telemetry": "off"}, "sources": sources}, **sections))


def test_every_frame_of_every_stream_goes_through_one_batched_runner(tiny_bundle, tmp_path):
    sources = [{"name": "s%d" % i, "uri": "synthetic://ultrasound?frames=%d" % (12 + i),
                "sinks": ["masks://%s" % (tmp_path / ("s%d" % i))]} for i in range(3)]
    summary = run_streams(_config(tiny_bundle, sources, batch={"max_delay_ms": 200}), tiny_bundle)
    assert {name: s["frames"] for name, s in summary["streams"].items()} == {"s0": 12, "s1": 13, "s2": 14}
    assert summary["frames"] == 39
    batcher = summary["batcher"]
    assert batcher["frames"] >= 39 and batcher["max_batch"] == 3
    assert max(int(n) for n in batcher["sizes"]) > 1, batcher  # the streams shared batches
    for i in range(3):  # each stream wrote its own masks
        assert len(list((tmp_path / ("s%d" % i)).glob("masks/*.png"))) == 12 + i
    assert summary["backend"]["backend"] == "onnxrt"


def test_each_stream_has_its_own_metrics_and_health_and_one_exposition_labels_every_series(tiny_bundle):
    from prometheus_client.parser import text_string_to_metric_families

    config = _config(tiny_bundle, {"a": "synthetic://ultrasound?frames=3", "b": "synthetic://endoscopy?frames=5"})
    streams = StreamSet(config, tiny_bundle).open()
    try:
        streams.start()
        assert streams.wait(60)
        health = streams.health()
    finally:
        streams.close()
    assert set(health["streams"]) == {"a", "b"}
    assert health["streams"]["a"]["frames"] == 3 and health["streams"]["b"]["frames"] == 5
    assert streams.metrics["b"].info["stream"] == "b"
    payload = streams.metrics["a"].exposition()[0]
    assert b'jetseg_frames_processed_total{stream="a"}' in streams.metrics["b"].exposition()[0]  # b's serves a's
    assert payload.count(b"# HELP jetseg_frames_processed_total") == 1  # one registry, not one per stream
    families = {f.name: f for f in text_string_to_metric_families(payload.decode())}
    frames = {s.labels["stream"]: s.value for s in families["jetseg_frames_processed"].samples
              if s.name.endswith("_total")}
    assert frames == {"a": 3.0, "b": 5.0}
    for name in ("jetseg_stage_latency_seconds", "jetseg_source_state", "jetseg_info", "jetseg_fps"):
        assert {s.labels.get("stream") for s in families[name].samples} == {"a", "b"}, name
    stages = {(s.labels["stream"], s.labels["stage"]) for s in families["jetseg_stage_latency_seconds"].samples}
    assert ("a", "infer") in stages and ("b", "infer") in stages


def test_a_stream_without_an_end_is_refused(tiny_bundle):
    config = _config(tiny_bundle, {"a": "synthetic://ultrasound?frames=3", "live": "synthetic://ultrasound"})
    with pytest.raises(PipelineError, match=r"stream live \(synthetic://ultrasound\) has no end"):
        run_streams(config, tiny_bundle)

