"""jetseg distill end to end on a small teacher: a normal bundle, unlabelled scans, labels, the gate,
interruption, determinism."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402

SCANS = "synthetic://ultrasound?frames=400&width=160&height=120"
THREADS = ["--threads", "1", "--train-threads", "1"]
FAST = ["--frames", "8", "--every", "4", "--val-frames", "4", "--val-every", "2", "--steps", "4", "--batch", "2",
        "--eval-interval", "2"] + THREADS


def _cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _distill(capsys, teacher, out, *extra):
    return _cli(capsys, "distill", str(teacher), "--scans", SCANS, "--out", str(out), *FAST, *extra)


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


def _staging_dirs():
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("jetseg-distill-")}


def test_writes_a_normal_bundle_with_the_teachers_spec(make_teacher, tmp_path, capsys):
    teacher = make_teacher()
    code, stdout, err = _distill(capsys, teacher, tmp_path / "student", "--gate-dice", "0")
    assert code == 0, err
    assert "held-out Dice vs teacher" in stdout and "of the teacher's bytes" in stdout
    bundle = Bundle(tmp_path / "student")  # verifies every file against the manifest
    t = Bundle(teacher).spec.to_dict()
    s = bundle.spec.to_dict()
    assert s.pop("name") == "student" and s.pop("description").startswith("distilled by jetseg distill")
    t.pop("name"), t.pop("description")
    assert s == t
    prov = bundle.manifest.provenance
    assert prov["tool"] == "jetseg distill" and prov["architecture"]["name"] == "unet-tiny"
    assert prov["teacher"]["model_sha256"] == Bundle(teacher).model_sha256
    assert "seed=1000" in prov["data"]["selection"]["uri"] and "seed=2000" in prov["data"]["report"]["uri"]
    assert set(prov["size"]) == {"teacher", "student", "bytes_ratio", "macs_ratio"}
    assert prov["size"]["student"]["macs"] > 0
    card = (tmp_path / "student" / "MODEL_CARD.md").read_text()
    assert "vs the teacher" in card and "MACs per frame" in card and "Not for clinical use" in card
    from jetseg.jetson.runners import open_runner

    x = bundle.spec.preprocess(np.zeros((120, 160, 3), np.uint8))
    with open_runner("torch", bundle) as a, open_runner("onnxrt", bundle) as b:
        assert np.max(np.abs(a.infer(x) - b.infer(x))) < 1e-4


def test_unlabelled_scans(make_teacher, tmp_path, capsys):
    from jetseg.models.synthetic import make_frame

    scans = tmp_path / "video-frames"
    scans.mkdir()
    for i in range(20):
        image, _ = make_frame("ultrasound", i * 7, seed=5, size=(120, 160))
        cv2.imwrite(str(scans / ("f%03d.png" % i)), image)
    teacher = make_teacher()
    argv = ["--frames", "20", "--steps", "4", "--batch", "2", "--eval-interval", "2"] + THREADS
    code, stdout, err = _cli(capsys, "distill", str(teacher), "--scans", str(scans), "--out",
                             str(tmp_path / "student"), "--gate-dice", "0", *argv)
    assert code == 0, err
    prov = Bundle(tmp_path / "student").manifest.provenance
    assert prov["metrics"]["dice_vs_labels"] is None and not prov["data"]["train"]["labels_used"]
    assert "last" in prov["data"]["report"]["uri"]  # held out: the last files of the folder
    assert "vs labels" not in stdout
    code, _, err = _cli(capsys, "distill", str(teacher), "--scans", str(scans), "--out", str(tmp_path / "s2"),
                        "--labels", *argv)
    assert code == 2 and "has no label" in err and not (tmp_path / "s2").exists()


def test_threads_0_is_jetsegs_default_and_the_runner_applies_it(make_teacher, tmp_path, capsys, opened_runners):
    argv = FAST[:-len(THREADS)] + ["--threads", "0", "--train-threads", "0", "--gate-dice", "0"]
    code, _, err = _cli(capsys, "distill", str(make_teacher()), "--scans", SCANS, "--out", str(tmp_path / "s"), *argv)
    assert code == 0, err
    prov = Bundle(tmp_path / "s").manifest.provenance
    assert prov["distillation"]["threads"] == 0 and prov["distillation"]["train_threads"] == 0
    assert prov["distillation"]["train_threads_used"] == 2
    assert len(opened_runners) == 4 and {r.threads for r in opened_runners} == {2}  # teacher x3, the student's check


@pytest.mark.parametrize("flag", ["--threads", "--train-threads"])
def test_negative_threads_are_one_line_errors(make_teacher, tmp_path, capsys, flag):
    code, _, err = _distill(capsys, make_teacher(), tmp_path / "student", flag, "-1")
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "%s -1 is invalid; expected 0 (jetseg's default) or a positive integer" % flag in err


def test_sigmoid_teacher_with_labels(make_teacher, tmp_path, capsys):
    code, stdout, err = _distill(capsys, make_teacher("sigmoid"), tmp_path / "student", "--labels", "--gate-dice", "0")
    assert code == 0, err
    bundle = Bundle(tmp_path / "student")
    assert bundle.spec.output.kind == "sigmoid" and bundle.spec.output_shape[1] == 1
    prov = bundle.manifest.provenance
    assert prov["data"]["train"]["labels_used"] and 0.0 <= prov["metrics"]["dice_vs_labels"] <= 1.0
    assert "vs labels" in stdout


def test_gate_refusal_is_one_line_and_leaves_nothing(make_teacher, tmp_path, capsys):
    teacher = make_teacher()
    before = _staging_dirs()
    code, stdout, err = _distill(capsys, teacher, tmp_path / "student", "--gate-dice", "0.999")
    assert code == 3
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "is below the gate 1.00; no bundle written" in lines[0]
    assert lines[0].startswith("jetseg distill: error: student Dice vs teacher ")
    assert _leftovers(tmp_path) == ["teacher"] and _staging_dirs() == before


def test_interrupted_run_leaves_nothing(make_teacher, tmp_path, capsys, monkeypatch):
    import jetseg.training.train as train

    def interrupt(*args, **kwargs):  # Ctrl-C while the staged student is being scored
        assert _staging_dirs() != before  # the student is staged
        raise KeyboardInterrupt

    teacher = make_teacher()
    before = _staging_dirs()
    monkeypatch.setattr(train, "run_held_out", interrupt)
    code, _, err = _distill(capsys, teacher, tmp_path / "student", "--gate-dice", "0")
    assert code == 130 and "interrupted" in err
    assert _leftovers(tmp_path) == ["teacher"] and _staging_dirs() == before


def test_sigterm_leaves_nothing(make_teacher, tmp_path):
    teacher = make_teacher()
    backup = tmp_path / ".student.backup"  # a user's folder named like a staging one: removed before issue 20
    backup.mkdir()
    (backup / "weights.pt").write_text("a user's backup")
    argv = [sys.executable, "-m", "jetseg", "distill", str(teacher), "--scans", SCANS, "--out",
            str(tmp_path / "student")] + FAST[:8] + ["--steps", "100000", "--eval-interval", "1000"] + THREADS
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    line = ""
    while "distilling" not in line and time.monotonic() < deadline:  # training has started
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "distill ended early"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM; nothing written" in err
    assert _leftovers(tmp_path) == [".student.backup", "teacher"]
    assert (backup / "weights.pt").read_text() == "a user's backup"


def test_same_seed_same_student(make_teacher, tmp_path, capsys):
    teacher = make_teacher()
    runs = []
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        code, _, err = _distill(capsys, teacher, tmp_path / name, "--gate-dice", "0", "--seed", seed)
        assert code == 0, err
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        runs.append((manifest["files"]["weights.pt"], manifest["provenance"]["history"]))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]


@pytest.mark.parametrize("argv, text", [
    (["--student", "unet-smal"], "unknown architecture 'unet-smal'; did you mean 'unet-small'?"),
    (["--temperature", "0"], "--temperature 0 is invalid"),
    (["--gate-dice", "1.5"], "--gate-dice 1.5 is invalid"),
    (["--steps", "0"], "--steps 0 is invalid; expected a positive integer"),
])
def test_cli_errors_are_one_line(make_teacher, tmp_path, capsys, argv, text):
    code, _, err = _distill(capsys, make_teacher(), tmp_path / "student", *argv)
    assert code == 2 and text in err and len(err.strip().splitlines()) == 1, err
    assert _leftovers(tmp_path) == ["teacher"]
