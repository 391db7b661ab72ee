"""What each command does with enhancement and registration bundles today (docs/tasks.md): export and
calibrate take enhancement models, run shows their enhanced frames and bench measures them (tests/benchmarks);
export, calibrate, train, run and bench take registration models (tests/calibration, tests/training,
tests/jetson/runtime, tests/benchmarks)."""
from __future__ import annotations

import onnx

from jetseg.bundle import Bundle
from jetseg.cli import main
from tests.fixtures.bundles import registration_bundle, smoother_bundle
from tests.fixtures.models import smoother
from tests.fixtures.processes import main_error as _error


def test_run_records_an_enhancement_model_side_by_side(tmp_path, capsys):
    import cv2

    bundle = smoother_bundle(tmp_path / "b")
    video, lines = tmp_path / "out.mp4", tmp_path / "rec"
    code = main(["run", "--model", str(bundle), "--source", "synthetic://ultrasound?frames=3",
                 "--sink", "file://%s?pair=1" % video, "--sink", "masks://%s?png=0" % lines])
    assert code == 0, capsys.readouterr().err
    capture = cv2.VideoCapture(str(video))
    ok, picture = capture.read()
    capture.release()
    assert ok and picture.shape == (480, 1280, 3)  # 640x480 synthetic frames, input | enhanced
    records = (lines / "frames.jsonl").read_text().splitlines()
    assert len(records) == 3 and all('"task": "enhancement"' in r for r in records)
    line = _error(capsys, ["run", "--model", bundle, "--source", "synthetic://ultrasound?frames=2",
                           "--sink", "masks://%s" % (tmp_path / "m")])
    assert "writes class masks, and this model's spec.task is enhancement (no mask)" in line


def test_export_takes_an_image_to_image_model(tmp_path, capsys):
    model = tmp_path / "denoiser.onnx"
    onnx.save(smoother(), str(model))
    code = main(["export", str(model), "--task", "enhancement", "--input-size", "32x32", "--channels", "1",
                 "--output-name", "enhanced", "--output-range", "0,1", "--out", str(tmp_path / "bundle")])
    assert code == 0, capsys.readouterr().err
    spec = Bundle(tmp_path / "bundle").spec
    assert spec.task == "enhancement" and spec.enhancement is not None
    assert (spec.enhancement.channels, spec.enhancement.range) == (1, [0.0, 1.0])
    assert spec.output.activation == "logits"  # untouched: an enhanced image is read as it is


def test_export_takes_a_registration_model_and_refuses_a_range_without_the_task(tmp_path, capsys):
    registration_bundle(tmp_path / "reg")
    model = tmp_path / "reg.onnx"
    model.write_bytes((tmp_path / "reg" / "model.onnx").read_bytes())
    code = main(["export", str(model), "--task", "registration", "--input-name", "moving", "--input-size", "32x32",
                 "--channels", "1", "--output-name", "flow", "--out", str(tmp_path / "o")])
    assert code == 0, capsys.readouterr().err
    spec = Bundle(tmp_path / "o").spec
    assert spec.task == "registration" and spec.registration.fixed_input == "fixed"
    line = _error(capsys, ["export", model, "--task", "registration", "--input-name", "moving", "--input-size",
                           "32x32", "--channels", "1", "--output-name", "flow", "--fixed-input", "reference", "--out",
                           tmp_path / "o2"])
    assert "has inputs ['moving', 'fixed']; the spec expects the inputs named 'moving', 'reference'" in line
    line = _error(capsys, ["export", model, "--input-size", "32x32", "--channels", "1", "--fixed-input", "fixed",
                           "--out", tmp_path / "o3"])
    assert "--fixed-input and --warped-output apply to registration models; add --task registration" in line
    line = _error(capsys, ["export", model, "--input-size", "32x32", "--channels", "1", "--output-range", "0,1",
                           "--out", tmp_path / "o4"])
    assert "--output-range applies to enhancement models; add --task enhancement" in line
