"""Fixtures for the benchmark tests: tiny real bundles (a 1x1 convolution thresholding brightness) and
labelled frames."""
from __future__ import annotations

import pytest

from tests.fixtures.bundles import threshold_bundle, torch_unet_bundle
from tests.fixtures.media import labelled_frames

SIZE = 16


@pytest.fixture
def make_bundle(tmp_path):
    """make_bundle(name, threshold, precision="fp32", calibrated_roi=None) -> path of a tiny thresholding bundle
    in tmp_path (``calibrated_roi``: the ROI mode its calibration.json records)."""
    def make(name, threshold, precision="fp32", calibrated_roi=None):
        return threshold_bundle(tmp_path / name, SIZE, threshold, precision, calibrated_roi=calibrated_roi,
                                classes=("background", "blob"))
    return make


@pytest.fixture
def tiny_bundles(make_bundle):
    """(fp32 reference, 'int8' candidate with a slightly different threshold) bundle paths."""
    return make_bundle("tiny-fp32", 0.5), make_bundle("tiny-int8", 0.56, precision="int8")


@pytest.fixture
def frames():
    return labelled_frames()


@pytest.fixture(scope="session")
def unet_bundle(tmp_path_factory):
    """A tiny untrained U-Net bundle with weights.pt and its architecture record (for torch and naive-loop rows)."""
    pytest.importorskip("torch")
    return torch_unet_bundle(tmp_path_factory.mktemp("unet") / "unet-fp32").path
