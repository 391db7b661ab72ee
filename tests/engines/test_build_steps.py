"""The engine build's steps one by one (engines/build.py: parse_network -> make_config -> place_on_dla ->
use_timing_cache -> serialize_engine -> inspect_engine -> build_record -> save_engine), against the TensorRT
double (tests/fixtures/fake_tensorrt.py). build_engine, the whole chain, is tested in test_engine_build.py."""
from __future__ import annotations

import hashlib
import io
import json

import pytest
from onnx import helper

from jetseg import trtcompat
from jetseg.engines import build
from jetseg.engines.serialize import serialize_engine
from jetseg.errors import DeviceError
from jetseg.jetson.device.info import DeviceInfo
from jetseg.jetson.trt import store
from jetseg.jetson.trt.key import EngineKey
from jetseg.jetson.trt.plan import BuildPlan
from tests.fixtures import fake_tensorrt
from tests.fixtures.models import conv_model


def _parsed(monkeypatch, version="8.5.2.2", **kw):
    trt = fake_tensorrt.install(monkeypatch, version, **kw)
    feats = trtcompat.features(version)
    return trt, feats, build.parse_network(trt, feats, conv_model().SerializeToString())


def test_parse_network_keeps_builder_parser_and_bytes(monkeypatch):
    trt, _, parsed = _parsed(monkeypatch)
    assert parsed.network.flags == 1  # EXPLICIT_BATCH on 8.5
    assert [layer.name for layer in parsed.network.layers] == ["conv"]
    assert parsed.parser.network is parsed.network and parsed.onnx_bytes == conv_model().SerializeToString()
    _, _, parsed10 = _parsed(monkeypatch, "10.3.0")
    assert parsed10.network.flags == 0  # explicit batch is implied from 10 on


def test_parse_network_failure_names_tensorrt_errors(monkeypatch):
    trt = fake_tensorrt.install(monkeypatch, "8.5.2.2")
    empty = helper.make_model(helper.make_graph([], "empty", [], []))
    with pytest.raises(DeviceError, match="TensorRT cannot parse the ONNX model: graph has no nodes"):
        build.parse_network(trt, trtcompat.features("8.5.2.2"), empty.SerializeToString())


def test_make_config_sets_workspace_precision_and_profiling(monkeypatch):
    trt, feats, parsed = _parsed(monkeypatch)
    config, notes = build.make_config(trt, feats, parsed, "fp16", qdq=False, workspace_mb=256)
    assert config.pool == {"WORKSPACE": 256 << 20} and config.flags == ["FP16"]
    assert config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED
    assert isinstance(notes, list)
    int8, _ = build.make_config(trt, feats, parsed, "int8", qdq=True, workspace_mb=64)
    assert "INT8" in int8.flags


def test_place_on_dla(monkeypatch):
    trt, feats, parsed = _parsed(monkeypatch, dla_cores=2)
    config, _ = build.make_config(trt, feats, parsed, "fp16", qdq=False, workspace_mb=64)
    out = io.StringIO()
    assert build.place_on_dla(trt, parsed, config, None, [], out) == ([], [])  # a GPU build: nothing
    assert config.default_device_type == trt.DeviceType.GPU and out.getvalue() == ""
    placement, _ = build.place_on_dla(trt, parsed, config, 1, [], out)
    assert config.default_device_type == trt.DeviceType.DLA and config.DLA_core == 1
    assert "GPU_FALLBACK" in config.flags and placement and out.getvalue()  # the estimate is printed
    with pytest.raises(DeviceError, match=r"--dla 2 asked, but this device has 2 DLA core\(s\) \(0..1\)"):
        build.place_on_dla(trt, parsed, config, 2, [], out)


def test_use_timing_cache(monkeypatch, tmp_path):
    trt, feats, parsed = _parsed(monkeypatch)
    config, _ = build.make_config(trt, feats, parsed, "fp16", qdq=False, workspace_mb=64)
    path = tmp_path / "timing.cache"
    assert build.use_timing_cache(config, path) == []  # none yet: a fresh one, no note
    assert config.get_timing_cache().data == b"fresh-timing-cache"
    path.write_bytes(b"old")
    assert build.use_timing_cache(config, path) == ["reused timing cache %s" % path]
    assert config.get_timing_cache().data == b"old"
    # TensorRT refuses a cache of another device (set_timing_cache returns False without ignore_mismatch).
    accept = config.set_timing_cache
    monkeypatch.setattr(config, "set_timing_cache", lambda cache, ignore: cache.data != b"old" and accept(cache, ignore))
    assert build.use_timing_cache(config, path) == ["timing cache %s did not match this device; started a new one" % path]
    assert config.get_timing_cache().data == b"fresh-timing-cache"


def test_serialize_engine_and_its_failure(monkeypatch):
    trt, feats, parsed = _parsed(monkeypatch)
    config, _ = build.make_config(trt, feats, parsed, "fp16", qdq=False, workspace_mb=64)
    out = io.StringIO()
    data = serialize_engine(trt, feats, parsed, config, "building FP16 engine", out)
    assert isinstance(data, bytes) and json.loads(data)["flags"] == ["FP16"]
    assert "building FP16 engine (TensorRT 8.5.2.2; this can take minutes)" in out.getvalue()
    monkeypatch.setattr(parsed.builder, "build_serialized_network", lambda network, config: None)
    with pytest.raises(DeviceError, match="TensorRT could not build the engine; run 'jetseg build --verbose'"):
        serialize_engine(trt, feats, parsed, config, "building", out)


def test_inspect_engine_reads_io_and_refuses_garbage(monkeypatch):
    trt, feats, parsed = _parsed(monkeypatch)
    config, _ = build.make_config(trt, feats, parsed, "fp16", qdq=False, workspace_mb=64)
    data = serialize_engine(trt, feats, parsed, config, "building", io.StringIO())
    seen = build.inspect_engine(trt, data, None, [], [], io.StringIO())
    assert seen.io[0] == {"name": "input", "mode": "INPUT", "shape": [1, 1, 32, 32], "dtype": "FLOAT"}
    assert seen.report == [] and seen.actual == {}  # DLA placement only for DLA builds
    with pytest.raises(DeviceError, match="TensorRT built an engine it cannot load back"):
        build.inspect_engine(trt, b"not an engine", None, [], [], io.StringIO())


#: build.json's top-level keys (store.py and the bundle tools read them; a change here is a format change).
RECORD_KEYS = {"format", "key", "created", "command", "via", "versions", "device", "flags", "timings",
               "placement", "placement_actual", "io", "engine_bytes", "engine_sha256", "precision_retry", "batch",
               "profile"}


def test_build_record_and_save_engine(tiny_bundle, tmp_path):
    key = EngineKey(soc="xavier", compute_capability="72", trt_version="8.5.2", precision="fp16", dla_core=None,
                    model_sha256=tiny_bundle.model_sha256, calibration_sha256=None)
    plan = BuildPlan("fp16", None, "none", False, None)
    built = build.BuiltEngine(b"engine", b"timing", ["a note"], files={"extra.txt": b"x"}, timings={"total_s": 1.0})
    inspection = build.Inspection(io=[{"name": "input"}])
    device = DeviceInfo(model="NVIDIA Jetson AGX Xavier", cuda="11.4", l4t="35.3.1", jetpack="5.1.1")
    record = build.build_record(tiny_bundle, key, plan, "onnx", "8.5.2.2", trtcompat.features("8.5.2.2"), device,
                                ("xavier", "72"), 64, built, inspection)
    assert set(record.to_dict()) == RECORD_KEYS
    assert record.engine_sha256 == hashlib.sha256(b"engine").hexdigest() and record.engine_bytes == 6
    assert record.flags["notes"] == ["a note"] and record.flags["workspace_mb"] == 64
    assert record.device["soc"] == "xavier" and record.versions["cuda"] == "11.4"
    folder = tmp_path / "engines" / key.name
    build.save_engine(folder, built, record)
    assert sorted(p.name for p in folder.iterdir()) == ["build.json", "engine.plan", "extra.txt", "timing.cache"]
    assert json.loads((folder / store.BUILD_FILE).read_text()) == record.to_dict()
    assert store.read_record(folder) == record


def test_build_json_written_before_precision_retry_still_reads(tiny_bundle, tmp_path):
    """build.json files written before ``precision_retry`` existed read as "no retry" (and a retry reads back)."""
    key = EngineKey(soc="xavier", compute_capability="72", trt_version="8.5.2", precision="fp16", dla_core=None,
                    model_sha256=tiny_bundle.model_sha256, calibration_sha256=None)
    built = build.BuiltEngine(b"engine", retry={"first_error": "x", "cleared_flag": "OBEY_PRECISION_CONSTRAINTS",
                                                 "constrained_layers": ["dec_conv"]})
    record = build.build_record(tiny_bundle, key, BuildPlan("fp16", None, "none", False, None), "onnx", "8.5.2.2",
                                trtcompat.features("8.5.2.2"), DeviceInfo(), ("xavier", "72"), 64, built,
                                build.Inspection())
    folder = tmp_path / "engines" / key.name
    build.save_engine(folder, built, record)
    assert store.read_record(folder).precision_retry["constrained_layers"] == ["dec_conv"]
    old = record.to_dict()
    del old["precision_retry"]
    (folder / store.BUILD_FILE).write_text(json.dumps(old))
    assert store.read_record(folder).precision_retry == {}
