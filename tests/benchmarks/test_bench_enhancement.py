"""``jetseg bench`` on enhancement models: fps, latency and PSNR/SSIM against FP32 (and against clean
targets when the frames carry them) in the accuracy columns of the same tables."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jetseg import evaluate
from jetseg.benchmarks.accuracy import accuracy_columns, clean_targets, score_row
from jetseg.benchmarks.report import markdown_table
from jetseg.cli import main
from jetseg.jetson.frames.frame import Frame
from tests.fixtures.bundles import smoother_bundle, threshold_bundle
from tests.fixtures.specs import enhancement_spec

QUICK = ["--frames", "3", "--min-time", "0.05", "--warmup", "1", "--min-runs", "2", "--no-peers", "--no-naive",
         "--no-plots", "--backend", "onnxrt"]


def test_bench_reports_psnr_and_ssim_against_fp32(tmp_path, capsys):
    fp32 = smoother_bundle(tmp_path / "fp32")
    damaged = smoother_bundle(tmp_path / "damaged", gain=0.9)  # 10% darker than FP32
    code = main(["bench", str(damaged), "--reference", str(fp32), "--data", "synthetic://ultrasound?frames=3",
                 "--out", str(tmp_path / "rep")] + QUICK)
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    rows = {r["role"]: r for r in report["results"] if r["kind"] == "runner"}
    ref, cand = rows["reference"], rows["candidate"]
    assert ref["task"] == cand["task"] == "enhancement"
    assert ref["ssim_vs_reference"] == pytest.approx(1.0) and ref["dice_vs_reference"] is None
    assert cand["fps"] > 0 and cand["latency_ms"]["p50"] > 0
    assert cand["psnr_vs_reference"] is not None and cand["psnr_vs_reference"] < ref["psnr_vs_reference"]
    assert cand["ssim_vs_reference"] < 1.0
    assert cand["psnr_drop"] is None and cand["psnr_vs_targets"] is None  # synthetic frames carry no clean target
    table = (tmp_path / "rep" / "report.md").read_text()
    assert "| PSNR vs ref (dB) | SSIM vs ref | PSNR vs targets (dB) |" in table and "Dice vs ref" not in table
    summary = report["summary"]
    assert any("ssim_vs_reference" in entry for entry in summary.values())


def test_bench_refuses_a_candidate_of_another_task(tmp_path, capsys):
    fp32 = smoother_bundle(tmp_path / "fp32")
    other = threshold_bundle(tmp_path / "seg")
    code = main(["bench", str(other), "--reference", str(fp32), "--data", "synthetic://ultrasound?frames=2"] + QUICK)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "has task segmentation but the --reference %s has enhancement" % fp32 in err


def test_clean_targets_are_cropped_and_resized_like_the_input():
    spec = enhancement_spec(size=4)
    image = np.zeros((8, 8), np.uint8)
    clean = np.full((8, 8), 255, np.uint8)
    clean[:4] = 0
    frames = [Frame(index=0, image=image, timestamp=0.0, meta={"clean": clean})]
    targets = clean_targets(spec, frames)
    assert targets is not None and targets[0].shape == (1, 4, 4) and targets[0].dtype == np.float32
    assert targets[0][0, :2].max() == 0.0 and targets[0][0, 2:].min() == 1.0
    assert clean_targets(spec, frames + [Frame(index=1, image=image, timestamp=0.0)]) is None


def test_targets_give_the_psnr_drop_columns():
    spec = enhancement_spec(size=16)  # SSIM's window is 11x11
    clean = np.full((16, 16), 128, np.uint8)
    frames = [Frame(index=i, image=clean, timestamp=0.0, meta={"clean": clean}) for i in range(2)]
    good = np.full((1, 1, 16, 16), 128 / 255.0, np.float32)
    noisy = good + np.random.default_rng(0).normal(0, 0.05, good.shape).astype(np.float32)
    fp32 = evaluate.Outputs(spec, [good, good], [])
    int8 = evaluate.Outputs(spec, [noisy, noisy], [])
    cols = accuracy_columns(score_row(int8, fp32, frames, hd95=False))
    assert cols["task"] == "enhancement" and cols["dice_drop"] is None
    assert cols["psnr_drop"] is not None and cols["psnr_drop"] > 10  # FP32 is exact (100 dB cap), INT8 is not
    assert cols["psnr_vs_targets"] == pytest.approx(cols["psnr_vs_reference"], abs=0.01)
    row = dict(cols, bundle="b", backend="onnxrt", precision="int8", kind="runner", batch=1, fps=10.0)
    assert "PSNR drop (dB)" in markdown_table([row])


def test_bench_from_the_command_line_measures_the_psnr_drop_on_noisy_clean_pairs(tmp_path, capsys):
    fp32 = smoother_bundle(tmp_path / "fp32")
    damaged = smoother_bundle(tmp_path / "damaged", gain=0.9)
    code = main(["bench", str(damaged), "--reference", str(fp32), "--data",
                 "synthetic://ultrasound?noise=lowgain&width=160&height=120&frames=3", "--roi", "10,10,100,80",
                 "--out", str(tmp_path / "rep")] + QUICK)
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    rows = {r["role"]: r for r in report["results"] if r["kind"] == "runner"}
    ref, cand = rows["reference"], rows["candidate"]
    assert ref["psnr_drop"] == pytest.approx(0.0) and ref["psnr_vs_targets"] is not None
    assert cand["psnr_vs_targets"] is not None and cand["psnr_drop"] is not None and cand["ssim_vs_targets"] is not None


def test_clean_targets_follow_the_given_boxes():
    spec = enhancement_spec(size=4)
    clean = np.zeros((8, 8), np.uint8)
    clean[4:, 4:] = 255
    frames = [Frame(index=0, image=clean, timestamp=0.0, meta={"clean": clean})]
    assert float(clean_targets(spec, frames, boxes=[(4, 4, 4, 4)])[0].min()) == 1.0
    assert float(clean_targets(spec, frames, boxes=[(0, 0, 4, 4)])[0].max()) == 0.0
