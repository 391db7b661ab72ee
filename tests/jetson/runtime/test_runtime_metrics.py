"""Metrics: Prometheus exposition (own registry), health, stats, bounded reservoirs, device telemetry hook."""
from __future__ import annotations

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jetseg.jetson.frames.metrics import Metrics, Reservoir


def families(metrics):
    payload, ctype = metrics.exposition()
    assert ctype.startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(payload.decode())}


def value(fams, name, **labels):
    for family in fams.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError("no sample %s %s" % (name, labels))


def test_exposition_counts_frames_drops_latencies_and_state():
    m = Metrics(info={"model": "tiny", "backend": "onnxrt"})
    for name in ("capture", "preprocess", "infer", "postprocess"):
        m.add_stage(name)
    m.add_sink("masks")
    m.add_sink("http")
    for i in range(5):
        m.stage("infer", 0.004)
        m.frame(100.0 + i)
        m.sink_written("masks", 0.001, 0.02)
    m.sink_dropped("http", 3)
    m.drop("source", 2)
    m.drop("pipeline", 1)
    m.set_source_state("reconnecting", "connection refused")
    m.reconnected()
    fams = families(m)
    assert value(fams, "jetseg_frames_processed_total") == 5
    assert value(fams, "jetseg_frames_dropped_total", where="source") == 2
    assert value(fams, "jetseg_frames_dropped_total", where="pipeline") == 1
    assert value(fams, "jetseg_sink_frames_written_total", sink="masks") == 5
    assert value(fams, "jetseg_sink_frames_dropped_total", sink="http") == 3
    assert value(fams, "jetseg_sink_frames_written_total", sink="http") == 0
    assert value(fams, "jetseg_stage_latency_seconds_count", stage="infer") == 5
    assert value(fams, "jetseg_stage_latency_seconds_bucket", stage="infer", le="0.005") == 5
    assert value(fams, "jetseg_capture_to_sink_latency_seconds_count", sink="masks") == 5
    assert value(fams, "jetseg_source_state", jetseg_source_state="reconnecting") == 1
    assert value(fams, "jetseg_source_state", jetseg_source_state="running") == 0
    assert value(fams, "jetseg_source_reconnects_total") == 1
    assert value(fams, "jetseg_info", model="tiny", backend="onnxrt") == 1
    assert "jetseg_uptime_seconds" in fams and "jetseg_fps" in fams and "jetseg_last_frame_age_seconds" in fams
    # its own registry: nothing leaks into the process-global one
    assert not any(f.name.startswith("jetseg") for f in prometheus_client.REGISTRY.collect())


def test_two_instances_do_not_collide():
    a, b = Metrics(), Metrics()
    a.frame(1.0)
    assert value(families(a), "jetseg_frames_processed_total") == 1
    assert value(families(b), "jetseg_frames_processed_total") == 0


def test_health_ok_degraded_stopped(monkeypatch):
    m = Metrics(stale_after_s=5.0)
    assert m.health()["status"] == "starting" and m.health()["last_frame_age_s"] is None  # source not open
    import time

    m.frame(time.monotonic())
    m.set_source_state("running")
    health = m.health()
    assert health["status"] == "ok" and health["frames"] == 1 and health["reasons"] == []
    m.set_source_state("reconnecting", "udp://127.0.0.1:5000: no frame")
    health = m.health()
    assert health["status"] == "degraded"
    assert health["reasons"] == ["source lost, reconnecting: udp://127.0.0.1:5000: no frame"]
    m.set_source_state("running")
    m.last_frame = time.monotonic() - 7.0
    assert m.health()["status"] == "degraded" and "last frame 7." in m.health()["reasons"][0]
    m.stopped = True
    assert m.health()["status"] == "stopped"


def test_stats_for_the_web_viewer():
    m = Metrics(info={"model": "tiny"})
    m.add_stage("infer")
    m.add_sink("null")
    m.roi = (1, 2, 3, 4)
    for i in range(10):
        m.stage("infer", 0.001 * (i + 1))
        m.frame(50.0 + 0.1 * i)
        m.sink_written("null", 0.0001, 0.01)
    stats = m.stats()
    assert stats["frames"] == 10 and stats["roi"] == [1, 2, 3, 4] and stats["info"] == {"model": "tiny"}
    infer = stats["latency_ms"]["stages"]["infer"]
    assert infer["count"] == 10 and infer["max"] == pytest.approx(10.0) and infer["p50"] == pytest.approx(5.5)
    assert stats["latency_ms"]["capture_to_sink"]["p50"] == pytest.approx(10.0)
    assert stats["sinks"]["null"]["written"] == 10
    import json

    json.dumps(stats)  # JSON-able


def test_reservoir_memory_is_bounded_and_percentiles_are_sane():
    r = Reservoir(size=100, window=10, seed=1)
    for i in range(10000):
        r.add(i / 10000.0)
    assert r.count == 10000 and r.values().shape == (100,) and r.values(recent=True).shape == (10,)
    summary = r.summary_ms()
    assert 350 < summary["p50"] < 650  # a uniform sample of 0..1 s
    assert summary["max"] == pytest.approx(999.9) and summary["mean"] == pytest.approx(499.95)
    assert r.summary_ms(recent=True)["p50"] == pytest.approx(999.45)


def test_device_telemetry_hook_is_exported_flattened():
    sample = {"power_mw": {"GPU": 812, "CPU": 1500}, "power_total_mw": 4100, "gpu_load_pct": 87,
              "temps_c": {"GPU": 41.5}, "cpu_load_pct": [5, None], "nvpmodel": "MAXN"}
    m = Metrics(device_telemetry=lambda: sample)
    fams = families(m)
    assert value(fams, "jetseg_device_power_mw_gpu") == 812
    assert value(fams, "jetseg_device_power_total_mw") == 4100
    assert value(fams, "jetseg_device_temps_c_gpu") == 41.5
    assert value(fams, "jetseg_device_cpu_load_pct_0") == 5
    assert m.health()["device"]["gpu_load_pct"] == 87

    def broken():
        raise RuntimeError("tegrastats died")

    m2 = Metrics(device_telemetry=broken)
    assert m2.health()["device"] == {"error": "RuntimeError: tegrastats died"}
    families(m2)  # /metrics still answers
