"""calibrate --roi: every file cropped to the box run --roi would use, recorded per file in calibration.json,
and run's default ROI following what the bundle was calibrated with."""
from __future__ import annotations

import pytest

from jetseg.bundle import Bundle
from jetseg.calibration.scans import ScanError, read_scans
from jetseg.calibration.workflow import calibrate
from jetseg.jetson.daemon.assembly import roi_mode, run_pipeline
from jetseg.jetson.daemon.config import DaemonConfig
from jetseg.jetson.frames.roi import calibrated_mode
from jetseg.records import CalibrationRecord
from tests.fixtures.realscreens import REAL_SCREENS, real_screen_path
from tests.fixtures.specs import tiny_spec

pytest.importorskip("pydicom")


@pytest.mark.parametrize("name", ["examples_jpeg2k.dcm", "examples_ybr_color.dcm"])
def test_calibrate_and_run_use_the_same_auto_roi_on_a_file(make_bundle, name):
    path = real_screen_path(name)
    scans = read_scans(path, tiny_spec(), max_frames=8, progress=False, roi="auto")
    (recorded,) = scans.rois.values()
    run = run_pipeline(make_bundle(), path, roi="auto", max_frames=4)
    assert recorded["roi"] == list(run["roi"])
    if name == "examples_ybr_color.dcm":  # valid region tags come first
        assert recorded["roi"] == list(REAL_SCREENS[name][0]) and "from" in recorded["how"]
    else:
        assert recorded["how"].startswith("auto: found a rectangle")


def test_scans_refuse_a_file_auto_roi_is_not_sure_about(tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "dark.png").write_bytes(cv2.imencode(".png", np.zeros((48, 64), np.uint8))[1].tobytes())
    with pytest.raises(ScanError, match=r"dark.png: no image area found .*; the run-time pipeline would use the "
                                        r"whole frame, so give --roi x,y,w,h, --roi spec or --roi none"):
        read_scans(str(tmp_path), tiny_spec(), progress=False, roi="auto")


def test_calibration_records_the_roi_and_run_follows_it(make_bundle, tmp_path):
    out = tmp_path / "int8"
    report = calibrate(make_bundle(), real_screen_path("examples_ybr_color.dcm"), out=out, count=8, holdout=4,
                       target="cpu", progress=False, roi="auto")
    assert report["roi"]["mode"] == "auto"
    assert [f["roi"] for f in report["roi"]["files"].values()] == [list(REAL_SCREENS["examples_ybr_color.dcm"][0])]
    assert calibrated_mode(Bundle(out).calibration()) == "auto"
    default = DaemonConfig.from_dict({"model": str(out)})
    assert default.roi.mode == "bundle" and roi_mode(default, Bundle(out)) == "auto"
    assert roi_mode(DaemonConfig.from_dict({"model": str(out), "roi": "spec"}), Bundle(out)) == "spec"
    assert calibrated_mode(None) == "spec"  # an FP32 bundle
    assert calibrated_mode(CalibrationRecord()) == "spec"  # calibrated before the ROI was recorded
    assert calibrated_mode(CalibrationRecord(roi={"mode": [1, 2, 30, 40]})) == [1, 2, 30, 40]
    assert calibrated_mode(CalibrationRecord(roi={"mode": {"relative": [0, 0.5, 1, 0.5]}})) == {
        "relative": [0.0, 0.5, 1.0, 0.5]}
    assert calibrated_mode(CalibrationRecord(roi={"mode": "sector"})) == "spec"  # not a mode: the spec's ROI


def test_calibrate_and_run_share_a_relative_roi(make_bundle, tmp_path):
    """calibrate --roi relative:... crops every file to the same fractions, records them, and run follows."""
    from jetseg.jetson.daemon.flags import parse_roi

    path = real_screen_path("examples_ybr_color.dcm")  # a 320x240 cine with region tags (not used: relative)
    mode = parse_roi("relative:0.0,0.25,1.0,0.5")
    scans = read_scans(path, tiny_spec(), max_frames=4, progress=False, roi=mode)
    (recorded,) = scans.rois.values()
    assert recorded["roi"] == [0, 60, 320, 120] and recorded["how"] == "relative [0.0, 0.25, 1.0, 0.5]"
    fp32 = make_bundle()
    run = run_pipeline(fp32, path, roi=mode, max_frames=2)
    assert list(run["roi"]) == recorded["roi"]
    out = tmp_path / "int8"
    calibrate(fp32, path, out=out, count=4, holdout=2, target="cpu", progress=False, roi=mode, max_frames=12)
    assert Bundle(out).calibration().roi["mode"] == {"relative": [0.0, 0.25, 1.0, 0.5]}
    assert roi_mode(DaemonConfig.from_dict({"model": str(out)}), Bundle(out)) == mode


def test_the_four_file_folder_splits_by_file_and_says_so(tmp_path, caplog):
    """The issue-19 folder: pydicom's four ultrasound files, one a 30-frame cine."""
    import logging
    import shutil

    from jetseg.calibration.curate import group_of, split

    for name in REAL_SCREENS:
        shutil.copy(real_screen_path(name), str(tmp_path / name))
    scans = read_scans(str(tmp_path), tiny_spec(), progress=False, roi="auto")
    groups = [group_of(i["source"]) for i in scans.ids]
    assert len(scans) == 33 and len(set(groups)) == 4 and len(scans.rois) == 4
    with caplog.at_level(logging.INFO, logger="jetseg.calibration"):
        calib, held, method = split(scans.thumbs, 64, 32, groups)
    assert method == "by-file" and len(calib) == 30 and len(held) == 3
    assert {groups[i] for i in calib} == {"examples_ybr_color.dcm"}
    assert "using 30 for calibration and 3 held out (split by-file: 3 whole file(s) of 4)" in caplog.text
