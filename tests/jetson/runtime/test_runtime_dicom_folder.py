"""`jetseg run --source FOLDER` and `jetseg calibrate --scans FOLDER` on a plain folder of DICOM files."""
from __future__ import annotations

import json

import numpy as np

from jetseg.cli import main
from tests.fixtures.dicom import write_cine
from tests.fixtures.media import disc_frame


def _export(folder, files=3, frames=5):
    folder.mkdir()
    for f in range(files):
        write_cine(folder / ("I%07d" % (f + 1)), np.stack([disc_frame(f * 10 + i, 96, 128) for i in range(frames)]))
    return folder


def test_run_on_a_plain_dicom_folder(tiny_bundle, tmp_path):
    folder, out = _export(tmp_path / "export"), tmp_path / "masks"
    code = main(["run", "--model", str(tiny_bundle.path), "--source", str(folder), "--sink", "masks://%s?png=0" % out,
                 "--backend-option", "threads=1"])
    assert code == 0
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert len(records) == 15


def test_calibrate_on_a_plain_dicom_folder_holds_out_whole_files(tiny_bundle, tmp_path):
    folder = _export(tmp_path / "export", files=4, frames=6)
    out = tmp_path / "int8"
    code = main(["calibrate", str(tiny_bundle.path), "--scans", str(folder), "--out", str(out), "--count", "8",
                 "--holdout", "6", "--target", "cpu", "--gate-dice", "0.2"])
    assert code == 0
    report = json.loads((out / "calibration.json").read_text())
    split = report["curation"]["split"]
    assert split["method"] == "by-file" and split["files"] == 4 and len(split["heldout_files"]) == 1
    held = {f["source"].split("#")[0] for f in report["curation"]["holdout_frames"]}
    calib = {f["source"].split("#")[0] for f in report["curation"]["calibration_frames"]}
    assert held == set(split["heldout_files"]) and not held & calib
