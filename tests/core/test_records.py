"""The JSON records (jetseg/records.py): every record the commands write reads back through its declaration with no
loss, older files still read, and a damaged file of each kind gives one line naming the file and the field."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from jetseg.bundle import Bundle
from jetseg.calibration.workflow import calibrate
from jetseg.cli import main
from jetseg.engines.build import build_engine
from jetseg.errors import BundleError, JetsegError
from jetseg.jetson.device import info
from jetseg.records import BenchReport, BuildRecord, CalibrationRecord, JsonRecord, ManifestRecord
from tests.fixtures import fake_tensorrt
from tests.fixtures.bundles import unet_like_bundle
from tests.fixtures.media import write_png_scans

QUICK_BENCH = ["--min-time", "0.02", "--warmup", "1", "--min-runs", "3", "--no-naive", "--backend", "onnxrt",
               "--no-peers", "--no-plots", "--data", "synthetic://ultrasound?frames=3&width=64&height=64"]


def _assert_reads_back(kind: type, path: Path) -> JsonRecord:
    text = path.read_text(encoding="utf-8")
    record = kind.read(path)  # type: ignore[attr-defined]
    assert record.to_dict() == json.loads(text), path
    assert record.to_json() == text, path  # the writer writes exactly what the declaration renders
    return record


def test_every_record_the_commands_write_reads_back_without_loss(tmp_path, monkeypatch):
    fp32 = unet_like_bundle(tmp_path / "fp32")
    int8 = tmp_path / "int8"
    calibrate(fp32, str(write_png_scans(tmp_path / "scans", 24, True)), int8, count=12, holdout=6, progress=False)
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))
    fake_tensorrt.install(monkeypatch, "8.5.2.2")
    outcome = build_engine(Bundle(int8), "int8", workspace_mb=64, out=io.StringIO())
    assert main(["bench", str(int8), "--reference", str(fp32), "--out", str(tmp_path / "bench")] + QUICK_BENCH) == 0

    for bundle in (fp32, int8):
        manifest = _assert_reads_back(ManifestRecord, bundle / ManifestRecord.FILE)
        assert manifest == Bundle(bundle).manifest
    calibration = _assert_reads_back(CalibrationRecord, int8 / CalibrationRecord.FILE)
    assert calibration == Bundle(int8).calibration() and calibration.target == "tensorrt"
    build = _assert_reads_back(BuildRecord, outcome.folder / BuildRecord.FILE)
    assert build.to_dict() == outcome.record and build.engine_sha256
    report = _assert_reads_back(BenchReport, tmp_path / "bench" / BenchReport.FILE)
    assert report.schema == "jetseg.bench/1" and report.results


def test_records_written_before_the_declaration_still_read(tmp_path):
    # build.json had no format; calibration.json from before implicit_int8; a bench report without gates
    build = BuildRecord.from_dict({"key": {"precision": "fp16"}, "engine_sha256": "ab" * 32})
    assert build.format == 1 and build.flags == {}
    old = CalibrationRecord.from_dict({"float_layers": ["conv"]})
    assert old.target is None and old.fp32_model_sha256 is None and old.float_layers == ["conv"]
    assert "gates" not in BenchReport.from_dict({"schema": "jetseg.bench/1", "results": []}).to_dict()


@pytest.mark.parametrize("kind, data, field, expected", [
    (ManifestRecord, {"files": ["model.onnx"]}, "'files' is a list", "an object"),
    (CalibrationRecord, {"float_layers": "conv"}, "'float_layers' is a string", "a list"),
    (BuildRecord, {"key": {}, "engine_bytes": "12"}, "'engine_bytes' is a string", "an integer or null"),
    (BenchReport, {"schema": "jetseg.bench/1", "results": {}}, "'results' is an object", "a list"),
])
def test_a_damaged_field_is_one_line_naming_file_and_field(tmp_path, kind, data, field, expected):
    path = tmp_path / kind.FILE
    path.write_text(json.dumps(data))
    with pytest.raises(kind.ERROR) as caught:
        kind.read(tmp_path)
    message = str(caught.value)
    assert message.startswith("%s: field %s; expected %s; " % (path, field, expected)) and "\n" not in message
    assert message.endswith(kind.REMEDY)


@pytest.mark.parametrize("kind", [ManifestRecord, CalibrationRecord, BuildRecord, BenchReport])
def test_a_file_that_is_not_a_record_is_one_line(tmp_path, kind):
    path = tmp_path / kind.FILE
    path.write_text("[1, 2]")
    with pytest.raises(JetsegError, match=r"^%s is a list, not a JSON object; " % path):
        kind.read(path)
    path.write_text("{not json")
    with pytest.raises(JetsegError, match=r"^%s is not valid JSON \(" % path):
        kind.read(path)


def test_missing_required_field_and_newer_format_are_refused(tmp_path):
    with pytest.raises(BundleError, match=r"^build.json has no 'key' field; the engine folder is damaged"):
        BuildRecord.from_dict({"engine_sha256": "ab"})
    with pytest.raises(BundleError, match=r"^manifest.json has format 2; this jetseg reads format <= 1: upgrade"):
        ManifestRecord.from_dict({"format": 2, "files": {}})
    with pytest.raises(JetsegError, match=r"has format 'jetseg.bench/9'; this jetseg reads 'jetseg.bench/1'"):
        BenchReport.from_dict({"schema": "jetseg.bench/9", "results": []})
    with pytest.raises(BundleError, match=r"files\['model.onnx'\] is an integer; expected a sha256 string"):
        ManifestRecord.from_dict({"files": {"model.onnx": 1}})
