"""The engines/ layout, build.json, staleness, and the build plan (which network, which INT8 path)."""
from __future__ import annotations

import json

import pytest

from jetseg.bundle import Bundle, sha256_file
from jetseg.errors import BundleError, JetsegError
from jetseg.jetson.trt import store
from jetseg.jetson.trt.key import EngineKey
from jetseg.jetson.trt.plan import plan_build
from tests.fixtures.bundles import conv_bundle as make_bundle
from tests.fixtures.models import conv_model as tiny_model
from tests.fixtures.models import qdq_model


def _key(bundle, **kw):
    base = dict(soc="xavier", compute_capability="72", trt_version="8.5.2", precision="fp16", dla_core=None,
                model_sha256=bundle.model_sha256, calibration_sha256=None)
    base.update(kw)
    return EngineKey(**base)


def _fake_engine(bundle, key, payload=b"engine-bytes"):
    folder = store.engine_dir(bundle, key)
    folder.mkdir(parents=True)
    (folder / store.ENGINE_FILE).write_bytes(payload)
    record = {"key": key.to_dict(), "engine_sha256": sha256_file(folder / store.ENGINE_FILE)}
    (folder / store.BUILD_FILE).write_text(json.dumps(record))
    return folder


def test_status_ok_missing_damaged_stale(tiny_bundle):
    key = _key(tiny_bundle)
    assert store.status(tiny_bundle, key) == (store.MISSING, [])
    folder = _fake_engine(tiny_bundle, key)
    assert store.status(tiny_bundle, key) == (store.OK, [])
    assert Bundle(tiny_bundle.path).verify() is None  # engines are not part of the manifest
    (folder / store.ENGINE_FILE).write_bytes(b"tampered")
    assert store.status(tiny_bundle, key) == (store.DAMAGED, ["engine.plan does not match the sha256 in build.json"])
    record = json.loads((folder / store.BUILD_FILE).read_text())
    record["engine_sha256"] = sha256_file(folder / store.ENGINE_FILE)
    record["key"]["trt_version"] = "8.5.1"  # a folder whose record disagrees with its name
    (folder / store.BUILD_FILE).write_text(json.dumps(record))
    assert store.status(tiny_bundle, key) == (store.STALE, ["TensorRT version: engine 8.5.1, here 8.5.2"])
    (folder / store.BUILD_FILE).write_text("{not json")
    state, reasons = store.status(tiny_bundle, key)
    assert state == store.DAMAGED and reasons[0].startswith(str(folder / "build.json") + " is not valid JSON (")
    assert reasons[0].endswith("the engine folder is damaged: rebuild it with 'jetseg build --force'")
    (folder / store.BUILD_FILE).unlink()
    assert store.status(tiny_bundle, key) == (store.DAMAGED, ["build.json is missing"])


def test_other_engines_are_explained_and_superseded_ones_found(tiny_bundle):
    here = _key(tiny_bundle)
    old_model = _key(tiny_bundle, model_sha256="0" * 64)
    orin = _key(tiny_bundle, soc="orin", compute_capability="87", trt_version="10.3.0")
    _fake_engine(tiny_bundle, old_model)
    _fake_engine(tiny_bundle, orin)
    lines = store.explain_others(tiny_bundle, here)
    assert any(line.startswith(old_model.name + ": model: engine 000000000000..") for line in lines)
    assert any("SoC/GPU: engine orin, here xavier" in line for line in lines)
    assert store.superseded(tiny_bundle, here) == [store.engine_dir(tiny_bundle, old_model)]
    assert store.find_for_device(tiny_bundle, "xavier-sm72-trt8.5.2") == [old_model.name]
    assert store.find_for_device(tiny_bundle, "xavier-sm72-trt8.5.2", precision="int8") == []


def test_plan_for_fp32_bundle(tiny_bundle):
    assert plan_build(tiny_bundle, "fp16", None, qdq=False).int8_mode == "none"
    assert plan_build(tiny_bundle, "fp16", 0, qdq=False).dla_core == 0
    with pytest.raises(BundleError, match=r"is FP32 \(no Q/DQ nodes, no calibration.cache\); calibrate it first"):
        plan_build(tiny_bundle, "int8", None, qdq=False)
    with pytest.raises(JetsegError, match="the DLA runs FP16 and INT8 only; got --precision fp32 with --dla 0"):
        plan_build(tiny_bundle, "fp32", 0, qdq=False)
    with pytest.raises(JetsegError, match="--precision 'int4' is unknown"):
        plan_build(tiny_bundle, "int4", None, qdq=False)


def test_plan_for_int8_bundle(tmp_path):
    plain = make_bundle(tmp_path / "int8", model=qdq_model(), precision="int8")
    plan = plan_build(plain, "int8", None, qdq=True)
    assert (plan.int8_mode, plan.strip_qdq) == ("qdq", False)
    with pytest.raises(BundleError, match="DLA INT8 needs a TensorRT calibration cache"):
        plan_build(plain, "int8", 0, qdq=True)
    with pytest.raises(BundleError, match="is an INT8 \\(Q/DQ\\) bundle; build --precision int8 from it"):
        plan_build(plain, "fp16", None, qdq=True)
    cached = make_bundle(tmp_path / "int8c", model=qdq_model(), precision="int8",
                         extra={"calibration.cache": b"TRT-8502-EntropyCalibration2\ninput: 3ca3d70a\n"})
    plan = plan_build(cached, "int8", 1, qdq=True)
    assert (plan.int8_mode, plan.strip_qdq, plan.dla_core, plan.network) == ("cache", True, 1, None)
    assert plan.calibration_cache == cached.path / "calibration.cache"
    with_fp32 = make_bundle(tmp_path / "int8f", model=qdq_model(), precision="int8",
                            extra={"calibration.cache": b"TRT-8502-EntropyCalibration2\n",
                                   "model.fp32.onnx": tiny_model().SerializeToString()})
    plan = plan_build(with_fp32, "int8", 0, qdq=True)
    assert (plan.int8_mode, plan.strip_qdq, plan.network) == ("cache", False, with_fp32.path / "model.fp32.onnx")
    # a cpu-target bundle leaves the FP32 graph out and names it by hash: DLA INT8 says what is missing
    report = {"target": "cpu", "implicit_int8": {"model": None, "model_sha256": "ab" * 32}}
    cpu = make_bundle(tmp_path / "int8cpu", model=qdq_model(), precision="int8",
                      extra={"calibration.cache": b"TRT-8502-EntropyCalibration2\n",
                             "calibration.json": json.dumps(report).encode()})
    with pytest.raises(BundleError, match=r"DLA INT8 parses the FP32 graph the calibration cache refers to "
                                          r"\(model.fp32.onnx, sha256 abababababab\), and bundle .* does not ship "
                                          r"it \(calibrated with --target cpu.*calibrate with --target tensorrt"):
        plan_build(cpu, "int8", 0, qdq=True)
    assert plan_build(cpu, "int8", None, qdq=True).int8_mode == "qdq"  # the GPU path needs only model.onnx
    fp32_cached = make_bundle(tmp_path / "fp32c", model=tiny_model(),
                              extra={"calibration.cache": b"TRT-8502-EntropyCalibration2\n"})
    assert plan_build(fp32_cached, "int8", None, qdq=False).int8_mode == "cache"


def test_plan_for_on_device_calibration(tmp_path, tiny_bundle):
    plan = plan_build(tiny_bundle, "int8", 0, qdq=False, calib_scans="synthetic://ultrasound", calib_count=20)
    assert (plan.int8_mode, plan.calib_scans, plan.calib_count, plan.dla_core) == ("device", "synthetic://ultrasound",
                                                                                  20, 0)
    with pytest.raises(JetsegError, match="--calib-scans calibrates INT8; got --precision fp16"):
        plan_build(tiny_bundle, "fp16", None, qdq=False, calib_scans="synthetic://ultrasound")
    with pytest.raises(JetsegError, match="--calib-count 0 is invalid"):
        plan_build(tiny_bundle, "int8", None, qdq=False, calib_scans="synthetic://ultrasound", calib_count=0)
    int8 = make_bundle(tmp_path / "int8", model=qdq_model(), precision="int8")
    with pytest.raises(JetsegError, match="already carries INT8 scales \\(Q/DQ nodes\\); drop --calib-scans"):
        plan_build(int8, "int8", None, qdq=True, calib_scans="synthetic://ultrasound")
