"""display:// without a desktop: a clear error at open(), never a crash at the first frame."""
from __future__ import annotations

import pytest

from jetseg.errors import SinkError
from jetseg.jetson.sinks import SinkContext, open_sink
from jetseg.jetson.sinks.display import DisplaySink, gui_backend
from tests.fixtures.media import make_result


class FakeBuild:
    def __init__(self, text: str) -> None:
        self.text = text

    def getBuildInformation(self) -> str:
        return self.text


def test_no_display_is_a_clear_error(spec, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sink = open_sink("display://")
    assert isinstance(sink, DisplaySink) and not sink.quit_requested
    with pytest.raises(SinkError, match=r"display:// needs a desktop session but \$DISPLAY is not set .*; use "
                                        r"http://127.0.0.1:8080 \(web viewer\) or file://out.mp4 instead"):
        sink.open(SinkContext(spec=spec))
    with pytest.raises(SinkError, match=r"display:// sink is not open; write\(\) came before open\(\) or after close\(\)"):
        sink.write(make_result(0, spec))


def test_headless_opencv_is_a_clear_error(spec, monkeypatch):
    import cv2

    if gui_backend(cv2):
        pytest.skip("this OpenCV has a GUI (%s); the headless error path needs opencv-python-headless"
                    % gui_backend(cv2))
    monkeypatch.setenv("DISPLAY", ":99")
    with pytest.raises(SinkError, match=r"display:// needs OpenCV with a GUI, but this OpenCV .* is a headless "
                                        r"build \(opencv-python-headless\)"):
        open_sink("display://").open(SinkContext(spec=spec))


@pytest.mark.parametrize("text,expected", [
    ("  GUI:                           NONE\n    VTK support:                 NO\n", ""),
    ("  GUI:                           GTK3\n    GTK+:                        YES (ver 3.24.20)\n", "GTK3"),
    ("  GUI: \n    GTK+:                        YES (ver 3.24.20)\n      GThread :   YES\n", "GTK+"),
    ("  GUI: \n  Media I/O: \n    ZLib:                        YES\n", ""),
])
def test_gui_backend_from_build_information(text, expected):
    assert gui_backend(FakeBuild(text)) == expected


def test_display_options(spec):
    with pytest.raises(SinkError, match=r"unknown display:// sink option 'fps'; known options: pair, roi, title"):
        open_sink("display://?fps=3")
