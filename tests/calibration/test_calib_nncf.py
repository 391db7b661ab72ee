"""OpenVINO's own INT8 (calibration/nncfquant.py): NNCF on the same frames, the same gate and fallback, the IR in
the bundle only when kept, the openvino runner preferring it. Skips on a missing openvino or nncf (the JetPack 5
twin has neither)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jetseg.bundle import OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE, Bundle
from jetseg.calibration import nncfquant
from jetseg.calibration.gate import Gate
from jetseg.calibration.workflow import calibrate
from jetseg.jetson.runners import open_runner
from jetseg.jetson.runners.openvino import openvino_ir

pytest.importorskip("openvino")
pytest.importorskip("nncf")


def _frames(n: int = 8) -> list:
    return [np.random.default_rng(i).random((1, 1, 32, 32)).astype(np.float32) for i in range(n)]


def _fake_quantize_ops(xml: Path) -> int:
    return Path(xml).read_text().count('type="FakeQuantize"')


def test_quantize_ir_quantizes_and_ignored_layers_stay_float(make_bundle, tmp_path):
    fp32 = Bundle(make_bundle())
    layers = nncfquant.quantizable_layers(fp32.model_path)
    assert layers and all(isinstance(name, str) for name in layers)
    every = nncfquant.quantize_ir(fp32.model_path, _frames(), tmp_path / "all.xml")
    assert every.with_suffix(".bin").is_file()
    some = nncfquant.quantize_ir(fp32.model_path, _frames(), tmp_path / "some.xml", ignored=layers[:1])
    none = nncfquant.quantize_ir(fp32.model_path, _frames(), tmp_path / "none.xml", ignored=layers)
    assert _fake_quantize_ops(every) > _fake_quantize_ops(some) > _fake_quantize_ops(none)


def test_gate_scores_an_ir_through_the_openvino_runner(make_bundle, tmp_path):
    fp32 = Bundle(make_bundle())
    xml = nncfquant.quantize_ir(fp32.model_path, _frames(), tmp_path / "q.xml")
    gate = Gate(fp32, _frames(4), [None] * 4, 0.05, tmp_path / "work", progress=False)
    result = gate.score(xml)
    assert result["frames"] == 4 and result["bases"] == ["fp32"]
    assert 0.0 <= result["dice_drop"] <= 1.0 and result["passed"] == (result["dice_drop"] <= 0.05
                                                                      and result["pixel_agreement"] >= 0.95)
    assert gate.layer_error(xml, frames=2) >= 0.0


def test_cpu_calibration_records_openvino_int8_and_ships_it_only_when_kept(make_bundle, png_folder, tmp_path):
    report = calibrate(make_bundle(), str(png_folder(16)), out=tmp_path / "cpu", target="cpu", method="minmax",
                       count=8, holdout=4, progress=False)
    ov = report["openvino"]
    int8 = Bundle(tmp_path / "cpu")
    assert ov["gate"]["threshold"] == 0.01 and ov["gate"]["attempts"][0]["float_layers"] == []
    assert ov["calibration_frames"] == 8 and set(ov["versions"]) == {"nncf", "openvino"}
    assert int8.calibration().openvino == ov  # the typed record carries it
    shipped = set(int8.manifest.files)
    if ov["kept"]:
        assert ov["model"] == OPENVINO_MODEL_FILE and ov["weights"] == OPENVINO_WEIGHTS_FILE
        assert {OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE} <= shipped
        assert ov["gate"]["passed"] and ov["speed"]["nncf_vs_qdq"] * nncfquant.SLOWER_TOLERANCE >= 1.0
        assert openvino_ir(int8) == int8.path / OPENVINO_MODEL_FILE
    else:  # failed the gate or slower than the Q/DQ model: said why, not shipped
        assert ov["model"] is None and ov["why"] and not shipped & {OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE}
        assert openvino_ir(int8) is None


def test_without_nncf_the_bundle_has_the_qdq_model_and_says_why(make_bundle, png_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(nncfquant, "available", lambda name: name != "nncf")
    report = calibrate(make_bundle(), str(png_folder(16)), out=tmp_path / "cpu", target="cpu", method="minmax",
                       count=8, holdout=4, progress=False)
    assert report["openvino"] == {"model": None, "kept": False,
                                  "why": "nncf not installed (pip install 'jetseg[openvino]'; x86 hosts only)"}
    assert OPENVINO_MODEL_FILE not in Bundle(tmp_path / "cpu").manifest.files


def test_tensorrt_target_makes_no_openvino_model(make_bundle, png_folder, tmp_path):
    report = calibrate(make_bundle(), str(png_folder(16)), out=tmp_path / "trt", method="minmax", count=8,
                       holdout=4, progress=False)
    assert "openvino" not in report and openvino_ir(Bundle(tmp_path / "trt")) is None


def test_a_slower_ir_is_not_kept(make_bundle, tmp_path, monkeypatch):
    fp32 = Bundle(make_bundle())
    monkeypatch.setattr(nncfquant, "_speed", lambda *a: {"ms": {"qdq": 1.0, "nncf": 2.0}, "nncf_vs_qdq": 0.5})
    gate = Gate(fp32, _frames(4), [None] * 4, 0.5, tmp_path / "work", progress=False)
    out = nncfquant.calibrate_openvino(fp32.model_path, _frames(), gate, fp32.model_path, tmp_path, 4)
    assert out.files == {} and out.record["kept"] is False and out.record["gate"]["passed"]
    assert out.record["why"] == "slower than the Q/DQ model on OpenVINO (2.00 ms vs 1.00 ms)"


def test_openvino_runner_prefers_the_ir_and_model_onnx_chooses_the_qdq(make_bundle, tmp_path):
    from jetseg.bundle import save_bundle

    fp32 = Bundle(make_bundle())
    xml = nncfquant.quantize_ir(fp32.model_path, _frames(), tmp_path / "q.xml")
    both = save_bundle(tmp_path / "both", fp32.model_path, fp32.spec, precision="int8",
                       extra_files={OPENVINO_MODEL_FILE: xml, OPENVINO_WEIGHTS_FILE: xml.with_suffix(".bin")})
    x = _frames(1)[0]
    with open_runner("openvino", both, threads=1) as ir, open_runner("openvino", both, threads=1, model="onnx") as onnx:
        ir_info, onnx_info = ir.describe(), onnx.describe()
        assert ir.infer(x).shape == onnx.infer(x).shape == (1, 2, 32, 32)
    assert ir_info["model_file"] == OPENVINO_MODEL_FILE and ir_info["ran_in"] == "int8"
    assert onnx_info["model_file"] == "model.onnx" and onnx_info["ran_in"] == "f32"  # the FP32 ONNX here


def test_an_ir_the_manifest_does_not_list_is_refused(make_bundle):
    from jetseg.errors import BundleError

    fp32 = make_bundle()
    (Path(fp32) / OPENVINO_MODEL_FILE).write_text("<net/>")
    with pytest.raises(BundleError, match="model.openvino.xml is not listed in the manifest, so jetseg will not"):
        Bundle(fp32)
