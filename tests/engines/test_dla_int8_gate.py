"""DLA INT8 from the calibration cache builds the model the accuracy gate accepted (issue 10, defect 5), against
the TensorRT double (tests/fixtures/fake_tensorrt.py): the gate's float layers compute in FP16, the logits and
the tensors only float layers read get no scale, and OBEY_PRECISION_CONSTRAINTS holds TensorRT to it; a build
that fails with the flag is retried once without it and build.json says so."""
from __future__ import annotations

import json

import onnx
import pytest

from jetseg.bundle import Bundle
from jetseg.engines.build import build_engine
from jetseg.jetson.device import info
from jetseg.jetson.trt import cache as trtcache
from tests.fixtures import fake_tensorrt
from tests.fixtures.bundles import conv_bundle, unet_like_bundle
from tests.fixtures.media import write_png_scans
from tests.fixtures.models import unet_like


@pytest.fixture
def trt(monkeypatch):
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))
    return fake_tensorrt.install(monkeypatch, "8.5.2.2")


def _layers(call):
    return {layer["name"]: layer for layer in call["layers"]}


def test_old_bundle_with_a_full_cache_is_filtered_at_build(tmp_path, trt):
    """A bundle calibrated before the cache left anything out: build time drops the tensors and constrains."""
    model = unet_like()
    tensors = ["input"] + [o for n in model.graph.node for o in n.output]
    cache = trtcache.dumps({name: 0.01 for name in tensors}, "8.5.2")
    bundle = conv_bundle(tmp_path / "int8", model=model, precision="int8",
                         extra={"calibration.cache": cache,
                                "calibration.json": json.dumps({"float_layers": ["dec_conv"]}).encode()})
    outcome = build_engine(bundle, "int8", dla_core=0)
    call = trt.calls[-1]
    given = trtcache.loads(call["calibration_cache"]).scales
    assert set(tensors) - set(given) == {"logits", "cat"}
    assert "OBEY_PRECISION_CONSTRAINTS" in call["flags"]
    assert call["constraints"]["dec_conv"] == {"precision": "HALF", "outputs": {"0": "HALF"}}
    assert call["constraints"]["concat"] == {"precision": None, "outputs": {"0": "HALF"}}  # writes 'cat'
    assert "head" not in call["constraints"]  # the logits have no scale: no retyping just to keep them FP16
    layers = _layers(call)
    assert layers["dec_conv"]["precision"] == "HALF" and layers["head"]["precision"] == "HALF"
    assert layers["enc_conv"]["precision"] == "INT8" and layers["mid_conv"]["precision"] == "INT8"
    assert any("kept in FP16 as the accuracy gate kept them in float: dec_conv" in note
               for note in outcome.record["flags"]["notes"])


def test_without_the_fix_the_float_layer_would_be_int8(tmp_path, trt, monkeypatch):
    """The double is not lenient: the same full cache without the float part makes every layer INT8."""
    import jetseg.engines.build as build_module
    from jetseg.jetson.trt.floatlayers import FloatKeep

    model = unet_like()
    tensors = ["input"] + [o for n in model.graph.node for o in n.output]
    bundle = conv_bundle(tmp_path / "int8", model=model, precision="int8",
                         extra={"calibration.cache": trtcache.dumps({name: 0.01 for name in tensors}, "8.5.2"),
                                "calibration.json": json.dumps({"float_layers": ["dec_conv"]}).encode()})
    monkeypatch.setattr(build_module, "float_keep", lambda model, layers: FloatKeep())  # the defect
    build_engine(bundle, "int8", dla_core=0)
    layers = _layers(trt.calls[-1])
    assert layers["dec_conv"]["precision"] == "INT8" and layers["head"]["precision"] == "INT8"


def test_jetseg_calibrate_bundle_with_a_float_layer_on_the_dla(tmp_path, trt):
    """The real chain: 'jetseg calibrate' keeps dec_conv in float (the outlier), the DLA build keeps it FP16."""
    from jetseg.calibration.workflow import calibrate

    scans = write_png_scans(tmp_path / "scans", 24)
    report = calibrate(unet_like_bundle(tmp_path / "outlier", outlier=True), str(scans), out=tmp_path / "int8",
                       count=12, holdout=8, target="tensorrt", gate_dice=0.01, progress=False)
    assert report["float_layers"] == ["dec_conv"]
    implicit = report["implicit_int8"]
    assert implicit["float_layers"] == ["dec_conv"] and implicit["uncached_tensors"] == ["logits", "cat"]
    bundle = Bundle(tmp_path / "int8")
    written = trtcache.read(bundle.path / "calibration.cache").scales
    assert "logits" not in written and "cat" not in written and "c3" in written
    prepared = onnx.load(str(bundle.path / "model.fp32.onnx"))
    assert {n.name for n in prepared.graph.node} >= {"dec_conv", "head", "concat"}

    outcome = build_engine(bundle, "int8", dla_core=0)
    call = trt.calls[-1]
    layers = _layers(call)
    assert call["constraints"]["dec_conv"]["precision"] == "HALF" and layers["dec_conv"]["precision"] == "HALF"
    assert layers["head"]["precision"] == "HALF" and layers["enc_conv"]["precision"] == "INT8"
    assert all(layer["device"] == "DLA" for layer in call["layers"])
    assert outcome.record["placement_actual"]["unknown_because"] is None
