"""``jetseg bench`` on registration models: fps and latency, and against the FP32 reference's fields the EPE
(mean, p95), the Dice of labels warped by each field and folding, in the accuracy columns of the same tables;
each row runs both inputs (the frames and their known deformations, the calibration gate's pairs)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jetseg.benchmarks.inputs import FrameRois
from jetseg.calibration.workflow import calibrate
from jetseg.cli import main
from tests.fixtures.bundles import registration_bundle, threshold_bundle
from tests.fixtures.media import write_png_scans

QUICK = ["--frames", "4", "--min-time", "0.05", "--warmup", "1", "--min-runs", "2", "--no-peers", "--no-naive",
         "--no-plots", "--backend", "onnxrt"]


def test_bench_reports_epe_warped_label_dice_and_folding(tmp_path, capsys):
    fp32 = registration_bundle(tmp_path / "fp32")
    calibrate(fp32, str(write_png_scans(tmp_path / "scans", 16, True)), out=tmp_path / "int8", count=8, holdout=4, progress=False, target="cpu")
    code = main(["bench", str(tmp_path / "int8"), "--reference", str(fp32), "--data", str(write_png_scans(tmp_path / "b", 4, True)),
                 "--out", str(tmp_path / "rep"), "--batch", "1,2", "--max-dice-drop", "0.01"] + QUICK)
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    rows = {(r["role"], r["batch"]): r for r in report["results"] if r["kind"] == "runner"}
    ref, cand = rows[("reference", 1)], rows[("candidate", 1)]
    assert ref["task"] == cand["task"] == "registration"
    assert ref["epe_mean"] == 0.0 and ref["warped_label_dice"] == 1.0 and ref["dice_vs_reference"] is None
    assert 0.0 < cand["epe_mean"] <= cand["epe_p95"] <= 0.5
    assert cand["dice_drop"] <= 0.01 and cand["dice_drop_basis"] == "warped labels, vs FP32"
    assert cand["folding"] == pytest.approx(cand["reference_folding"], abs=0.001)
    assert cand["fps"] > 0 and rows[("candidate", 2)]["fps"] > 0  # batches of pairs
    table = (tmp_path / "rep" / "report.md").read_text()
    assert "| EPE vs ref (px) | EPE p95 (px) | warped-label Dice vs ref | Dice drop | folding |" in table
    assert any("epe_p95" in entry for entry in report["summary"].values())


def test_pairs_batch_per_input():
    pairs = [(np.full((1, 1, 2, 2), i, np.float32), np.full((1, 1, 2, 2), -i, np.float32)) for i in range(3)]
    out = FrameRois.batched(pairs, 2)
    assert len(out) == 2 and out[0][0].shape == (2, 1, 2, 2)
    assert out[1][0][:, 0, 0, 0].tolist() == [2.0, 0.0] and out[1][1][:, 0, 0, 0].tolist() == [-2.0, 0.0]


def test_bench_refuses_a_segmentation_candidate_against_a_registration_reference(tmp_path, capsys):
    fp32 = registration_bundle(tmp_path / "fp32")
    code = main(["bench", str(threshold_bundle(tmp_path / "seg")), "--reference", str(fp32), "--data",
                 "synthetic://ultrasound?frames=2"] + QUICK)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "has task segmentation but the --reference %s has registration" % fp32 in err


def test_bench_e2e_refuses_registration_in_one_line(tmp_path, capsys):
    fp32 = registration_bundle(tmp_path / "fp32")
    code = main(["bench", str(fp32), "--reference", str(fp32), "--data", "synthetic://ultrasound?frames=2",
                 "--e2e"] + QUICK)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "--e2e runs the daemon's pipeline, which does not take registration models yet" in err
