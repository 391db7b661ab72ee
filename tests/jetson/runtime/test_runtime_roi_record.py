"""roi=1 never records text: auto ROI on real-looking scanner screens through the pipeline."""
from __future__ import annotations

from typing import Any, List

from jetseg.jetson.frames.roi import RoiPolicy
from jetseg.jetson.pipeline import Pipeline
from jetseg.jetson.sinks.base import Sink
from tests.fixtures.scanner import scanner_screen
from tests.fixtures.streams import ListSource


class RoiOnlySink(Sink):
    """Keeps what a roi=1 recorder would store: the ROI-only overlay of every frame."""

    blocking_ok = True

    def __init__(self) -> None:
        super().__init__("roi-only://")
        self.images: List[Any] = []

    def _write(self, result: Any) -> None:
        self.images.append(result.overlay(roi_only=True))


def _run(runner, images):
    from jetseg.jetson.sinks.base import SinkContext

    sink = RoiOnlySink()
    sink.open(SinkContext(spec=runner.spec, roi_only=True))
    pipeline = Pipeline(ListSource(images).open(), runner, [("rec", sink)], roi=RoiPolicy(runner.spec, "auto"))
    pipeline.start()
    assert pipeline.wait(60)
    return pipeline, sink


def test_roi_only_recording_of_an_ob_screen_holds_the_sector_not_the_header(runner):
    images = [scanner_screen("ob-header", seed)[0] for seed in range(4)]
    truth = scanner_screen("ob-header", 0)[1]
    pipeline, sink = _run(runner, images)
    x, y, w, h = pipeline.summary()["roi"]
    assert y >= 56 and abs(y - truth[1]) <= 6 and abs(h - truth[3]) <= 6
    assert len(sink.images) == 4 and all(img.shape[:2] == (h, w) for img in sink.images)


def test_roi_only_is_refused_when_auto_roi_is_not_sure(runner, caplog):
    screen, _ = scanner_screen("colour-bar")
    screen[80:] = 0  # a screen of text and bars only (the probe is frozen, the image blanked)
    pipeline, sink = _run(runner, [screen] * 3)
    assert sink.images == []  # nothing recorded, not the whole screen
    assert "roi=1 refused for frame 0: auto ROI found no imaging area it is sure of" in caplog.text
    assert "ROI auto-detection is not sure" in caplog.text
