"""Fixtures for the runtime tests: a tiny real ONNX bundle (1x1 convolution thresholding brightness)."""
from __future__ import annotations

import pytest

from jetseg.bundle import Bundle
from tests.fixtures.bundles import threshold_bundle


@pytest.fixture
def tiny_bundle(tmp_path):
    """A bundle whose model marks pixels brighter than 0.5 as class 1 (input 32x32 grey)."""
    return Bundle(threshold_bundle(tmp_path / "tiny"))


@pytest.fixture
def runner(tiny_bundle):
    from jetseg.jetson.runners import open_runner

    with open_runner("onnxrt", tiny_bundle, threads=1) as active:
        yield active
