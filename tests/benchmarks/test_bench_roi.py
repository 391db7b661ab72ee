"""bench --roi: every file of --data cropped to the box calibrate (and run) would use, decided per file from its
first frames, recorded per file in report.json; the default follows what the bundles were calibrated with."""
from __future__ import annotations

import json
import shutil

import pytest

from jetseg.benchmarks.suite import Settings, run_benchmark
from jetseg.bundle import Bundle
from jetseg.cli import main
from jetseg.errors import JetsegError
from tests.fixtures.realscreens import REAL_SCREENS, real_screen_path

FAST = dict(min_time=0.02, warmup=1, min_runs=3, progress=False, backends=["onnxrt"], peers=False, naive=False,
            plots=False, hd95=False)


@pytest.fixture
def real_folder(tmp_path):
    """pydicom's four real ultrasound screens in one folder (33 frames; the SonoSite cine has region tags)."""
    pytest.importorskip("pydicom")
    folder = tmp_path / "screens"
    folder.mkdir()
    for name in REAL_SCREENS:
        shutil.copy(real_screen_path(name), str(folder / name))
    return folder


def test_bench_and_calibrate_crop_each_real_file_to_the_same_box(make_bundle, real_folder):
    from jetseg.calibration.scans import read_scans

    ref = make_bundle("fp32", 0.5)
    scans = read_scans(str(real_folder), Bundle(ref).spec, progress=False, roi="auto")
    report = run_benchmark([], ref, str(real_folder), settings=Settings(roi="auto", **FAST))
    assert report["roi"]["mode"] == "auto" and report["roi"]["how"] == "as given"
    assert report["roi"]["files"] == scans.rois
    assert set(scans.rois) == set(REAL_SCREENS)
    # the SonoSite cine's region tags are the box, for both
    assert report["roi"]["files"]["examples_ybr_color.dcm"]["roi"] == list(REAL_SCREENS["examples_ybr_color.dcm"][0])
    assert report["data"]["frames"] == len(scans) == 33


def test_default_roi_follows_the_calibration_and_the_pipeline_crops_alike(make_bundle):
    pytest.importorskip("pydicom")
    path = real_screen_path("examples_ybr_color.dcm")  # a 30-frame cine with region tags
    ref, cand = make_bundle("fp32", 0.5), make_bundle("int8", 0.56, "int8", calibrated_roi="auto")
    report = run_benchmark([cand], ref, path, settings=Settings(
        e2e=True, e2e_frames=4, e2e_segments=1, e2e_fps=0, **FAST))
    assert report["roi"]["asked"] == "bundle" and report["roi"]["mode"] == "auto"
    assert report["roi"]["how"] == "as %s was calibrated" % cand
    (box,) = [item["roi"] for item in report["roi"]["files"].values()]
    assert box == list(REAL_SCREENS["examples_ybr_color.dcm"][0])
    e2e = [r for r in report["results"] if r["kind"] == "e2e"]
    assert e2e and all(r["roi"] == {"mode": "auto", "roi": box} for r in e2e)


def test_default_roi_is_spec_without_a_calibration(make_bundle, frames):
    ref, cand = make_bundle("fp32", 0.5), make_bundle("int8", 0.56, "int8")
    report = run_benchmark([cand], ref, frames, settings=Settings(**FAST))
    assert report["roi"]["mode"] == "spec" and report["roi"]["how"] == "no bundle records a calibration ROI"
    height, width = frames[0].image.shape[:2]
    assert {tuple(v["roi"]) for v in report["roi"]["files"].values()} == {(0, 0, width, height)}


def test_a_fixed_roi_changes_what_every_row_sees(make_bundle, frames):
    ref = make_bundle("fp32", 0.5)
    whole = run_benchmark([], ref, frames, settings=Settings(roi="none", **FAST))
    corner = run_benchmark([], ref, frames, settings=Settings(roi=[0, 0, 12, 8], **FAST))
    assert {tuple(v["roi"]) for v in corner["roi"]["files"].values()} == {(0, 0, 12, 8)}
    labelled = [r["dice_vs_labels"] for r in (whole["results"][0], corner["results"][0])]
    assert None not in labelled and labelled[0] != labelled[1]  # scored on the cropped labels, not the whole frame's


def test_bundles_calibrated_with_different_rois_are_refused(make_bundle, frames):
    ref = make_bundle("fp32", 0.5)
    a = make_bundle("int8-auto", 0.56, "int8", calibrated_roi="auto")
    b = make_bundle("int8-spec", 0.56, "int8", calibrated_roi="spec")
    with pytest.raises(JetsegError, match=r"--roi bundle: the bundles were calibrated with different ROI modes "
                                          r"\(.*int8-auto: auto, .*int8-spec: spec\); give --roi auto, spec, none"):
        run_benchmark([a, b], ref, frames, settings=Settings(**FAST))


def test_cli_roi_errors_are_one_line(make_bundle, tmp_path, capsys):
    import cv2
    import numpy as np

    ref = make_bundle("fp32", 0.5)
    dark = tmp_path / "dark"
    dark.mkdir()
    (dark / "dark.png").write_bytes(cv2.imencode(".png", np.zeros((48, 64), np.uint8))[1].tobytes())
    base = ["bench", str(ref), "--reference", str(ref), "--min-time", "0.02", "--min-runs", "3", "--no-naive",
            "--no-peers", "--backend", "onnxrt", "--no-plots"]
    assert main(base + ["--data", str(dark), "--roi", "1,2,3", "--out", str(tmp_path / "a")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--roi '1,2,3': expected auto, spec, none or x,y,w,h" in err[0], err
    assert main(base + ["--data", str(dark), "--roi", "auto", "--out", str(tmp_path / "b")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--roi auto: dark.png: no image area found" in err[0], err
    assert "give --roi x,y,w,h, --roi spec or --roi none" in err[0]


def test_cli_records_the_roi_in_report_json_and_md(make_bundle, tmp_path):
    ref = make_bundle("fp32", 0.5)
    out = tmp_path / "out"
    assert main(["bench", str(ref), "--reference", str(ref), "--data", "synthetic://ultrasound?frames=3&width=96"
                 "&height=64", "--roi", "8,4,64,48", "--min-time", "0.02", "--min-runs", "3", "--no-naive",
                 "--no-peers", "--backend", "onnxrt", "--no-plots", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["roi"]["asked"] == [8, 4, 64, 48] and report["roi"]["mode"] == [8, 4, 64, 48]
    assert [v["roi"] for v in report["roi"]["files"].values()] == [[8, 4, 64, 48]]
    assert "- ROI: [8, 4, 64, 48] (--roi [8, 4, 64, 48]: as given)" in (out / "report.md").read_text()
