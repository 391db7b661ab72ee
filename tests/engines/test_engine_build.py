"""build_engine end to end against a stand-in TensorRT (fake_tensorrt.py): files, build.json, reuse, staleness,
DLA INT8 from the calibration cache, version-dependent flags. The real TensorRT runs in test_on_device.py."""
from __future__ import annotations

import io
import json

import pytest

from jetseg.bundle import Bundle
from jetseg.engines.build import build_engine
from jetseg.errors import BundleError, DeviceError
from jetseg.jetson.device import info
from jetseg.jetson.trt import store
from tests.fixtures import fake_tensorrt
from tests.fixtures.bundles import conv_bundle as make_bundle
from tests.fixtures.models import conv_model as tiny_model
from tests.fixtures.models import qdq_model

CACHE = b"TRT-8502-EntropyCalibration2\ninput: 3d4ccccd\nlogits: 3e4ccccd\n"


@pytest.fixture
def xavier(monkeypatch):
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))

    def install(version="8.5.2.2", **kw):
        return fake_tensorrt.install(monkeypatch, version, **kw)

    return install


def test_fp16_build_writes_engine_record_and_timing_cache(tiny_bundle, xavier):
    trt = xavier("8.5.2.2")
    out = io.StringIO()
    outcome = build_engine(tiny_bundle, "fp16", workspace_mb=256, out=out)
    assert not outcome.reused and outcome.key.name.startswith("xavier-sm72-trt8.5.2-fp16-gpu-")
    call = trt.calls[-1]
    assert call["network_flags"] == 1  # EXPLICIT_BATCH on 8.5
    assert call["flags"] == ["FP16"] and call["pool"] == {"WORKSPACE": 256 << 20} and call["device"] == "GPU"
    folder = outcome.folder
    assert sorted(p.name for p in folder.iterdir()) == ["build.json", "engine.plan", "timing.cache"]
    record = json.loads((folder / "build.json").read_text())
    assert record["key"] == outcome.key.to_dict() and record["versions"]["tensorrt"] == "8.5.2.2"
    assert record["flags"]["int8"] == "none" and record["io"][0] == {"name": "input", "mode": "INPUT",
                                                                    "shape": [1, 1, 32, 32], "dtype": "FLOAT"}
    assert set(record["timings"]) == {"parse_s", "build_s", "total_s"}
    shared = store.shared_timing_cache(tiny_bundle, outcome.key)
    assert shared.read_bytes() == b"fresh-timing-cache+"
    assert "building FP16 engine for xavier-sm72-trt8.5.2" in out.getvalue()
    assert store.status(tiny_bundle, outcome.key) == (store.OK, [])
    # Up to date: reused, nothing built.
    again = build_engine(tiny_bundle, "fp16")
    assert again.reused and len(trt.calls) == 1
    # --force rebuilds and reuses the shared timing cache.
    forced = build_engine(tiny_bundle, "fp16", force=True, out=out)
    assert not forced.reused and "reused timing cache" in " ".join(forced.record["flags"]["notes"])
    assert shared.read_bytes() == b"fresh-timing-cache++"


def test_damaged_engine_is_rebuilt_with_the_reason(tiny_bundle, xavier):
    xavier()
    first = build_engine(tiny_bundle, "fp32")
    first.engine_path.write_bytes(b"garbage")
    out = io.StringIO()
    second = build_engine(tiny_bundle, "fp32", out=out)
    assert not second.reused
    assert "rebuilding %s: engine.plan does not match the sha256 in build.json" % second.key in out.getvalue()


def test_engines_of_an_old_model_are_removed(tmp_path, xavier):
    xavier()
    old = make_bundle(tmp_path / "b", model=tiny_model(seed=0))
    old_key = build_engine(old, "fp16").key
    # Same folder, new weights: a new bundle at the same path keeps its engines/ folder.
    engines = tmp_path / "b" / "engines"
    engines.rename(tmp_path / "engines.keep")
    import shutil

    shutil.rmtree(str(tmp_path / "b"))
    new = make_bundle(tmp_path / "b", model=tiny_model(seed=1))
    (tmp_path / "engines.keep").rename(engines)
    out = io.StringIO()
    new_key = build_engine(new, "fp16", out=out).key
    assert new_key != old_key and not (engines / old_key.name).exists()
    assert "removing superseded engine %s" % old_key.name in out.getvalue()


def test_int8_gpu_from_qdq(tmp_path, xavier):
    trt = xavier("8.5.2.2")
    bundle = make_bundle(tmp_path / "int8", model=qdq_model(), precision="int8")
    outcome = build_engine(bundle, "int8")
    call = trt.calls[-1]
    assert call["flags"] == ["FP16", "INT8"] and call["calibrator"] is None
    assert "QuantizeLinear" in call["ops"]  # the Q/DQ network itself
    assert outcome.record["flags"]["int8"] == "qdq" and outcome.key.calibration_sha256 is None


def test_dla_int8_from_the_calibration_cache(tmp_path, xavier):
    trt = xavier("8.5.2.2")
    bundle = make_bundle(tmp_path / "int8", model=qdq_model(), precision="int8", extra={"calibration.cache": CACHE})
    out = io.StringIO()
    outcome = build_engine(bundle, "int8", dla_core=1, out=out)
    call = trt.calls[-1]
    assert call["device"] == "DLA" and call["dla_core"] == 1
    # No float layer, so no precision constraint and no OBEY_PRECISION_CONSTRAINTS: the logits stay float as in
    # the Q/DQ model because the cache has no scale for them, not because their type is forced.
    assert call["flags"] == ["FP16", "INT8", "GPU_FALLBACK"]
    assert call["calibrator"] == "IInt8EntropyCalibrator2"
    assert call["calibration_cache"] == "TRT-8502-EntropyCalibration2\ninput: 3d4ccccd\n"
    assert call["constraints"] == {}
    assert [layer["precision"] for layer in call["layers"]] == ["HALF"]  # no scale for the logits: no INT8
    assert call["ops"] == ["Conv"]  # Q/DQ removed: the DLA cannot run a Q/DQ network
    assert outcome.key.name.startswith("xavier-sm72-trt8.5.2-int8-dla1-") and outcome.key.calibration_sha256
    assert outcome.report[0] == ("DLA placement estimate (can_run_on_DLA, before the build): 1 of 1 layers on the "
                                 "DLA, 0 on the GPU (GPU_FALLBACK)")
    assert outcome.report[1] == "DLA placement in the built engine (engine inspector): 1 DLA subgraph(s), 0 GPU layer(s)"
    assert outcome.report[0] in out.getvalue() and outcome.report[1] in out.getvalue()
    assert outcome.record["placement"] == [{"layer": "conv", "type": "CONVOLUTION", "device": "DLA", "reason": ""}]
    assert outcome.record["placement_actual"]["layers"] == outcome.record["placement"]
    assert [x["name"] for x in outcome.record["placement_actual"]["engine_layers"]] == [
        "input to nvm", "{ForeignNode[conv]}", "logits from nvm"]
    # A new calibration cache makes it stale: another key, the old engine removed as superseded.
    (bundle.path / "calibration.cache").write_bytes(CACHE.replace(b"3d4ccccd", b"3d000000"))
    assert build_engine(bundle, "int8", dla_core=1).key != outcome.key
    assert not outcome.folder.exists()


def test_dla_placement_reasons_and_core_count(tmp_path, xavier):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    xavier("8.5.2.2", dla_cores=2)
    w = numpy_helper.from_array(np.ones((2, 2, 4, 4), np.float32), "w")
    node = helper.make_node("ConvTranspose", ["input", "w"], ["logits"], name="up", strides=[1, 1], pads=[1, 1, 2, 2],
                            kernel_shape=[4, 4])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, 32, 32])], [w])
    bundle = make_bundle(tmp_path / "b", model=helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    outcome = build_engine(bundle, "fp16", dla_core=0)
    assert outcome.record["placement"][0]["device"] == "GPU"
    assert outcome.record["placement"][0]["reason"].startswith("ConvTranspose with padding [1, 1, 2, 2]")
    with pytest.raises(DeviceError, match="--dla 2 asked, but this device has 2 DLA core\\(s\\) \\(0..1\\)"):
        build_engine(bundle, "fp16", dla_core=2)


def test_tensorrt_10_uses_the_progress_monitor_and_no_explicit_batch(tiny_bundle, xavier):
    trt = xavier("10.3.0")
    out = io.StringIO()
    build_engine(tiny_bundle, "fp16", out=out)
    assert trt.calls[-1]["network_flags"] == 0
    assert "Building engine (2 steps)" in out.getvalue()


def test_tensorrt_11_has_no_fp16_flag_and_no_calibrator(tmp_path, tiny_bundle, xavier):
    trt = xavier("11.0")
    with pytest.raises(DeviceError, match="TensorRT 11.0 has no FP16 builder flag"):
        build_engine(tiny_bundle, "fp16")
    bundle = make_bundle(tmp_path / "int8", model=qdq_model(), precision="int8", extra={"calibration.cache": CACHE})
    with pytest.raises(DeviceError, match="TensorRT 11.0 has no calibrator API, so INT8 from calibration.cache is "
                                          "impossible here"):
        build_engine(bundle, "int8", dla_core=0)
    outcome = build_engine(bundle, "int8")  # the Q/DQ path works on 11 without builder flags
    assert trt.calls[-1]["flags"] == [] and "strongly typed" in outcome.record["flags"]["notes"][0]


def test_no_gpu_is_a_device_error(tiny_bundle, xavier):
    xavier(gpu=False)
    with pytest.raises(DeviceError, match="TensorRT cannot create its builder .*no usable CUDA GPU here"):
        build_engine(tiny_bundle, "fp16")
    assert not (tiny_bundle.path / "engines").exists()


def test_bundle_mistakes_before_any_build(tiny_bundle, xavier):
    trt = xavier()
    with pytest.raises(BundleError, match="is FP32"):
        build_engine(tiny_bundle, "int8")
    with pytest.raises(BundleError, match="has no weights.pt; --via torch2trt needs the PyTorch weights"):
        build_engine(tiny_bundle, "fp16", via="torch2trt")
    assert trt.calls == []


def test_cli_prints_the_engine_path(tiny_bundle, xavier, capsys):
    from jetseg.cli import main

    xavier()
    assert main(["build", str(tiny_bundle.path), "--precision", "fp16"]) == 0
    first = capsys.readouterr()
    path = first.out.strip()
    assert path.endswith("/engine.plan") and "built xavier-sm72-trt8.5.2-fp16-gpu-" in first.err
    assert main(["build", str(tiny_bundle.path), "--precision", "fp16"]) == 0
    second = capsys.readouterr()
    assert second.out.strip() == path and "is up to date (use --force to rebuild)" in second.err


def test_calibration_cache_for_another_tensorrt_is_refused(tmp_path, xavier):
    trt = xavier("10.3.0")
    bundle = make_bundle(tmp_path / "int8", model=qdq_model(), precision="int8", extra={"calibration.cache": CACHE})
    with pytest.raises(BundleError, match="starts with TRT-8502-EntropyCalibration2 .* this device has TensorRT "
                                          "10.3.0 \\(TRT-100300\\); re-run 'jetseg calibrate FP32_BUNDLE --target "
                                          "tensorrt --trt-version 10.3.0"):
        build_engine(bundle, "int8", dla_core=0)
    assert trt.calls == [] and not (bundle.path / "engines").exists()
    # a MinMax cache for this TensorRT, on the GPU's implicit INT8 path (an FP32 graph with a cache)
    minmax = make_bundle(tmp_path / "mm", model=tiny_model(), precision="int8",
                         extra={"calibration.cache": b"TRT-100300-MinMaxCalibration\ninput: 3d4ccccd\n"})
    build_engine(minmax, "int8")
    assert trt.calls[-1]["calibrator"] == "IInt8MinMaxCalibrator" and trt.calls[-1]["device"] != "DLA"
    assert (minmax.path / "calibration.cache").read_bytes().startswith(b"TRT-100300-MinMax")  # untouched


def test_a_minmax_cache_is_refused_for_the_dla_before_any_build(tmp_path, xavier):
    """TensorRT's NvInfer.h (8.5.2 to 10.x): IInt8EntropyCalibrator2 "is the required calibrator for DLA"."""
    trt = xavier("8.5.2.2")
    bundle = make_bundle(tmp_path / "int8", model=qdq_model(), precision="int8",
                         extra={"calibration.cache": CACHE.replace(b"EntropyCalibration2", b"MinMaxCalibration")})
    with pytest.raises(BundleError, match=r"calibration.cache is a MinMax cache \('jetseg calibrate --method minmax'\), "
                                          r"but the DLA requires TensorRT's entropy calibrator .*; calibrate with "
                                          r"--method entropy or percentile for the DLA, or drop --dla"):
        build_engine(bundle, "int8", dla_core=0)
    assert trt.calls == [] and not (bundle.path / "engines").exists()
    build_engine(bundle, "int8")  # the GPU engine comes from the Q/DQ model: no calibrator at all
    assert trt.calls[-1]["calibrator"] is None


def test_dla_int8_from_a_real_jetseg_calibrate_bundle(tmp_path, xavier):
    """The INT8 bundle 'jetseg calibrate --target tensorrt' writes, built for the DLA: the float model it keeps
    (model.fp32.onnx) is parsed, and every tensor of its calibration cache exists in that network; the Q/DQ model
    with Q/DQ removed (the fallback for bundles without it) names the same tensors."""
    import onnx

    from jetseg.calibration.workflow import calibrate
    from jetseg.engines.qdq import strip_qdq

    trt = xavier("8.5.2.2")
    fp32 = make_bundle(tmp_path / "fp32", model=tiny_model())
    # gate_dice 0.1: the tiny model's INT8 masks differ from FP32's by ~0.05 Dice on its few foreground
    # pixels; this test is about the DLA build of the quantized Conv, not the gate
    calibrate(fp32.path, "synthetic://ultrasound?frames=12", out=tmp_path / "int8", count=6, holdout=4,
              target="tensorrt", gate_dice=0.1, progress=False)
    bundle = Bundle(tmp_path / "int8")
    outcome = build_engine(bundle, "int8", dla_core=0)
    assert outcome.record["flags"]["network"] == "model.fp32.onnx" and not outcome.record["flags"]["qdq_stripped"]
    assert trt.calls[-1]["ops"] == ["Conv"] and trt.calls[-1]["calibrator"] == "IInt8EntropyCalibrator2"
    cache_names = {line.split(":")[0] for line in (bundle.path / "calibration.cache").read_text().splitlines()[1:]}

    def tensors(model):
        return {i.name for i in model.graph.input} | {o for n in model.graph.node for o in n.output}

    assert cache_names and cache_names <= tensors(onnx.load(str(bundle.path / "model.fp32.onnx")))
    assert cache_names <= tensors(strip_qdq(onnx.load(str(bundle.model_path))))
