"""SequenceOfUltrasoundRegions: validated against the pixels, scaled for downsampled exports, else ignored.

Scanner screens (header bar with patient text, ruler, sector) from tests/fixtures/scanner.py, written as
RGB, JPEG baseline YBR_FULL_422 and PALETTE COLOR DICOM files with region tags.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.roi import RoiPolicy
from jetseg.jetson.pipeline.stages import Item, Preprocess
from jetseg.jetson.sources import open_source
from jetseg.jetson.sources.usregions import read_regions, tagged_size
from tests.fixtures.dicom import encapsulate_jpeg, us_region, write_dicom, write_palette
from tests.fixtures.scanner import scanner_screen
from tests.fixtures.specs import tiny_spec


def _read_all(path: Path):
    with open_source(str(path)) as src:
        return list(src)


def _screens(count: int = 2, scale: float = 1.0):
    """``count`` 640x480 OB screens (RGB) resized by ``scale``, and the true sector box at 640x480."""
    images, truth = [], None
    for seed in range(count):
        bgr, truth = scanner_screen("ob-header", seed=seed)
        if scale != 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(bgr[..., ::-1])
    return np.stack(images), truth


def _near(box, expected, tol: int = 2) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(box, expected))


def test_regions_tagged_for_a_larger_frame_are_scaled_with_the_spacing(tmp_path: Path, caplog) -> None:
    rgb, truth = _screens(scale=0.5)  # exported at 320x240, tagged at 640x480
    path = write_dicom(tmp_path / "small.dcm", rgb, photometric="RGB",
                       SequenceOfUltrasoundRegions=[us_region(truth, delta_cm=(0.02, 0.03))])
    with caplog.at_level(logging.INFO, logger="jetseg"):
        frames = _read_all(path)
    expected = [v / 2.0 for v in truth]
    assert all(_near(f.meta["roi"], expected) for f in frames)
    assert frames[0].meta["pixel_spacing_mm"] == pytest.approx([0.6, 0.4])  # 0.3 mm and 0.2 mm, pixels twice
    assert [r.getMessage() for r in caplog.records if "tagged for a 640x480 frame" in r.getMessage()] == \
        ["small.dcm: ultrasound regions were tagged for a 640x480 frame; scaled by 0.5 to the 320x240 pixels"]


def test_inconsistent_regions_are_ignored_with_one_warning(tmp_path: Path, caplog) -> None:
    rgb, truth = _screens(count=3, scale=0.5)
    rgb = np.ascontiguousarray(rgb[:, :, :290])  # 290x240: no screen size with that aspect ratio
    path = write_dicom(tmp_path / "odd.dcm", rgb, photometric="RGB",
                       SequenceOfUltrasoundRegions=[us_region(truth, delta_cm=(0.02, 0.02))])
    with caplog.at_level(logging.WARNING, logger="jetseg"):
        frames = _read_all(path)
    assert all("roi" not in f.meta and f.meta["pixel_spacing_mm"] is None for f in frames)
    warnings = [r.getMessage() for r in caplog.records if "SequenceOfUltrasoundRegions" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("odd.dcm: ignoring SequenceOfUltrasoundRegions (the "
                                                         "regions reach ")
    assert "pixels are 290x240" in warnings[0] and "no ROI or pixel spacing from them" in warnings[0]


def test_regions_without_corners_give_no_spacing(tmp_path: Path, caplog) -> None:
    region = us_region((0, 0, 8, 8))
    del region.RegionLocationMaxX1
    path = write_dicom(tmp_path / "nocorner.dcm", np.zeros((8, 8), np.uint8), SequenceOfUltrasoundRegions=[region])
    with caplog.at_level(logging.WARNING, logger="jetseg"):
        frames = _read_all(path)
    assert frames[0].meta["pixel_spacing_mm"] is None and "roi" not in frames[0].meta
    assert "no complete RegionLocationMinX0/MinY0/MaxX1/MaxY1 corners" in caplog.text


def test_jpeg_ybr_full_422_cine_with_downsampled_region_tags(tmp_path: Path) -> None:
    pytest.importorskip("PIL.Image")
    rgb, truth = _screens(scale=0.5)
    doppler = us_region((0, 400, 640, 80), delta_cm=None, spatial_format=3)  # a spectral strip: not the ROI
    path = write_dicom(tmp_path / "jpeg.dcm", rgb, photometric="YBR_FULL_422",
                       SequenceOfUltrasoundRegions=[us_region(truth), doppler])
    frames = _read_all(encapsulate_jpeg(path))
    assert len(frames) == 2 and frames[0].image.shape == (240, 320, 3)
    assert np.abs(frames[0].image.astype(int) - rgb[0][..., ::-1].astype(int)).mean() < 6
    assert _near(frames[0].meta["roi"], [v / 2.0 for v in truth])
    assert frames[0].meta["pixel_spacing_mm"] == pytest.approx([0.4, 0.4])


def test_palette_colour_with_header_bar_roi_from_regions_drives_auto(tmp_path: Path, caplog) -> None:
    screen, truth = scanner_screen("palette")
    indices = cv2.cvtColor(screen, cv2.COLOR_BGR2GRAY)  # the header bar and its text stay in the frame
    lut = np.stack([np.linspace(0, 200, 256), np.linspace(0, 230, 256), np.linspace(0, 255, 256)], 1)
    path = write_palette(tmp_path / "palette.dcm", np.stack([indices, indices]), lut.astype(np.uint8),
                         SequenceOfUltrasoundRegions=[us_region(truth)])
    frames = _read_all(path)
    assert frames[0].image.shape == (480, 640, 3) and tuple(frames[0].meta["roi"]) == tuple(truth)
    assert frames[0].image[10, 300].tolist() != [0, 0, 0]  # the header bar is in the pixels
    stage = Preprocess(tiny_spec(), RoiPolicy(tiny_spec(), "auto", auto_frames=2))
    with caplog.at_level(logging.INFO, logger="jetseg"):
        out = [i for f in frames for i in stage.process(Item(f, {"read": time.monotonic()}))]
    assert [tuple(i.roi) for i in out] == [tuple(truth)] * 2 and all(i.roi_trusted for i in out)
    assert "(auto: from dicom-regions)" in caplog.text


def test_tagged_size_needs_the_aspect_ratio() -> None:
    assert tagged_size((640, 480), (320, 240)) == (640, 480)
    assert tagged_size((700, 500), (320, 240)) == (768, 576)
    assert tagged_size((790, 590), (320, 240)) == (800, 600)
    assert tagged_size((640, 480), (290, 240)) is None
    assert tagged_size((5000, 480), (320, 240)) is None


def test_frame_meta_roi_without_source_is_not_used_by_auto() -> None:
    """Synthetic frames carry meta["roi"] (their field of view) but no roi_source: auto still detects."""
    screen, truth = scanner_screen("rectangle")
    frame = Frame(index=0, image=screen, timestamp=0.0, meta={"roi": (0, 0, 5, 5)})
    stage = Preprocess(tiny_spec(), RoiPolicy(tiny_spec(), "auto", auto_frames=1))
    (item,) = stage.process(Item(frame, {}))
    assert _near(item.roi, truth, tol=6)


def test_read_regions_without_tags() -> None:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Rows, ds.Columns = 8, 8
    regions = read_regions(ds)
    assert regions.roi is None and regions.spacing_mm is None and regions.problem is None
