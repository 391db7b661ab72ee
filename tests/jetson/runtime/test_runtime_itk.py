"""`jetseg run` and `jetseg calibrate` on an .mha cine and an .nrrd volume: the spacing reaches the areas in mm^2."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("SimpleITK")

from jetseg.cli import main  # noqa: E402
from tests.fixtures.itkimages import cine, write_image  # noqa: E402


def test_run_on_an_mha_cine_gives_areas_in_mm2(tiny_bundle, tmp_path):
    images, _ = cine(frames=4, size=(32, 32))
    path = write_image(tmp_path / "cine.mha", images, spacing=(0.4, 0.2, 1.0), frame_time_ms=33.3)
    out = tmp_path / "masks"
    code = main(["run", "--model", str(tiny_bundle.path), "--source", str(path), "--sink", "masks://%s?png=0" % out,
                 "--backend-option", "threads=1"])
    assert code == 0
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for record, image in zip(records, images):
        px = record["areas_px"]["lesion"]
        assert px == int((image > 127).sum())  # the threshold model marks the bright disc
        assert record["areas_mm2"]["lesion"] == pytest.approx(px * 0.4 * 0.2)  # row 0.2 mm x column 0.4 mm


def test_calibrate_on_an_nrrd_volume(tiny_bundle, tmp_path):
    images, labels = cine(frames=12, size=(32, 32))
    scans = write_image(tmp_path / "vol.nrrd", images)
    seg = write_image(tmp_path / "vol_gt.nrrd", labels)
    out = tmp_path / "int8"
    code = main(["calibrate", str(tiny_bundle.path), "--scans", "itk://%s?labels=%s" % (scans, seg), "--out",
                 str(out), "--count", "6", "--holdout", "4", "--target", "cpu", "--gate-dice", "0.2"])
    assert code == 0
    report = json.loads((out / "calibration.json").read_text())
    assert report["curation"]["calibration_frames"][0]["source"].startswith("vol.nrrd#")
