"""NiftiSource on volumes written with nibabel in the test."""
from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import open_source
from jetseg.jetson.sources.nifti import NiftiSource


def _save(path: Path, data: np.ndarray, zooms=(0.5, 0.8, 2.0)) -> Path:
    image = nibabel.Nifti1Image(data, np.diag(list(zooms) + [1.0]))
    image.header.set_zooms(zooms[: data.ndim])
    nibabel.save(image, str(path))
    return path


@pytest.fixture
def volume(tmp_path: Path):
    data = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3) - 10  # -10 .. 49
    labels = np.zeros((4, 5, 3), np.uint8)
    labels[1:3, 2:4, 1] = 2
    return (data, _save(tmp_path / "vol.nii.gz", data), labels, _save(tmp_path / "seg.nii.gz", labels))


def test_slices_normalised_over_the_volume_with_labels(volume) -> None:
    data, path, labels, seg = volume
    src = open_source("nifti://%s?axis=2&labels=%s" % (path, seg))
    assert isinstance(src, NiftiSource) and len(src) == 3
    with src:
        frames = list(src)
    assert len(frames) == 3 and src.ended
    expected = np.rint((data.astype(np.float64) + 10) * 65535.0 / 59).astype(np.uint16)
    for k, frame in enumerate(frames):
        assert frame.image.dtype == np.uint16 and frame.image.shape == (5, 4)  # transposed slice
        assert np.array_equal(frame.image, expected[:, :, k].T)
        assert np.array_equal(frame.label, labels[:, :, k].T) and frame.label.dtype == np.uint8
        assert frame.source_id == "vol.nii.gz#%d" % k and frame.meta["slice"] == k
    assert frames[0].image.min() == 0 and frames[2].image.max() == 65535
    assert frames[0].meta["pixel_spacing_mm"] == pytest.approx([0.8, 0.5])


def test_axis_and_window(volume) -> None:
    data, path, _, _ = volume
    with open_source(str(path), axis=0, vmin=0, vmax=20) as src:
        frames = list(src)
    assert len(frames) == 4 and frames[0].image.shape == (3, 5)
    assert frames[0].label is None
    expected = np.clip(np.rint(data[1].astype(np.float64) * 65535.0 / 20), 0, 65535).astype(np.uint16).T
    assert np.array_equal(frames[1].image, expected)
    assert frames[0].meta["pixel_spacing_mm"] == pytest.approx([2.0, 0.8])


def test_errors(volume, tmp_path: Path) -> None:
    _, path, _, _ = volume
    small = _save(tmp_path / "small.nii", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(SourceError, match=r"label volume small\.nii is 2x2x2, volume vol\.nii\.gz is 4x5x3"):
        open_source("nifti://%s?labels=%s" % (path, small)).open()
    with pytest.raises(SourceError, match=r"nifti source option axis=3: expected 0, 1 or 2"):
        open_source("nifti://%s?axis=3" % path)
    with pytest.raises(SourceError, match=r"vmin=5, vmax=1: expected vmin < vmax"):
        open_source(str(path), vmin=5, vmax=1)
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(SourceError, match=r"cannot read NIfTI .*broken\.nii\.gz"):
        open_source(str(broken)).open()
    junk = tmp_path / "junk.nii"
    junk.write_bytes(b"not a nifti header" * 30)
    with pytest.raises(SourceError, match=r"cannot read NIfTI volume junk\.nii"):
        open_source(str(junk)).open()
