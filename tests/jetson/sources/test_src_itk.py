"""ItkSource on MHA/MHD/NRRD images written with SimpleITK in the test: slicing, spacing, orientation, cines."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("SimpleITK")

from jetseg.errors import SourceError  # noqa: E402
from jetseg.jetson.sources import open_source  # noqa: E402
from jetseg.jetson.sources.itk import ItkSource  # noqa: E402
from tests.fixtures.itkimages import cine, ramp_volume, write_image  # noqa: E402


@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nrrd"])
def test_volume_slices_along_each_axis_with_spacing(tmp_path, suffix):
    data = ramp_volume()  # (z, y, x) = (4, 6, 8), spacing x 0.5, y 0.25, z 2.0
    path = write_image(tmp_path / ("vol" + suffix), data)
    window = 65535.0 / float(data.max())
    for axis, count, shape, spacing, pick in [(2, 4, (6, 8), [0.25, 0.5], lambda k: data[k]),
                                              (1, 6, (4, 8), [2.0, 0.5], lambda k: data[:, k, :]),
                                              (0, 8, (4, 6), [2.0, 0.25], lambda k: data[:, :, k])]:
        src = open_source("itk://%s?axis=%d" % (path, axis)) if axis != 2 else open_source(str(path))
        assert isinstance(src, ItkSource) and len(src) == count
        with src:
            frames = list(src)
        assert len(frames) == count and src.ended and src.fps is None
        for k, frame in enumerate(frames):
            assert frame.image.dtype == np.uint16 and frame.image.shape == shape
            assert np.array_equal(frame.image, np.rint(pick(k) * window).astype(np.uint16))
            assert frame.meta["pixel_spacing_mm"] == spacing and frame.meta["slice"] == k
            assert frame.meta["axis"] == axis and frame.meta["orientation"] == "LPS"


def test_orientation_from_the_direction_cosines(tmp_path):
    flipped = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    path = write_image(tmp_path / "ras.nrrd", ramp_volume(), direction=flipped)
    with open_source("itk://%s" % path) as src:
        frame = src.read()
    assert frame.meta["orientation"] == "RAS" and frame.meta["direction"] == list(flipped)


def test_cine_plays_at_its_frame_time_with_labels(tmp_path):
    images, labels = cine(frames=5)
    path = write_image(tmp_path / "cine.mha", images, spacing=(0.3, 0.3, 1.0), frame_time_ms=40)
    seg = write_image(tmp_path / "cine_gt.mha", labels, spacing=(0.3, 0.3, 1.0))
    src = open_source("itk://%s?sequence=1&labels=%s" % (path, seg))
    with src:
        assert src.fps == pytest.approx(25.0)  # 1000 / FrameTime
        frames = list(src)
    assert [f.meta["frame"] for f in frames] == list(range(5)) and frames[0].meta["frame_time_ms"] == 40
    assert all(np.array_equal(f.label, labels[k]) for k, f in enumerate(frames))
    assert frames[0].meta["pixel_spacing_mm"] == [0.3, 0.3]
    with open_source("itk://%s?frame_time=20" % path) as src:  # the option wins over the header
        assert src.fps == pytest.approx(50.0) and src.read().meta["frame"] == 0


def test_errors_name_the_reader_to_use(tmp_path):
    with pytest.raises(SourceError, match=r"not scan.nii.gz; open it as nifti://PATH \(nibabel\)"):
        open_source("itk://%s" % (tmp_path / "scan.nii.gz"))
    bad = tmp_path / "broken.mha"
    bad.write_bytes(b"ObjectType = Image\nNDims = 3\nnonsense")
    src = open_source(str(bad))
    with pytest.raises(SourceError) as err:
        src.open()
    assert "SimpleITK cannot read image broken.mha" in str(err.value)
    assert "expected MHA/MHD+raw or NRRD (NIfTI: nifti://, DICOM: dicom://, video: file://)" in str(err.value)
    with pytest.raises(SourceError, match="axis=1.*2 for a sequence"):
        open_source("itk://%s?sequence=1&axis=1" % bad)
