"""ImageFolderSource on real PNG/JPEG/TIFF/BMP files written with OpenCV."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import open_source
from jetseg.jetson.sources.images import ImageFolderSource, natural_key
from tests.fixtures.media import gradient


def _frames(uri: str, **options):
    with open_source(uri, **options) as src:
        frames = list(src)
        return frames, src


def test_formats_depths_and_channels(tmp_path: Path) -> None:
    grey16 = gradient(20, 30, dtype=np.uint16, seed=1)
    colour8 = gradient(20, 30, colour=True, seed=2)
    rgba = np.dstack([colour8, np.full((20, 30), 128, np.uint8)])
    grey8 = gradient(20, 30, seed=3)
    tiff16 = gradient(20, 30, colour=True, dtype=np.uint16, seed=4)
    assert cv2.imwrite(str(tmp_path / "a1.png"), grey16)
    assert cv2.imwrite(str(tmp_path / "a2.png"), rgba)
    assert cv2.imwrite(str(tmp_path / "a3.jpg"), grey8)
    assert cv2.imwrite(str(tmp_path / "a4.jpeg"), colour8)
    assert cv2.imwrite(str(tmp_path / "a5.tif"), tiff16)
    assert cv2.imwrite(str(tmp_path / "a6.bmp"), colour8)

    frames, src = _frames(str(tmp_path))
    assert [f.source_id for f in frames] == ["a1.png", "a2.png", "a3.jpg", "a4.jpeg", "a5.tif", "a6.bmp"]
    assert [f.index for f in frames] == list(range(6))
    f1, f2, f3, f4, f5, f6 = (f.image for f in frames)
    assert f1.dtype == np.uint16 and f1.shape == (20, 30) and np.array_equal(f1, grey16)
    assert f2.dtype == np.uint8 and f2.shape == (20, 30, 3) and np.array_equal(f2, colour8)  # alpha dropped
    assert f3.dtype == np.uint8 and f3.shape == (20, 30)
    assert np.abs(f3.astype(int) - grey8).mean() < 6  # lossy
    assert f4.shape == (20, 30, 3) and np.abs(f4.astype(int) - colour8).mean() < 8
    assert f5.dtype == np.uint16 and np.array_equal(f5, tiff16)
    assert np.array_equal(f6, colour8)
    assert all(f.label is None for f in frames)
    assert len(src) == 6 and src.ended and src.skipped == 0


def test_bgr_order_is_kept(tmp_path: Path) -> None:
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 0] = 200
    cv2.imwrite(str(tmp_path / "blue.png"), blue)
    frames, _ = _frames(str(tmp_path))
    assert frames[0].image[0, 0].tolist() == [200, 0, 0]


def test_natural_sort() -> None:
    names = ["img10.png", "img2.png", "IMG1.png", "img2b.png"]
    assert sorted(names, key=natural_key) == ["IMG1.png", "img2.png", "img2b.png", "img10.png"]


def test_mixed_folder_skips_corrupt_and_ignores_junk(tmp_path: Path, caplog) -> None:
    cv2.imwrite(str(tmp_path / "f1.png"), gradient(10, 12))
    (tmp_path / "f2.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (tmp_path / "f3.jpg").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "f4.bmp"), gradient(10, 12, colour=True))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    with caplog.at_level(logging.WARNING, logger="jetseg"):
        frames, src = _frames("folder://%s" % tmp_path)
    assert [f.source_id for f in frames] == ["f1.png", "f4.bmp"]
    assert src.skipped == 2 and src.stats()["skipped"] == 2
    assert "skipping f2.png" in caplog.text and "skipping f3.jpg" in caplog.text


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match=r"no images in .*: expected PNG, JPEG, TIFF or BMP"):
        open_source(str(tmp_path)).open()


def test_folder_without_usable_image_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad1.png").write_bytes(b"garbage")
    (tmp_path / "bad2.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(SourceError, match=r"no usable image in .*all 2 files were skipped"):
        _frames(str(tmp_path))


def test_labelled_layout(tmp_path: Path, caplog) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    classes = np.zeros((16, 20), np.uint8)
    classes[4:8, 5:10] = 1
    classes[10:14, 2:6] = 2
    binary = np.where(classes > 0, 255, 0).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "images" / "case1.jpg"), gradient(16, 20, colour=True))
    cv2.imwrite(str(tmp_path / "images" / "case2.png"), gradient(16, 20))
    cv2.imwrite(str(tmp_path / "images" / "case3.png"), gradient(16, 20))
    cv2.imwrite(str(tmp_path / "images" / "case4.png"), gradient(16, 20))
    cv2.imwrite(str(tmp_path / "masks" / "case1.png"), classes)
    cv2.imwrite(str(tmp_path / "masks" / "case2.png"), binary)
    cv2.imwrite(str(tmp_path / "masks" / "case4.png"), np.zeros((8, 8), np.uint8))  # wrong size
    with caplog.at_level(logging.WARNING, logger="jetseg"):
        frames, src = _frames(str(tmp_path))
    assert [f.source_id for f in frames] == ["case1.jpg", "case2.png", "case3.png"]
    assert np.array_equal(frames[0].label, classes) and frames[0].label.dtype == np.uint8
    assert np.array_equal(frames[1].label, (classes > 0).astype(np.uint8))  # 0/255 -> 0/1
    assert frames[2].label is None and src.unlabelled == 1
    assert src.skipped == 1 and "mask case4.png is 8x8, image is 16x20" in caplog.text
    assert src.stats()["labelled"] is True


def test_masks_option_and_unknown_option(tmp_path: Path) -> None:
    images, masks = tmp_path / "imgs", tmp_path / "gt"
    images.mkdir()
    masks.mkdir()
    cv2.imwrite(str(images / "x.png"), gradient(6, 6))
    cv2.imwrite(str(masks / "x.png"), np.eye(6, dtype=np.uint8) * 3)
    frames, _ = _frames(str(images), masks=str(masks))
    assert frames[0].label.max() == 3
    with pytest.raises(SourceError, match=r"unknown image folder source option 'mask' \(did you mean 'masks'\?\)"):
        ImageFolderSource(str(images), mask=str(masks))


def test_loop_restarts(tmp_path: Path) -> None:
    for i in range(2):
        cv2.imwrite(str(tmp_path / ("%d.png" % i)), gradient(4, 4, seed=i))
    (tmp_path / "2.png").write_bytes(b"broken")
    with open_source("file://%s?loop=1" % tmp_path) as src:
        ids = [src.read(1.0).source_id for _ in range(5)]
    assert ids == ["0.png", "1.png", "0.png", "1.png", "0.png"]
    assert src.skipped == 1 and not src.ended  # a bad file is counted once, not once per loop


def test_clean_layout_pairs_noisy_and_clean_images(tmp_path: Path, caplog) -> None:
    import cv2

    (tmp_path / "images").mkdir()
    (tmp_path / "clean").mkdir()
    noisy = np.full((20, 30), 40, np.uint8)
    for name in ("a", "b", "c"):
        cv2.imwrite(str(tmp_path / "images" / (name + ".png")), noisy)
    cv2.imwrite(str(tmp_path / "clean" / "a.png"), np.full((20, 30), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "clean" / "b.png"), np.full((10, 30), 90, np.uint8))  # wrong size
    with open_source(str(tmp_path)) as src:
        frames = list(src)
        stats = src.stats()
    assert [f.source_id for f in frames] == ["a.png"]
    assert frames[0].meta["clean"].shape == (20, 30) and int(frames[0].meta["clean"][0, 0]) == 90
    assert stats["skipped"] == 2 and stats["clean_targets"] is True
    assert "no clean image named c.* in" in caplog.text and "clean image b.png is 10x30, image is 20x30" in caplog.text
    with pytest.raises(SourceError, match="clean folder .*nowhere does not exist"):
        with open_source("folder://%s?clean=%s" % (tmp_path, tmp_path / "nowhere")):
            pass
