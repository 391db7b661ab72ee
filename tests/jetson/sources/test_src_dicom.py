"""DicomSource on DICOM files written with pydicom in the test."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import open_source
from jetseg.jetson.sources.dicom import DicomSource
from tests.fixtures.dicom import us_region, write_dicom
from tests.fixtures.media import gradient


def _read_all(uri: str):
    with open_source(uri) as src:
        return list(src), src


def _cine(n: int = 3, h: int = 12, w: int = 16, colour: bool = False, dtype=np.uint8) -> np.ndarray:
    return np.stack([gradient(h, w, colour=colour, dtype=dtype, seed=i) for i in range(n)])


def _rgb_to_ybr_full(rgb: np.ndarray) -> np.ndarray:
    """DICOM PS3.3 C.7.6.3.1.2 YBR_FULL from RGB (8-bit)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return np.clip(np.rint(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def test_multiframe_monochrome2_8bit_with_fps_and_spacing(tmp_path: Path, caplog) -> None:
    cine = _cine(4)
    path = write_dicom(tmp_path / "cine.dcm", cine, FrameTime="40", PixelSpacing=["0.25", "0.3"])
    src = open_source("dicom://%s" % path)
    assert isinstance(src, DicomSource) and len(src) == 4 and src.fps == pytest.approx(25.0)
    with caplog.at_level(logging.DEBUG, logger="jetseg"):
        frames, src = _read_all("dicom://%s" % path)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    for frame, expected in zip(frames, cine):
        assert frame.image.dtype == np.uint8 and np.array_equal(frame.image, expected)
    assert frames[2].source_id == "cine.dcm#2" and frames[2].meta["file_frame"] == 2
    assert frames[0].meta["pixel_spacing_mm"] == [0.25, 0.3] and frames[0].meta["fps"] == pytest.approx(25.0)
    assert "Secret" not in caplog.text and "SECRET" not in caplog.text
    assert "Secret" not in repr(frames[0]) and "SECRET" not in repr(src.stats())


def test_16bit_is_scaled_by_bits_stored_and_monochrome1_inverted(tmp_path: Path) -> None:
    values = np.array([[[0, 1], [2048, 4095]]], np.uint16)
    path = write_dicom(tmp_path / "mono2.dcm", values[0], bits_stored=12)
    frames, _ = _read_all(str(path))
    assert frames[0].image.dtype == np.uint16
    assert frames[0].image.tolist() == [[0, 16], [32768, 65520]]
    path = write_dicom(tmp_path / "mono1.dcm", values[0], photometric="MONOCHROME1", bits_stored=12)
    frames, _ = _read_all(str(path))
    assert frames[0].image.tolist() == [[65520, 65504], [32752, 0]]
    signed = np.array([[-2048, 0], [1, 2047]], np.int16)
    path = write_dicom(tmp_path / "signed.dcm", signed, bits_stored=12, signed=True)
    frames, _ = _read_all(str(path))
    assert frames[0].image.tolist() == [[0, 32768], [32784, 65520]]


def test_mono1_8bit_multiframe(tmp_path: Path) -> None:
    cine = _cine(2)
    frames, _ = _read_all(str(write_dicom(tmp_path / "m1.dcm", cine, photometric="MONOCHROME1")))
    assert np.array_equal(frames[1].image, 255 - cine[1])


def test_rgb_becomes_bgr(tmp_path: Path) -> None:
    rgb = _cine(2, colour=True)
    frames, _ = _read_all(str(write_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB", RecommendedDisplayFrameRate=30)))
    assert frames[0].image.shape == (12, 16, 3) and frames[0].image.dtype == np.uint8
    assert np.array_equal(frames[1].image, rgb[1][..., ::-1])
    assert frames[0].meta["fps"] == pytest.approx(30.0)


def test_colour_without_planar_configuration_reads_as_interleaved_with_one_warning(tmp_path: Path, caplog) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (2, 16, 24, 3), dtype=np.uint8)
    path = write_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB")
    ds = pydicom.dcmread(str(path))
    del ds.PlanarConfiguration  # left out by some vendor exports though colour requires it
    ds.save_as(str(path))
    with caplog.at_level(logging.WARNING, logger="jetseg"):
        source = open_source(str(path))
        source.open()
        first = source.read()
    assert first is not None and np.array_equal(first.image, rgb[0][:, :, ::-1])
    assert sum("without PlanarConfiguration" in r.getMessage() for r in caplog.records) == 1


def test_ybr_full_is_converted_to_bgr(tmp_path: Path) -> None:
    rgb = _cine(2, colour=True)
    ybr = _rgb_to_ybr_full(rgb)
    frames, _ = _read_all(str(write_dicom(tmp_path / "ybr.dcm", ybr, photometric="YBR_FULL", CineRate=15)))
    bgr = rgb[..., ::-1].astype(int)
    assert np.abs(frames[0].image.astype(int) - bgr[0]).max() <= 2
    assert np.abs(frames[1].image.astype(int) - bgr[1]).max() <= 2
    assert frames[0].meta["fps"] == pytest.approx(15.0)


def test_ultrasound_region_spacing_in_cm(tmp_path: Path) -> None:
    region = us_region((0, 0, 8, 8), delta_cm=(0.02, 0.015))
    path = write_dicom(tmp_path / "us.dcm", gradient(8, 8), SequenceOfUltrasoundRegions=[region])
    frames, _ = _read_all(str(path))
    assert frames[0].meta["pixel_spacing_mm"] == pytest.approx([0.15, 0.2])
    assert frames[0].meta["roi"] == (0, 0, 8, 8) and frames[0].meta["roi_source"] == "dicom-regions"
    assert frames[0].meta["fps"] is None and frames[0].source_id == "us.dcm"


def _hide_plugins(monkeypatch, syntax) -> None:
    """Make pydicom's decoder for ``syntax`` have no plugin (highdicom installs pyjpegls, a JPEG-LS one)."""
    try:
        from pydicom.pixels import get_decoder
    except ImportError:  # pydicom 2: no plugin registry; the test then relies on none being installed
        return
    decoder = get_decoder(syntax)
    hidden = {label: ("%s (hidden by this test)" % label,) for label in decoder._available}
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", dict(decoder._unavailable, **hidden))


def test_compressed_without_plugin_names_the_plugin(tmp_path: Path, monkeypatch) -> None:
    _hide_plugins(monkeypatch, pydicom.uid.JPEGLSLossless)
    path = write_dicom(tmp_path / "jls.dcm", gradient(8, 8))
    ds = pydicom.dcmread(str(path))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGLSLossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 30 + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.save_as(str(path))
    with pytest.raises(SourceError, match=r"cannot decode jls\.dcm: .*JPEG-LS.*(pylibjpeg|gdcm)") as info:
        open_source(str(path)).open()
    assert "\n" not in str(info.value)
    if int(pydicom.__version__.split(".")[0]) >= 3:
        assert "pip install pylibjpeg pylibjpeg-libjpeg" in str(info.value)


def test_folder_ordered_by_instance_number_skips_junk(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    write_dicom(folder / "b.dcm", np.full((6, 6), 10, np.uint8), InstanceNumber=1)
    write_dicom(folder / "a.dcm", np.stack([np.full((6, 6), 20, np.uint8), np.full((6, 6), 30, np.uint8)]),
                InstanceNumber=2)
    write_dicom(folder / "IM0003", np.full((6, 6), 40, np.uint8), InstanceNumber=3)  # no suffix, as scanners write
    (folder / "notes.txt").write_text("not dicom")
    with caplog.at_level(logging.WARNING, logger="jetseg"):
        frames, src = _read_all("dicom://%s" % folder)
    assert [int(f.image[0, 0]) for f in frames] == [10, 20, 30, 40]
    assert [f.source_id for f in frames] == ["b.dcm", "a.dcm#0", "a.dcm#1", "IM0003"]
    assert src.skipped == 1 and "skipping notes.txt: not a DICOM file" in caplog.text
    assert len(src) == 4


def test_loop_starts_again_after_the_last_file(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    write_dicom(folder / "a.dcm", np.stack([np.full((6, 6), 20, np.uint8), np.full((6, 6), 30, np.uint8)]))
    write_dicom(folder / "b.dcm", np.full((6, 6), 40, np.uint8))
    with open_source("dicom://%s?loop=1" % folder) as src:
        frames = [src.read(1.0) for _ in range(7)]
        assert not src.ended
    assert [int(f.image[0, 0]) for f in frames] == [20, 30, 40, 20, 30, 40, 20]
    assert [f.index for f in frames] == list(range(7))
    assert [f.meta["file_frame"] for f in frames] == [0, 1, 0, 0, 1, 0, 0]
    frames, src = _read_all("dicom://%s" % folder)  # without loop the source ends
    assert len(frames) == 3 and src.ended
    with pytest.raises(SourceError, match=r"dicom source option loop='maybe': expected 1/0 \(true/false\)"):
        open_source("dicom://%s?loop=maybe" % folder)


def test_errors(tmp_path: Path) -> None:
    (tmp_path / "fake.dcm").write_bytes(b"this is not dicom")
    with pytest.raises(SourceError, match=r"cannot read fake\.dcm as DICOM .*expected a DICOM Part 10 file"):
        open_source(str(tmp_path / "fake.dcm")).open()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"no DICOM image in .*empty \(0 files"):
        open_source("dicom://%s" % empty).open()
    with pytest.raises(SourceError, match=r"DICOM source .*missing\.dcm does not exist"):
        open_source("dicom://%s" % (tmp_path / "missing.dcm")).open()
    with pytest.raises(SourceError, match=r"unknown dicom source option 'fps'; known options: loop"):
        open_source("dicom://%s?fps=3" % (tmp_path / "fake.dcm"))


def test_jpeg_baseline_ybr_full_422_cine(tmp_path: Path) -> None:
    """The usual ultrasound export: JPEG baseline, YBR_FULL_422, encapsulated frames (Pillow decodes it)."""
    image_mod = pytest.importorskip("PIL.Image")
    import io

    rgb = _cine(2, h=16, w=16, colour=True)
    rgb[1] = rgb[1] // 2  # two clearly different frames
    fragments = []
    for frame in rgb:
        buf = io.BytesIO()
        image_mod.fromarray(frame, "RGB").save(buf, format="JPEG", quality=95, subsampling=1)  # 4:2:2
        fragments.append(buf.getvalue())
    path = write_dicom(tmp_path / "jpeg.dcm", rgb, photometric="YBR_FULL_422")
    ds = pydicom.dcmread(str(path))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    ds.PixelData = pydicom.encaps.encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds.save_as(str(path))
    frames, _ = _read_all(str(path))
    assert len(frames) == 2 and frames[0].image.shape == (16, 16, 3)
    for frame, expected in zip(frames, rgb):
        assert np.abs(frame.image.astype(int) - expected[..., ::-1].astype(int)).mean() < 6
