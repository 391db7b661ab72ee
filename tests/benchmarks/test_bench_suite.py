"""The suite through its Python API on tiny real ONNX bundles: report schema, accuracy figures, plots, gates."""
from __future__ import annotations

import json

import pytest

from jetseg.benchmarks.gates import Gates, failures
from jetseg.benchmarks.report import markdown_table, render_markdown
from jetseg.benchmarks.suite import Settings, run_benchmark
from jetseg.errors import JetsegError
from tests.fixtures.bundles import threshold_bundle

# ONNX Runtime rows only (the default, auto, picks openvino where installed: test_bench_openvino.py has those)
FAST = dict(min_time=0.02, warmup=1, min_runs=3, progress=False, backends=["onnxrt"], peers=False)


def test_report_schema_and_files(tiny_bundles, frames, tmp_path):
    ref, cand = tiny_bundles
    out = tmp_path / "out"
    report = run_benchmark([cand], ref, frames, out_dir=out, settings=Settings(batch_sizes=[1, 2], **FAST))
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["schema"] == "jetseg.bench/1"
    assert sorted(on_disk["files"]) == ["fps_vs_dice.png", "latency.png", "report.json", "report.md"]
    for name in ("latency.png", "fps_vs_dice.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = on_disk["results"]
    # reference and candidate, batch 1 and 2 each
    assert [(r["bundle"], r["batch"]) for r in rows] == [("tiny-fp32", 1), ("tiny-fp32", 2),
                                                         ("tiny-int8", 1), ("tiny-int8", 2)]
    for row in rows:
        for key in ("bundle", "backend", "precision", "fps", "latency_ms", "size_bytes", "dice_vs_reference",
                    "dice_drop", "dice_vs_labels"):
            assert key in row, key
        assert set(row["latency_ms"]) >= {"p50", "p90", "p99", "mean", "std"}
        assert row["fps"] > 0 and row["runs"] >= 3
        assert row["fps_median"] == pytest.approx(row["batch"] * 1000.0 / row["latency_ms"]["p50"], rel=1e-2)
    ref_row, cand_row = rows[0], rows[2]
    assert ref_row["peer"] == "onnxrt-fp32" and ref_row["role"] == "reference"
    assert ref_row["dice_vs_reference"] == 1.0 and ref_row["dice_drop"] == 0.0
    assert cand_row["precision"] == "int8" and cand_row["role"] == "candidate"
    # the candidate's threshold differs: it disagrees with FP32 on the pixels near the threshold
    assert 0.5 < cand_row["dice_vs_reference"] < 1.0
    # the drop is the worse of both bases: vs FP32 masks, and FP32's Dice vs labels minus INT8's
    by_labels = ref_row["dice_vs_labels"] - cand_row["dice_vs_labels"]
    by_reference = 1.0 - cand_row["dice_vs_reference"]
    assert cand_row["dice_drop_basis"] == ("labels" if by_labels > by_reference else "reference")
    assert cand_row["dice_drop"] == pytest.approx(max(by_labels, by_reference), abs=1e-4)
    assert cand_row["logit_error"]["max_abs"] == pytest.approx(0.6, abs=1e-4)
    assert on_disk["data"] == {"source": "frames given by the caller", "frames": 4, "labelled_frames": 4,
                               "frame_shape": [24, 32]}
    cond = on_disk["conditions"]
    assert cond["machine"]["cores"] and cond["versions"]["onnxruntime"] and cond["date"]
    assert report["summary"]["tiny-int8/onnxrt@1"]["dice_drop"] == cand_row["dice_drop"]
    skipped = on_disk["skipped"]
    assert skipped and "naive-loop peer skipped" in skipped[0]["reason"] and "weights.pt" in skipped[0]["reason"]
    md = (out / "report.md").read_text()
    assert "| tiny-int8 | onnxrt | int8 | f32 | runner | 1 |" in md
    assert md == render_markdown(on_disk)


def test_dice_drop_without_labels_uses_the_reference_as_truth(tiny_bundles, frames):
    ref, cand = tiny_bundles
    for f in frames:
        f.label = None
    report = run_benchmark([cand], ref, frames, settings=Settings(plots=False, hd95=False, **FAST))
    row = report["results"][1]
    assert row["dice_vs_labels"] is None and row["dice_drop_basis"] == "reference"
    assert row["dice_drop"] == pytest.approx(1.0 - row["dice_vs_reference"], abs=1e-4)


def test_gates_fail_with_clear_lines(tiny_bundles, frames):
    ref, cand = tiny_bundles
    gates = Gates(min_fps=1e12, max_dice_drop=0.0)
    report = run_benchmark([cand], ref, frames, settings=Settings(plots=False, **FAST), gates=gates)
    lines = failures(report["gates"])
    assert len(lines) == 2
    assert lines[0].startswith("min-fps: tiny-int8 on onnxrt (runner, batch 1) ran at ")
    assert lines[0].endswith("fps, below the required 1e+12 fps")
    assert lines[1].startswith("max-dice-drop: tiny-int8 on onnxrt (runner, batch 1) lost 0.")
    assert "more than the allowed 0.0000" in lines[1]
    ok = Gates(min_fps=1.0, max_dice_drop=0.5).evaluate(report)
    assert ok and not failures(ok)


def test_existing_out_dir_is_refused(tiny_bundles, frames, tmp_path):
    ref, cand = tiny_bundles
    (tmp_path / "taken").mkdir()
    with pytest.raises(JetsegError, match="taken already exists; choose another --out or pass --overwrite"):
        run_benchmark([cand], ref, frames, out_dir=tmp_path / "taken", settings=Settings(**FAST))


def test_invalid_settings_are_user_errors(tiny_bundles, frames):
    ref, cand = tiny_bundles
    with pytest.raises(JetsegError, match="unknown backend 'onxrt'; did you mean 'onnxrt'"):
        run_benchmark([cand], ref, frames, settings=Settings(**dict(FAST, backends=["onxrt"])))
    with pytest.raises(JetsegError, match="--max-dice-drop is 2; expected a Dice difference between 0 and 1"):
        Gates(max_dice_drop=2)


def test_markdown_table_has_one_line_per_row():
    rows = [{"bundle": "a", "backend": "onnxrt", "precision": "fp32", "kind": "runner", "batch": 1, "fps": 10.0,
             "latency_ms": {"p50": 1.0, "p99": 2.0}, "size_bytes": 2_000_000, "peer": "naive-loop", "ran_in": "f32"}]
    table = markdown_table(rows).splitlines()
    assert len(table) == 3
    assert table[2].startswith("| a | onnxrt | fp32 | f32 | runner | 1 | 10.0 | 1.00 | 2.00 | - |")
    assert table[2].endswith("| 2.00 | - | peer: naive-loop |")


def test_end_to_end_rows_run_the_daemon_pipeline(tiny_bundles, tmp_path):
    ref, cand = tiny_bundles
    data = "synthetic://ultrasound?frames=3&width=96&height=64"
    report = run_benchmark([cand], ref, data, out_dir=tmp_path / "e2e",
                           settings=Settings(e2e=True, e2e_frames=12, e2e_fps=50.0, e2e_paced_frames=10, **FAST))
    e2e = [r for r in report["results"] if r["kind"] == "e2e"]
    assert [(r["bundle"], r["role"]) for r in e2e] == [("tiny-fp32", "reference"), ("tiny-int8", "candidate")]
    for row in e2e:
        assert row["frames"] == 12 and len(row["segment_fps"]) == 3  # 3 pipeline runs of 4 frames
        assert len(row["bare_segment_fps"]) == 4  # bare timing before, between and after them
        assert row["fps"] > 0 and row["bare_fps"] > 0
        assert row["pipeline_efficiency"] == pytest.approx(row["fps"] / row["bare_fps"], abs=2e-5)
        assert set(row["latency_ms"]) >= {"p50", "p90", "p99", "mean", "std"}
        assert row["latency_basis"] == "capture to sink (null://), blocking queues"
        assert row["source"]["options"] == {"frames": 12, "loop": 12}
        assert set(row["dropped_detail"]) == {"source", "pipeline", "sink"}
        assert isinstance(row["dropped"], int)
        assert row["pipeline_overhead_ratio"] >= 0
        low, high = row["pipeline_efficiency_spread"]
        assert low <= high and len(row["pipeline_efficiency_segments"]) == 3
        assert ("pipeline_efficiency_note" in row) == (row["pipeline_efficiency"] > 1.0)
        paced = row["paced"]  # 10 frames at 50 fps, stamped with the synthetic source's schedule
        assert paced["fps_asked"] == 50.0 and paced["frames"] >= 2
        assert paced["source"]["options"] == {"frames": None, "loop": 10, "fps": 50, "realtime": True}
        # 10 frames read, not cut short by the URI's frames=3 (one overwritten in a hand-over on a busy machine
        # is counted as a pipeline drop)
        assert paced["frames"] + paced["dropped"]["pipeline"] == 10 and paced["fps"] > 25
        assert paced["scheduler"]["name"] in ("latency", "threaded") and paced["source_delay_ms"]["p50"] >= 0
        # the latency the pipeline adds, frame by frame (capture-to-mask minus that frame's own inference): never
        # negative, below capture-to-mask
        assert 0 <= paced["added_latency_ms"]["min"] and paced["segments"] == 1
        assert 0 < paced["added_latency_ms"]["p50"] < paced["latency_ms"]["p50"]
        assert "the synthetic source's schedule" in paced["latency_basis"]
        assert {"infer", "preprocess", "postprocess"} <= set(paced["stage_latency_ms"])
        assert "called at the same rate (10 calls)" in paced["bare_latency_ms"]["basis"]
        # the mask is ready before the sink has it: capture-to-mask <= capture-to-sink
        assert paced["latency_ms"]["p50"] <= paced["capture_to_sink_ms"]["p50"]
    entry = report["summary"]["tiny-int8/onnxrt@1"]
    assert {"added_latency_ms_p50", "added_latency_ms_p99", "pipeline_efficiency_spread"} <= set(entry)
    assert "pipeline_efficiency" in report["summary"]["tiny-int8/onnxrt@1"]
    assert "efficiency" in (tmp_path / "e2e" / "report.md").read_text()


def test_end_to_end_needs_a_source_uri(tiny_bundles, frames):
    ref, cand = tiny_bundles
    with pytest.raises(JetsegError, match="end-to-end mode needs a source URI for --data"):
        run_benchmark([cand], ref, frames, settings=Settings(e2e=True, plots=False, **FAST))


def test_naive_loop_and_torch_rows(unet_bundle):
    data = "synthetic://ultrasound?frames=2&width=96&height=64"
    report = run_benchmark([], unet_bundle, data, settings=Settings(plots=False,
                                                                    **dict(FAST, backends=["onnxrt", "torch"])))
    rows = {(r["backend"], r.get("peer")): r for r in report["results"]}
    assert set(rows) == {("onnxrt", "onnxrt-fp32"), ("torch", None), ("torch", "naive-loop")}
    naive = rows[("torch", "naive-loop")]
    assert naive["kind"] == "frame-to-mask" and naive["role"] == "peer" and naive["precision"] == "fp32"
    assert naive["fps"] > 0
    # the same weights in PyTorch and in ONNX Runtime agree
    assert naive["pixel_agreement"] > 0.99 and rows[("torch", None)]["pixel_agreement"] > 0.99
    assert not report["skipped"]


def test_naive_loop_skipped_with_reason_without_weights(tiny_bundles, frames):
    ref, cand = tiny_bundles
    report = run_benchmark([cand], ref, frames, settings=Settings(plots=False,
                                                                  **dict(FAST, backends=["onnxrt", "torch"])))
    reasons = [(s["bundle"], s["backend"], s["reason"]) for s in report["skipped"]]
    assert ("tiny-fp32", "torch", "tiny has neither model.ts nor weights.pt (what PyTorch runs)") in reasons
    assert ("tiny-int8", "torch", "tiny-int8 is int8; PyTorch eager runs FP32 weights only") not in reasons
    assert any(r[2].startswith("naive-loop peer skipped: ") for r in reasons)
    assert all(r["backend"] == "onnxrt" for r in report["results"])


def test_bench_runs_a_bundle_whose_spec_roi_is_larger_than_a_toy_frame(tmp_path, frames):
    """Every row is fed real benchmark frames (an 8x8 placeholder once broke the power step on pixel ROIs)."""
    roi = [10, 9, 20, 14]  # inside the 32x24 frames, outside an 8x8 placeholder
    ref = threshold_bundle(tmp_path / "roi-fp32", 16, 0.5, roi=roi, classes=("background", "blob"))
    cand = threshold_bundle(tmp_path / "roi-int8", 16, 0.56, "int8", roi=roi, classes=("background", "blob"))
    report = run_benchmark([cand], ref, frames, settings=Settings(plots=False, hd95=False, **FAST))
    assert {r["bundle"] for r in report["results"]} >= {"roi-fp32", "roi-int8"}
