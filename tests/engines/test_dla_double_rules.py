"""What the TensorRT double refuses, as TensorRT 8.5.2 documents it (tests/fixtures/fake_tensorrt_dla.py cites
each rule), and jetseg's DLA build passing those rules: the bundled U-Net's DLA cache as 'jetseg calibrate' writes
it, a build whose precision constraint cannot be met (retried once without OBEY_PRECISION_CONSTRAINTS and
recorded in build.json), the ONNX parser's Q/DQ import checks, the loadable limit and the inspector's JSON."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from onnx import numpy_helper

from jetseg.bundle import Bundle
from jetseg.engines import build as build_module
from jetseg.engines import engine_info
from jetseg.engines.build import build_engine
from jetseg.errors import DeviceError
from jetseg.jetson.device import info
from jetseg.jetson.trt import store
from tests.fixtures import fake_tensorrt, fake_tensorrt_dla
from tests.fixtures.media import write_png_scans
from tests.fixtures.models import qdq_model


@pytest.fixture
def xavier(monkeypatch):
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))

    def install(**kw):
        return fake_tensorrt.install(monkeypatch, "8.5.2.2", **kw)

    return install


@pytest.fixture(scope="module")
def unet_int8(tmp_path_factory):
    """The bundled U-Net calibrated by 'jetseg calibrate --target tensorrt' (the cache a DLA build reads)."""
    from jetseg.calibration.workflow import calibrate
    from jetseg.models import bundled

    out = tmp_path_factory.mktemp("unet") / "int8"
    calibrate(bundled("ultrasound"), "synthetic://ultrasound?frames=24&seed=11", out=out, target="tensorrt", count=8,
              holdout=4, gate_dice=0.05, max_fallback=2, progress=False)
    return out


def test_the_bundled_unet_dla_cache_passes_the_doubles_dla_rules(unet_int8, xavier, tmp_path):
    import shutil

    trt = xavier()
    bundle = Bundle(shutil.copytree(str(unet_int8), str(tmp_path / "int8")))
    outcome = build_engine(bundle, "int8", dla_core=0, out=io.StringIO())
    call = trt.calls[-1]
    assert "error" not in call and outcome.record["precision_retry"] == {}
    pools = [x for x in call["layers"] if x["type"] == "POOLING"]
    assert pools and all(x["device"] == "DLA" and x["precision"] == "INT8" for x in pools)  # the rules applied


def test_the_double_refuses_unequal_pooling_ranges_that_equal_scales_repairs(unet_int8, xavier, tmp_path,
                                                                            monkeypatch):
    """The double is not lenient: one pooling output's range made larger than its input's fails the build on
    NvInfer.h's pooling rule when jetseg does not raise the scales to one per group; with it, the build passes."""
    import shutil

    import onnx

    from jetseg.jetson.trt import cache as trtcache

    bundle = Bundle(shutil.copytree(str(unet_int8), str(tmp_path / "int8")))
    model = onnx.load(str(bundle.path / "model.fp32.onnx"))
    pool = next(n for n in model.graph.node if n.op_type == "MaxPool")
    parsed = trtcache.read(bundle.path / "calibration.cache")
    scales = dict(parsed.scales)
    scales[pool.output[0]] = 2 * scales[pool.input[0]]
    (bundle.path / "calibration.cache").write_bytes(trtcache.dumps(scales, "8.5.2"))
    trt = xavier()
    build_engine(Bundle(bundle.path, verify=False), "int8", dla_core=0, force=True, out=io.StringIO())
    assert "error" not in trt.calls[-1]
    monkeypatch.setattr(build_module.int8, "equalize_for_dla", lambda model, path, version: [])
    with pytest.raises(DeviceError, match="could not build the engine"):
        build_engine(Bundle(bundle.path, verify=False), "int8", dla_core=0, force=True, out=io.StringIO())
    assert "%s (POOLING on the DLA in INT8): unequal dynamic ranges" % pool.name in trt.calls[-1]["error"]


def test_an_infeasible_precision_constraint_is_retried_without_it_and_recorded(tmp_path, xavier):
    """'jetseg calibrate' keeps dec_conv in float; this TensorRT has no FP16 DLA convolution, so the build with
    OBEY_PRECISION_CONSTRAINTS fails, the retry without the flag builds, and build.json says so."""
    from jetseg.calibration.workflow import calibrate
    from tests.fixtures.bundles import unet_like_bundle

    trt = xavier(missing_kernels=[("DLA", "HALF", "CONVOLUTION")])
    scans = write_png_scans(tmp_path / "scans", 24)
    calibrate(unet_like_bundle(tmp_path / "outlier", outlier=True), str(scans), out=tmp_path / "int8", count=12,
              holdout=8, target="tensorrt", gate_dice=0.01, progress=False)
    out = io.StringIO()
    outcome = build_engine(Bundle(tmp_path / "int8"), "int8", dla_core=0, out=out)
    failed, built = trt.calls[-2], trt.calls[-1]
    assert "dec_conv" in failed["error"] and "OBEY_PRECISION_CONSTRAINTS" in failed["flags"]
    assert "OBEY_PRECISION_CONSTRAINTS" not in built["flags"] and "error" not in built
    retry = outcome.record["precision_retry"]
    assert retry["cleared_flag"] == "OBEY_PRECISION_CONSTRAINTS" and retry["constrained_layers"] == ["dec_conv"]
    assert "could not build the engine" in retry["first_error"]
    assert store.read_record(outcome.folder).precision_retry == retry
    assert "retrying once without the flag" in out.getvalue()


def test_a_gpu_build_without_constraints_is_not_retried(tiny_bundle, xavier, monkeypatch):
    trt = xavier()
    monkeypatch.setattr(trt.Builder, "build_serialized_network", lambda self, network, config: None)
    with pytest.raises(DeviceError, match="could not build the engine; run"):
        build_engine(tiny_bundle, "fp16", out=io.StringIO())


def _qdq(mutate):
    model = qdq_model()
    mutate(model)
    return model.SerializeToString()


def _set_init(name, value):
    def mutate(model):
        for i, init in enumerate(model.graph.initializer):
            if init.name == name:
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, name))
    return mutate


def _two_inputs(model):
    node = next(n for n in model.graph.node if n.name == "dq_in")
    del node.input[2]


@pytest.mark.parametrize("mutate, why", [
    (_two_inputs, "has 2 input(s); TensorRT 8.5 requires 3"),
    (_set_init("x_zero", np.array(3, np.int8)), "zeroPt must be all zeros"),
    (_set_init("x_scale", np.array(0.0, np.float32)), "Scale coefficients must all be positive"),
    (_set_init("w_scale", np.array([0.01, 0.02, 0.03], np.float32)), "must have the same size"),
    (_set_init("x_zero", np.array(0, np.uint8)), "UINT8 is not supported"),
])
def test_the_onnx_parser_double_applies_onnx_tensorrt_8_5_qdq_checks(monkeypatch, mutate, why):
    trt = fake_tensorrt.install(monkeypatch, "8.5.2.2")
    parser = trt.OnnxParser(trt.Builder(trt.Logger()).create_network(0), trt.Logger())
    assert trt.OnnxParser(trt.Builder(trt.Logger()).create_network(0), trt.Logger()).parse(qdq_model().SerializeToString())
    assert not parser.parse(_qdq(mutate))
    assert why in parser.get_error(0)


def test_per_channel_scale_count_must_equal_the_channels(monkeypatch):
    def three_channels(model):
        _set_init("w_scale", np.array([0.01, 0.02, 0.03], np.float32))(model)
        _set_init("w_zero", np.zeros(3, np.int8))(model)

    trt = fake_tensorrt.install(monkeypatch, "8.5.2.2")
    parser = trt.OnnxParser(trt.Builder(trt.Logger()).create_network(0), trt.Logger())
    assert not parser.parse(_qdq(three_channels))
    assert "number of scales is not equal to the number of output channels (3 scales, axis 0 of [2, 1, 3, 3])" in (
        parser.get_error(0))
    trt10 = fake_tensorrt.make("10.3.0")
    assert trt10.OnnxParser(trt10.Builder(trt10.Logger()).create_network(0), None).parse(_qdq(three_channels))


def test_more_than_16_dla_loadables_are_refused():
    def layers(runs):
        out = []
        for i in range(runs):
            out += [{"name": "d%d" % i, "device": "DLA"}, {"name": "g%d" % i, "device": "GPU"}]
        return out

    assert fake_tensorrt_dla.loadables(layers(16)) == 16 and fake_tensorrt_dla.MAX_LOADABLES == 16
    assert fake_tensorrt_dla.loadables([{"device": "DLA"}] * 3) == 1


def test_elementwise_and_pooling_equal_range_rules():
    layers = [{"name": "add", "type": "ELEMENTWISE", "device": "DLA", "precision": "INT8", "inputs": ["a", "b"],
               "outputs": ["s"]},
              {"name": "pool", "type": "POOLING", "device": "DLA", "precision": "INT8", "inputs": ["a"],
               "outputs": ["p"]},
              {"name": "cat", "type": "CONCATENATION", "device": "DLA", "precision": "INT8", "inputs": ["a", "b"],
               "outputs": ["c"]},
              {"name": "gpu_add", "type": "ELEMENTWISE", "device": "GPU", "precision": "INT8", "inputs": ["a", "b"],
               "outputs": ["t"]}]
    errors = fake_tensorrt_dla.equal_range_errors(layers, {"a": 0.01, "b": 0.02, "s": 0.5, "p": 0.03, "c": 0.02})
    assert [e.split(" ")[0] for e in errors] == ["add", "pool"]
    assert fake_tensorrt_dla.equal_range_errors(layers, {"a": 0.02, "b": 0.02, "s": 0.5, "p": 0.02}) == []


def test_the_inspector_json_has_the_shape_of_trex_real_inputs():
    """Keys as in NVIDIA/TensorRT 8.5.2 tools/experimental/trt-engine-explorer/tests/inputs/*.engine.graph.json."""
    layers = [{"name": "conv", "type": "CONVOLUTION", "device": "GPU", "inputs": ["input"], "outputs": ["logits"],
               "precision": "INT8"}]
    data = json.loads(fake_tensorrt_dla.engine_layers(layers, True, ["input", "logits"]))
    assert data["Bindings"] == ["input", "logits"]
    layer = data["Layers"][0]
    assert {"Name", "LayerType", "Inputs", "Outputs", "ParameterType", "TacticValue"} <= set(layer)
    assert set(layer["Inputs"][0]) == {"Name", "Location", "Dimensions", "Format/Datatype"}
    assert layer["Outputs"][0]["Format/Datatype"] == "Thirty-two wide channel vectorized row major Int8 format"


def test_inspector_text_that_is_not_json_leaves_the_placement_unknown_and_keeps_the_text():
    class Inspector:
        def get_engine_information(self, fmt):
            return "{ForeignNode[conv]} not json"

    class Engine:
        def create_engine_inspector(self):
            return Inspector()

    class Trt:
        class LayerInformationFormat:
            JSON = 1

    layers, why, raw = engine_info.read_engine(Engine(), Trt)
    assert layers == [] and "not JSON" in why and raw == "{ForeignNode[conv]} not json"
    rows = engine_info.unknown_placement([build_module.LayerPlacement("conv", "CONVOLUTION", "DLA")])
    assert [(r.layer, r.device) for r in rows] == [("conv", "unknown")]


def test_a_dla_build_with_an_unreadable_inspector_still_saves_the_engine(tmp_path, xavier, monkeypatch):
    from tests.fixtures.bundles import conv_bundle

    trt = xavier()
    cache = b"TRT-8502-EntropyCalibration2\ninput: 3d4ccccd\n"
    bundle = conv_bundle(tmp_path / "int8", model=qdq_model(), precision="int8", extra={"calibration.cache": cache})
    original = trt.Builder.build_serialized_network

    def garbled(self, network, config):
        data = original(self, network, config)
        record = json.loads(data)
        record["inspector"] = "<<not json>>"
        return json.dumps(record).encode()

    monkeypatch.setattr(trt.Builder, "build_serialized_network", garbled)
    outcome = build_engine(bundle, "int8", dla_core=0, out=io.StringIO())
    actual = store.read_record(outcome.folder).placement_actual
    assert outcome.engine_path.is_file() and "not JSON" in actual["unknown_because"]
    assert actual["inspector_raw"] == "<<not json>>" and actual["layers"][0]["device"] == "unknown"
