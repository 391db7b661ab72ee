"""Fixtures for the distillation tests: a small fixed teacher bundle on synthetic ultrasound geometry."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.fixtures.bundles import threshold_bundle


@pytest.fixture
def make_teacher(tmp_path: Path) -> Callable[..., Path]:
    """``make_teacher(kind="softmax")`` -> a 32x32 teacher that marks bright pixels of the sector as lesion.

    A fixed 1x1-convolution threshold (:func:`tests.fixtures.bundles.threshold_bundle`) with the ROI of
    160x120 synthetic ultrasound frames: a non-trivial teacher that a few student steps do not reproduce.
    """
    from jetseg.models.synthetic import field_of_view

    def make(kind: str = "softmax", name: str = "teacher") -> Path:
        roi = [int(v) for v in field_of_view("ultrasound", (120, 160))]
        return threshold_bundle(tmp_path / name, size=32, threshold=0.25, kind=kind, roi=roi, name=name)

    return make
