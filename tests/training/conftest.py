"""Fixtures for the distillation tests: a small fixed teacher bundle on synthetic ultrasound geometry."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List

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


@pytest.fixture
def opened_runners(monkeypatch: pytest.MonkeyPatch) -> List[Any]:
    """Every runner ``open_runner`` constructs in the test, in order, on a machine with 3 usable cores (so
    jetseg's default threads are 2)."""
    import jetseg.jetson.runners as runners
    from jetseg.jetson.runners import base

    opened: List[Any] = []
    real_open = runners.open_runner

    def spy(*args: Any, **kwargs: Any) -> Any:
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(base, "usable_cores", lambda: 3)
    monkeypatch.setattr(runners, "open_runner", spy)
    return opened
