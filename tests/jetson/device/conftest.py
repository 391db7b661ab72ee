"""Fixtures for the device tests."""
from __future__ import annotations

import pytest

from tests.fixtures.bundles import conv_bundle


@pytest.fixture
def tiny_bundle(tmp_path):
    """A bundle of one 3x3 convolution (input 32x32 grey, 2 classes)."""
    return conv_bundle(tmp_path / "tiny")
