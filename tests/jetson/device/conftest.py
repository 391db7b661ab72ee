"""Fixtures for the device tests."""
from __future__ import annotations

import pytest
from device_models import make_bundle


@pytest.fixture
def tiny_bundle(tmp_path):
    return make_bundle(tmp_path / "tiny")
