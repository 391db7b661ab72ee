"""The report's rows without any runtime: the fastest-float and exact-FP32 baselines, the INT8 verdict, outliers,
INT8 form, bundle bytes."""
from __future__ import annotations

import json

from jetseg.benchmarks import cost
from jetseg.benchmarks.report import markdown_table
from jetseg.benchmarks.rows import add_baselines, int8_form, outliers, summary
from jetseg.benchmarks.timing import summarize
from jetseg.bundle import OUTPUT_MARKER, Bundle, save_bundle
from tests.fixtures.models import threshold_onnx
from tests.fixtures.specs import tiny_spec


def _row(bundle, backend, precision, fps, peer=None, role="peer"):
    out = {"bundle": bundle, "backend": backend, "precision": precision, "kind": "runner", "batch": 1, "fps": fps,
           "role": role}
    if peer:
        out["peer"] = peer
    return out


SUMMARY_KEYS = dict(speedup_vs_reference=None, speedup_vs_reference_median=None, dice_drop=0.0,
                    dice_drop_basis="labels", size_ratio_vs_reference=0.26, bundle_bytes=1, bundle_ratio_vs_reference=0.26)


def test_speedups_are_stated_against_the_fastest_float_row_and_the_fastest_exact_fp32_row():
    rows = [_row("us", "onnxrt", "fp32", 40.0, "onnxrt-fp32", "reference"), _row("us", "openvino", "fp32", 50.0),
            _row("us", "openvino", "fp32", 80.0, "openvino-default"), dict(_row("us-int8", "openvino", "int8", 120.0,
                                                                               role="candidate"), **SUMMARY_KEYS)]
    for row, ran_in in zip(rows, ("f32", "f32", "bf16", "int8")):
        row["ran_in"] = ran_in
    add_baselines(rows)
    # the OpenVINO default row ran in bf16: the fastest float, but not an FP32 row
    assert {r["fastest_float"] for r in rows} == {"us/openvino/openvino-default"}
    assert rows[3]["speedup_vs_fastest_float"] == 1.5 and rows[0]["speedup_vs_fastest_float"] == 0.5
    assert {r["best_fp32"] for r in rows} == {"us/openvino"}
    assert rows[3]["speedup_vs_best_fp32"] == 2.4
    entry = summary(rows)["us-int8/openvino@1"]
    assert entry["int8_verdict"] == "INT8 is 1.50x the fastest float row (us/openvino/openvino-default, bf16)"


def test_int8_that_does_not_beat_the_fastest_float_says_so_and_recommends_the_float_precision():
    rows = [dict(_row("us", "openvino", "fp32", 100.0, "openvino-bf16"), ran_in="bf16"),
            dict(_row("us-int8", "onnxrt", "int8", 90.0, role="candidate"), ran_in="int8", **SUMMARY_KEYS)]
    add_baselines(rows)
    assert summary(rows)["us-int8/onnxrt@1"]["int8_verdict"] == (
        "INT8 is not faster than the fastest float row (0.90x us/openvino/openvino-bf16, bf16): use the float "
        "model in bf16 here")


def test_outliers_are_flagged_only_when_they_matter():
    steady = outliers(summarize([10.0] * 199 + [15.0]))
    assert steady["calls_over_2x_p50"] == 0 and not steady["flagged"]
    burst = outliers(summarize([10.0] * 95 + [40.0] * 5))
    assert burst["calls_over_2x_p50"] == 5 and burst["flagged"] and burst["max_over_p50"] == 4.0
    spike = outliers(summarize([10.0] * 500 + [80.0]))
    assert spike["flagged"] and spike["share"] < 0.01  # one call 8x the median


def test_tensorrt_form_int8_is_labelled_and_bundle_bytes_count_every_shipped_file(tmp_path):
    spec = tiny_spec(16, classes=("background", "blob"))
    for target in ("tensorrt", "cpu"):
        save_bundle(tmp_path / target, threshold_onnx(16), spec, precision="int8",
                    extra_files={"calibration.json": json.dumps({"target": target}).encode()})
        assert int8_form(Bundle(tmp_path / target)) == target
    fp32 = Bundle(save_bundle(tmp_path / "fp32", threshold_onnx(16), spec).path)
    assert int8_form(fp32) is None
    shipped = sum(p.stat().st_size for p in (tmp_path / "cpu").iterdir() if p.name != OUTPUT_MARKER)  # not shipped
    assert cost.bundle_bytes(Bundle(tmp_path / "cpu")) == shipped
    row = dict(_row("b", "onnxrt", "int8", 10.0, role="candidate"), int8_form="tensorrt",
               latency_ms={"p50": 1.0, "p99": 2.0})
    assert "TensorRT-form INT8 (Q/DQ on float weights, made for TensorRT" in markdown_table([row])


def test_efficiency_above_one_is_noise_and_the_naive_loop_outliers_are_carried():
    naive = dict(_row("us", "torch", "fp32", 8.0, "naive-loop"), kind="frame-to-mask",
                 outliers={"flagged": True, "calls_over_2x_p50": 8, "max_over_p50": 19.4})
    runner = dict(_row("us-int8", "openvino", "int8", 120.0, role="candidate"), speedup_vs_reference=3.0,
                  speedup_vs_reference_median=3.1, dice_drop=0.0, dice_drop_basis="labels",
                  size_ratio_vs_reference=0.26, bundle_bytes=2_000_000, bundle_ratio_vs_reference=0.26)
    e2e = dict(_row("us-int8", "openvino", "int8", 121.0, role="candidate"), kind="e2e", pipeline_efficiency=1.01,
               pipeline_efficiency_spread=[0.97, 1.05], pipeline_efficiency_note="above 1 is measurement noise",
               latency_ms={"p50": 9.0, "p99": 12.0}, dropped=0,
               paced={"fps_asked": 30.0, "fps": 30.0, "latency_ms": {"p50": 8.6, "p99": 10.0},
                      "added_latency_ms": {"p50": 0.6, "p99": 1.5},
                      "scheduler": {"name": "latency", "reason": "live at 30 fps: ..."}})
    entry = summary([naive, runner, e2e])["us-int8/openvino@1"]
    assert entry["naive_loop_outliers"]["calls_over_2x_p50"] == 8
    assert entry["pipeline_efficiency_note"].startswith("above 1 is measurement noise")
    assert (entry["added_latency_ms_p50"], entry["added_latency_ms_p99"]) == (0.6, 1.5)
    notes = markdown_table([e2e, naive])
    assert "efficiency 1.010 (runs 0.970-1.050): above 1 is noise, not a gain" in notes
    assert "paced 30 fps (latency scheduler): capture-to-mask p50 8.60 / p99 10.00 ms, added by the " \
           "pipeline per frame p50 0.60 / p99 1.50 ms" in notes
    assert "outliers: 8 calls > 2x p50, max 19.4x p50" in notes


def test_a_distilled_fp32_student_is_compared_with_its_teacher_in_the_same_fastest_precision():
    rows = [dict(_row("teacher", "onnxrt", "fp32", 40.0, "onnxrt-fp32", "reference"), ran_in="f32"),
            dict(_row("teacher", "openvino", "fp32", 180.0, "openvino-bf16"), ran_in="bf16"),
            dict(_row("student", "openvino", "fp32", 260.0, role="candidate"), ran_in="f32", **SUMMARY_KEYS),
            dict(_row("student", "openvino", "fp32", 520.0, "openvino-bf16", "candidate"), ran_in="bf16",
                 **SUMMARY_KEYS)]
    add_baselines(rows)
    # the baseline is the teacher's fastest float row, never the student's own
    assert {r["fastest_float"] for r in rows} == {"teacher/openvino/openvino-bf16"}
    entries = summary(rows)
    assert entries["student/openvino/openvino-bf16@1"]["speedup_vs_fastest_float"] == round(520.0 / 180.0, 4)
    assert entries["student/openvino@1"]["speedup_vs_best_fp32"] == 6.5  # the f32 footnote
