"""Declared sizes are checked before decoding: images, NIfTI, DICOM (issue 20, image bombs)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import open_source
from jetseg.jetson.sources.limits import MAX_IMAGE_PIXELS, declared_image_size
from tests.fixtures.bombs import jpeg_claiming, nifti_claiming, png_claiming

cv2 = pytest.importorskip("cv2")


def test_headers_are_read_without_decoding(tmp_path):
    assert declared_image_size(png_claiming(tmp_path / "a.png", 60000, 60000).read_bytes()) == (60000, 60000)
    assert declared_image_size(jpeg_claiming(tmp_path / "a.jpg", 40000, 30000).read_bytes()) == (40000, 30000)
    ok, data = cv2.imencode(".bmp", np.zeros((5, 7), np.uint8))
    assert declared_image_size(data.tobytes()) == (7, 5)


@pytest.mark.parametrize("make", [lambda p: png_claiming(p / "bomb.png", 60000, 60000),
                                  lambda p: jpeg_claiming(p / "bomb.jpg", 65000, 65000)])
def test_a_bomb_in_a_folder_is_skipped_with_one_warning(tmp_path, caplog, make):
    folder = tmp_path / "scans"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((16, 16), 7, np.uint8))
    bomb = make(folder)
    assert bomb.stat().st_size < 2000
    with caplog.at_level(logging.WARNING):
        with open_source(str(folder)) as source:
            frames = list(source)
    assert [f.image.shape for f in frames] == [(16, 16)] and source.skipped == 1
    warnings = [r.getMessage() for r in caplog.records if bomb.name in r.getMessage()]
    assert len(warnings) == 1 and "over the limit of %d" % MAX_IMAGE_PIXELS in warnings[0]


def test_a_folder_of_only_a_bomb_is_refused(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    png_claiming(folder / "bomb.png", 60000, 60000)
    with pytest.raises(SourceError, match="no usable image"):
        with open_source(str(folder)) as source:
            list(source)


def test_a_nifti_claiming_30000_cubed_is_refused_in_one_line(tmp_path):
    pytest.importorskip("nibabel")
    path = nifti_claiming(tmp_path / "bomb.nii", (30000, 30000, 30000))
    with pytest.raises(SourceError, match=r"bomb.nii declares 30000x30000x30000 = \d+ values, over the limit"):
        with open_source("nifti://%s" % path) as source:
            next(iter(source))


def test_a_dicom_claiming_a_huge_cine_is_refused_alone_and_skipped_in_a_folder(tmp_path, caplog):
    pytest.importorskip("pydicom")
    from tests.fixtures.dicom import write_dicom

    folder = tmp_path / "series"
    folder.mkdir()
    write_dicom(folder / "a.dcm", np.zeros((16, 16), np.uint8))
    bomb = write_dicom(folder / "b.dcm", np.zeros((16, 16), np.uint8), Rows=60000, Columns=60000)
    with pytest.raises(SourceError, match="b.dcm declares 60000x60000 pixels, over the limit"):
        with open_source("dicom://%s" % bomb) as source:
            next(iter(source))
    with caplog.at_level(logging.WARNING):
        with open_source("dicom://%s" % folder) as source:
            frames = list(source)
    assert len(frames) == 1 and source.skipped == 1
