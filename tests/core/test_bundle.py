"""Bundle round trip, hash checks, atomic writes."""
from __future__ import annotations

import json

import pytest

from jetseg.bundle import Bundle, save_bundle, sha256_file, writing
from jetseg.errors import BundleError, JetsegError
from jetseg.spec import Spec


def test_round_trip_with_hashes(tmp_path):
    spec = Spec.from_dict({"name": "demo", "classes": ["background", "lesion"]})
    bundle = save_bundle(tmp_path / "b", b"not really onnx", spec, extra_files={"weights.pt": b"w"},
                         provenance={"command": "test"})
    assert bundle.name == "demo" and bundle.precision == "fp32"
    again = Bundle(tmp_path / "b")
    assert again.manifest.files["model.onnx"] == sha256_file(tmp_path / "b" / "model.onnx")
    assert set(again.manifest.files) == {"model.onnx", "spec.yaml", "weights.pt"}
    assert again.manifest.provenance == {"command": "test"}
    assert again.weights_path is not None and again.spec.to_dict() == spec.to_dict()


def test_changed_file_is_detected(tmp_path):
    save_bundle(tmp_path / "b", b"model", Spec())
    (tmp_path / "b" / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="model.onnx has sha256 .* but the manifest says"):
        Bundle(tmp_path / "b")
    Bundle(tmp_path / "b", verify=False)  # explicit opt-out still loads


def test_missing_pieces_are_named(tmp_path):
    with pytest.raises(BundleError, match="is not a model bundle directory"):
        Bundle(tmp_path / "nope")
    (tmp_path / "b").mkdir()
    with pytest.raises(BundleError, match="has no model.onnx"):
        Bundle(tmp_path / "b")
    save_bundle(tmp_path / "c", b"m", Spec())
    (tmp_path / "c" / "manifest.json").write_text("{")
    with pytest.raises(BundleError, match="manifest.json is not valid JSON"):
        Bundle(tmp_path / "c")
    (tmp_path / "c" / "manifest.json").write_text(json.dumps({"files": {"gone.bin": "0" * 64}}))
    with pytest.raises(BundleError, match="gone.bin is listed in the manifest but missing"):
        Bundle(tmp_path / "c")


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with writing(tmp_path / "out") as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_bundle_that_does_not_open_is_never_left_at_its_name(tmp_path):
    from tests.fixtures.models import threshold_onnx

    spec = Spec.from_dict({"name": "t", "input": {"size": [32, 32], "channels": 1, "color_order": "gray"},
                           "classes": ["background", "lesion"]})
    with pytest.raises(BundleError, match="has shape"):  # the model takes 48x48, the spec says 32x32
        save_bundle(tmp_path / "out", threshold_onnx(48), spec)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten_by_default(tmp_path):
    save_bundle(tmp_path / "b", b"m", Spec())
    with pytest.raises(JetsegError, match="already exists; choose another --out"):
        save_bundle(tmp_path / "b", b"m2", Spec())
    save_bundle(tmp_path / "b", b"m2", Spec(), overwrite=True)
    assert (tmp_path / "b" / "model.onnx").read_bytes() == b"m2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_calibration_record(tmp_path):
    assert Bundle(save_bundle(tmp_path / "fp32", b"model", Spec()).path).calibration() is None
    report = {"method": "minmax", "target": "cpu", "trt_version": "8.5.2", "float_layers": ["dec_conv"],
              "implicit_int8": {"model": None, "model_sha256": "ab" * 32}, "ranges": {}}
    bundle = save_bundle(tmp_path / "int8", b"model", Spec(), precision="int8",
                         extra_files={"calibration.json": json.dumps(report).encode()})
    record = bundle.calibration()
    assert record is not None
    assert record.target == "cpu"
    assert record.float_layers == ["dec_conv"]
    assert record.fp32_model is None and record.fp32_model_sha256 == "ab" * 32
    # a record from before calibration.json described the implicit-INT8 graph
    old = save_bundle(tmp_path / "old", b"model", Spec(), precision="int8",
                      extra_files={"calibration.json": b'{"float_layers": []}'}).calibration()
    assert old is not None and old.target is None and old.fp32_model_sha256 is None and old.float_layers == []


def test_damaged_calibration_record_is_one_line(tmp_path):
    save_bundle(tmp_path / "b", b"model", Spec(), extra_files={"calibration.json": b"[1, 2]"})
    with pytest.raises(BundleError, match=r"calibration.json is a list, not a JSON object; the bundle is damaged"):
        Bundle(tmp_path / "b").calibration()
    (tmp_path / "b" / "calibration.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"calibration.json is not valid JSON \(.*\); the bundle is damaged"):
        Bundle(tmp_path / "b", verify=False).calibration()
