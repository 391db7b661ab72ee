"""jetseg calibrate on a registration bundle: both inputs calibrated, the flow gate (EPE of INT8 against FP32,
warped-label Dice, folding) with the segmentation gate's held-out rules and fallback, calibration.json."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jetseg import evaluate
from jetseg.calibration.gate_flow import FOLDING_TOLERANCE, FlowGate
from jetseg.calibration.workflow import calibrate
from jetseg.cli import main
from jetseg.errors import GateError
from tests.fixtures.bundles import registration_bundle
from tests.fixtures.specs import registration_spec


def _fields(*fields):
    return evaluate.Outputs(spec=registration_spec(size=16), outputs=[np.asarray(f, np.float32)[None] for f in fields],
                            masks=[])


def test_compare_fields_measures_epe_warped_label_dice_and_folding():
    zero = np.zeros((2, 16, 16), np.float32)
    shifted = zero.copy()
    shifted[0] = 2.0  # two pixels along x everywhere
    label = np.zeros((16, 16), np.uint8)
    label[4:12, 4:8] = 1
    same = evaluate.compare_fields(_fields(zero), _fields(zero), [label])
    assert same["epe_mean"] == same["epe_p95"] == 0.0 and same["dice_drop"] == 0.0
    moved = evaluate.compare_fields(_fields(zero), _fields(shifted), [label])
    assert moved["epe_mean"] == pytest.approx(2.0) and moved["epe_p95"] == pytest.approx(2.0)
    # 8x4 box moved by 2 columns: overlap 8x2 -> Dice 2*16/(32+32)
    assert moved["warped_label_dice"] == pytest.approx(0.5) and moved["dice_drop"] == pytest.approx(0.5)
    folded = zero.copy()
    folded[0] = -3.0 * np.arange(16)[None, :]  # x -> x - 3x: the map reverses along x, det < 0 everywhere
    fold = evaluate.compare_fields(_fields(zero), _fields(folded))
    assert fold["folding"] == 1.0 and fold["fp32_folding"] == 0.0 and fold["folding_rise"] == 1.0
    assert fold["dice_drop"] is None and fold["labelled_frames"] == 0


def test_flow_gate_verdict_follows_each_limit():
    gate = FlowGate.__new__(FlowGate)  # the verdict alone, without running models
    gate.threshold, gate.max_dice_drop = 0.5, 0.01
    ok = {"epe_p95": 0.4, "dice_drop": 0.005, "folding_rise": 0.0}
    assert gate.verdict(ok)
    assert not gate.verdict(dict(ok, epe_p95=0.6))
    assert not gate.verdict(dict(ok, dice_drop=0.02))
    assert gate.verdict(dict(ok, dice_drop=None))  # no labels: the Dice part is not measured
    assert gate.verdict(dict(ok, folding_rise=FOLDING_TOLERANCE))
    assert not gate.verdict(dict(ok, folding_rise=FOLDING_TOLERANCE + 1e-4))


def test_registration_bundle_calibrates_with_both_inputs(tmp_path, png_folder, capsys):
    bundle, out = registration_bundle(tmp_path / "fp32"), tmp_path / "int8"
    code = main(["calibrate", str(bundle), "--scans", str(png_folder(16)), "--out", str(out), "--count", "8",
                 "--holdout", "4"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "gate: EPE vs FP32 mean" in stdout and "<= 0.5; warped-label Dice drop 0.0" in stdout
    record = json.loads((out / "calibration.json").read_text())
    gate = record["gate"]
    assert gate["task"] == "registration" and gate["passed"]
    assert gate["threshold"] == {"epe_p95_px": 0.5, "dice_drop": 0.01, "folding_rise": FOLDING_TOLERANCE}
    result = gate["result"]
    assert result["epe_p95"] <= 0.5 and result["labelled_frames"] == 4 and result["dice_drop"] <= 0.01
    assert result["bench_frames"]["frames"] > 0 and result["bench_frames"]["passed"]
    assert sorted(record["model"]["io"]["inputs"]) == ["fixed", "moving"]
    assert record["model"]["qdq"]["quantize"] > 0
    # both inputs were calibrated: each has a range in the report and an entry in the TensorRT cache
    assert {"moving", "fixed"} <= set(record["ranges"])
    assert "fixed:" in (out / "calibration.cache").read_text() and "moving:" in (out / "calibration.cache").read_text()


def test_registration_gate_fails_in_one_line(tmp_path, png_folder):
    with pytest.raises(GateError, match=r"INT8 fails the accuracy gate: EPE vs FP32 mean \d\.\d+ px, p95 \d\.\d+ px; "
                                        r"warped-label Dice drop .*\(limits --gate-epe 1e-06 / --gate-dice 0.01 / "
                                        r"folding rise 0.001\) on 4 held-out frames .*or a larger --gate-epe"):
        calibrate(registration_bundle(tmp_path / "fp32"), str(png_folder(16)), out=tmp_path / "o", count=8,
                  holdout=4, progress=False, gate_epe=1e-6, max_fallback=0)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("target", ["cpu", "tensorrt"])
def test_the_warp_stays_in_float_and_passes_the_tensorrt_rules(tmp_path, png_folder, target):
    pytest.importorskip("torch")
    import onnx

    from tests.fixtures.bundles import vxm_bundle

    report = calibrate(vxm_bundle(tmp_path / "fp32"), str(png_folder(16)), out=tmp_path / "int8", count=8,
                       holdout=4, progress=False, target=target)
    assert report["gate"]["warp_kept_in_float"] == ["/warp/Transpose", "/warp/Mul", "/warp/Add", "/warp/GridSample"]
    assert report["tensorrt_check"]["violations"] == []
    model = onnx.load(str(tmp_path / "int8" / "model.onnx"))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    grid = next(n for n in model.graph.node if n.op_type == "GridSample")
    assert producers[grid.input[1]] == "Add"  # the sampling grid is computed in float, never dequantized
    assert {o.name for o in model.graph.output} == {"flow", "warped"}


def test_fallback_ranks_the_unet_layers_never_the_warp(tmp_path, png_folder):
    pytest.importorskip("torch")
    from tests.fixtures.bundles import vxm_bundle

    with pytest.raises(GateError) as err:  # an impossible limit: one layer in float, then the gate gives up
        calibrate(vxm_bundle(tmp_path / "fp32"), str(png_folder(16)), out=tmp_path / "o", count=8, holdout=4,
                  progress=False, gate_epe=1e-9, max_fallback=1)
    message = str(err.value)
    assert "kept in float: /unet/" in message and "/warp/" not in message
