"""`jetseg calibrate --gate-dice D` passing on scans S implies `jetseg bench --max-dice-drop D` on S passing:
one evaluation path (jetseg.evaluate), the same metric, the same basis, the bench's frames checked."""
from __future__ import annotations

import json

import pytest

from jetseg.cli import main

# the gate scores with ONNX Runtime: so does this bench (auto would pick OpenVINO where installed)
QUICK = ["--min-time", "0.02", "--warmup", "1", "--min-runs", "3", "--no-naive", "--no-hd95", "--backend", "onnxrt", "--no-peers"]


@pytest.mark.parametrize("labelled", [True, False])
def test_a_passing_gate_implies_a_passing_bench(make_bundle, png_folder, tmp_path, capsys, labelled):
    bundle, scans, out = make_bundle(), png_folder(24, labelled=labelled), tmp_path / "int8"
    gate_dice = 0.01
    assert main(["calibrate", str(bundle), "--scans", str(scans), "--out", str(out), "--count", "12",
                 "--holdout", "6", "--gate-dice", str(gate_dice)]) == 0
    report = json.loads((out / "calibration.json").read_text())
    gate = report["gate"]
    assert gate["bases"] == (["fp32", "labels"] if labelled else ["fp32"])
    assert gate["int8_vs_fp32"]["pixel_agreement"] >= 1.0 - gate_dice
    assert report["curation"]["split"]["method"] == "per-frame"
    checked = gate["result"]["bench_frames"]
    capsys.readouterr()
    code = main(["bench", str(out), "--reference", str(bundle), "--data", str(scans), "--out",
                 str(tmp_path / "bench"), "--max-dice-drop", str(gate_dice)] + QUICK)
    bench = json.loads((tmp_path / "bench" / "report.json").read_text())
    row = next(r for r in bench["results"] if r["role"] == "candidate")
    assert code == 0, capsys.readouterr().err
    # the same frames and metric give the same number in both tools
    assert row["dice_drop"] == pytest.approx(checked["dice_drop"], abs=1e-4)
    assert row["dice_drop_basis"] == {"fp32": "reference", "labels": "labels"}[checked["dice_drop_basis"]]
