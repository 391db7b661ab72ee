"""Fixtures for the calibration tests; the model and scan builders live in calhelpers.py."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from calhelpers import SPEC, build_model, scene


@pytest.fixture(autouse=True)
def _reset_jetseg_logging():
    """The CLI binds its log handler to the (captured) stderr of the test that ran it; undo that afterwards."""
    import logging

    yield
    logger = logging.getLogger("jetseg")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., Path]:
    """``make_bundle(name, outlier=False, opset=17)`` -> path of an FP32 bundle in tmp_path."""
    from jetseg.bundle import save_bundle
    from jetseg.spec import Spec

    def make(name: str = "fp32", outlier: bool = False, opset: int = 17) -> Path:
        model = build_model(outlier=outlier, opset=opset)
        save_bundle(tmp_path / name, model.SerializeToString(), Spec.from_dict(SPEC))
        return tmp_path / name

    return make


@pytest.fixture
def png_folder(tmp_path: Path) -> Callable[..., Path]:
    """``png_folder(n, labelled=True)``: DIR/images/*.png (+ DIR/masks/*.png) with ``n`` scenes."""
    import cv2

    def make(n: int = 24, labelled: bool = True, name: str = "scans") -> Path:
        root = tmp_path / name
        images = root / "images" if labelled else root
        images.mkdir(parents=True)
        if labelled:
            (root / "masks").mkdir()
        for i in range(n):
            image, mask = scene(i)
            cv2.imwrite(str(images / ("scan%03d.png" % i)), image)
            if labelled:
                cv2.imwrite(str(root / "masks" / ("scan%03d.png" % i)), mask)
        return root

    return make


