"""Fixtures for the calibration tests; the model and scan builders live in tests.fixtures."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.fixtures.bundles import unet_like_bundle
from tests.fixtures.media import write_png_scans
from tests.fixtures.models import unet_like


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


@pytest.fixture(scope="module")
def unet_ranges(tmp_path_factory):
    """``(prepared.onnx, ranges)``: the tiny U-Net prepared for quantization and its minmax ranges on 4 frames
    (the input of every quantize() call in the layout and checker tests; they write their outputs elsewhere)."""
    import numpy as np
    import onnx

    from jetseg.calibration import quantize as q

    work = tmp_path_factory.mktemp("ranges")
    onnx.save(unet_like(), str(work / "fp32.onnx"))
    q.prepare_model(work / "fp32.onnx", work / "prepared.onnx")
    frames = [np.random.default_rng(i).random((1, 1, 32, 32)).astype(np.float32) for i in range(4)]
    return work / "prepared.onnx", q.compute_ranges(work / "prepared.onnx", "input", frames, "minmax", work,
                                                    progress=False)
