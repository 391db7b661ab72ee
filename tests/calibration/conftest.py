"""Fixtures for the calibration tests; the model and scan builders live in tests.fixtures."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.fixtures.bundles import unet_like_bundle
from tests.fixtures.media import write_png_scans


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., Path]:
    """``make_bundle(name, outlier=False, opset=17)`` -> path of an FP32 U-Net-like bundle in tmp_path."""
    def make(name: str = "fp32", outlier: bool = False, opset: int = 17) -> Path:
        return unet_like_bundle(tmp_path / name, outlier=outlier, opset=opset)

    return make


@pytest.fixture
def png_folder(tmp_path: Path) -> Callable[..., Path]:
    """``png_folder(n, labelled=True)``: DIR/images/*.png (+ DIR/masks/*.png) with ``n`` scenes."""
    def make(n: int = 24, labelled: bool = True, name: str = "scans") -> Path:
        return write_png_scans(tmp_path / name, n, labelled)

    return make
