"""`jetseg bench` end to end on tiny bundles and a tiny synthetic source: gates, baseline, user errors."""
from __future__ import annotations

import json

from jetseg.cli import main

DATA = "synthetic://ultrasound?frames=3&width=96&height=64"
# gates on a named backend (the default, auto, picks openvino where it is installed: tests/benchmarks/test_bench_openvino.py)
QUICK = ["--min-time", "0.02", "--warmup", "1", "--min-runs", "3", "--no-naive", "--backend", "onnxrt", "--no-peers"]


def _bench(ref, cand, out, *extra):
    return main(["bench", str(cand), "--reference", str(ref), "--data", DATA, "--out", str(out)] + QUICK
                + list(extra))


def test_impossible_gates_exit_non_zero_with_one_line_each(make_bundle, tmp_path, capsys):
    # reference: everything is foreground (overlaps every label a little); candidate: nothing is (Dice 0)
    ref, cand = make_bundle("tiny-fp32", -1.0), make_bundle("tiny-int8", 2.0, "int8")
    code = _bench(ref, cand, tmp_path / "out", "--min-fps", "1e12", "--max-dice-drop", "0", "--no-plots")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    failed = [line for line in err if line.startswith("jetseg bench: gate failed: ")]
    assert len(failed) == 2, err
    assert "min-fps: tiny-int8 on onnxrt (runner, batch 1) ran at " in failed[0]
    assert failed[0].endswith("below the required 1e+12 fps")
    assert "max-dice-drop: tiny-int8 on onnxrt (runner, batch 1) lost " in failed[1]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [g["passed"] for g in report["gates"]] == [False, False]
    assert report["data"]["source"] == DATA and report["data"]["labelled_frames"] == 3


def test_baseline_regression_is_flagged(tiny_bundles, tmp_path, capsys):
    ref, cand = tiny_bundles
    assert _bench(ref, cand, tmp_path / "first", "--no-plots") == 0
    out = capsys.readouterr().out
    assert "| tiny-int8 | onnxrt | int8 | f32 | runner | 1 |" in out
    baseline = json.loads((tmp_path / "first" / "report.json").read_text())
    for row in baseline["results"]:
        row["fps"] *= 100.0  # the past was a hundred times faster: today is a regression
    (tmp_path / "fast.json").write_text(json.dumps(baseline))
    code = _bench(ref, cand, tmp_path / "second", "--no-plots", "--baseline", str(tmp_path / "fast.json"))
    err = capsys.readouterr().err
    assert code == 3
    assert "jetseg bench: gate failed: baseline-fps: tiny-int8 on onnxrt (runner, batch 1) ran at " in err
    assert "tolerance -10%): regression" in err
    # the same report as its own baseline passes (within tolerance by construction is not guaranteed for fps on
    # a shared machine, so only the Dice gate is compared here)
    report = json.loads((tmp_path / "second" / "report.json").read_text())
    dice = [g for g in report["gates"] if g["gate"] == "baseline-dice"]
    assert dice and all(g["passed"] for g in dice)


def test_user_errors_are_one_line(tiny_bundles, tmp_path, capsys):
    ref, cand = tiny_bundles
    code = main(["bench", str(cand), "--reference", str(tmp_path / "nope"), "--data", DATA,
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == ("jetseg bench: error: %s is not a model bundle directory (expected a folder with model.onnx "
                      "and spec.yaml)" % (tmp_path / "nope"))
    code = _bench(ref, cand, tmp_path / "o2", "--baseline", str(tmp_path / "missing.json"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--baseline: cannot read %s" % (tmp_path / "missing.json") in err[0]
    assert "give the report.json of an earlier 'jetseg bench' run" in err[0]
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()
