"""``display://``: the overlay in an OpenCV window on the local desktop.

``q`` or Esc in the window (or closing it) sets :attr:`DisplaySink.quit_requested`; the pipeline reads it
and ends the run. The window is created at the first ``write()``, so open, write and close all happen in
the thread that writes (HighGUI wants one thread). Without a desktop (no ``$DISPLAY`` on Linux) or with a
headless OpenCV build (``opencv-python-headless``), ``open()`` raises a SinkError saying what to use instead.

Options: ``roi=1`` shows the ROI only, ``pair=1`` the input frame and the output side by side, ``title=`` names
the window (default: the model's name).
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

from jetseg.errors import SinkError
from jetseg.jetson.sinks.base import Sink, SinkContext
from jetseg.optional import require

log = logging.getLogger("jetseg.sinks.display")

NOT_BACKENDS = ("VTK support", "Built-in Unicode font", "GThread", "OpenGL support")
QUIT_KEYS = (ord("q"), ord("Q"), 27)
INSTEAD = "use http://127.0.0.1:8080 (web viewer) or file://out.mp4 instead"


def gui_backend(cv2: Any) -> str:
    """The GUI backend OpenCV was built with (``GTK3``, ``QT5``, ...), or ``""`` for headless builds."""
    lines = cv2.getBuildInformation().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("GUI:"):
            value = line.split(":", 1)[1].strip()
            if value and value.upper() != "NONE":
                return value
            # Older builds list the backends on the more indented lines below ("GTK+: YES (ver 3.24)").
            indent = len(line) - len(line.lstrip())
            for sub in lines[i + 1:]:
                if len(sub) - len(sub.lstrip()) <= indent:
                    break
                name, _, state = sub.partition(":")
                if state.strip().upper().startswith("YES") and name.strip() not in NOT_BACKENDS:
                    return name.strip()
            return ""
    return ""


class DisplaySink(Sink):
    """An OpenCV window; sets ``quit_requested`` when the user presses q or Esc or closes the window."""

    kind = "display"

    def __init__(self, uri: str = "", **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.roi = opts.flag("roi", None)
        self.pair = opts.flag("pair", False)  # input | output side by side
        self.title_option = opts.text("title", None)
        opts.done()
        self.quit_requested = False
        self.title = ""
        self.roi_only = False
        self._window = False
        self._cv2: Any = None

    def _open(self, context: SinkContext) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SinkError("display:// needs a desktop session but $DISPLAY is not set (ssh without -X, a "
                            "service, or a headless machine); %s" % INSTEAD)
        cv2 = require("cv2", "the display window")
        if not gui_backend(cv2):
            raise SinkError("display:// needs OpenCV with a GUI, but this OpenCV %s is a headless build "
                            "(opencv-python-headless); on a Jetson use JetPack's python3-opencv, or %s"
                            % (cv2.__version__, INSTEAD))
        self._cv2 = cv2
        self.title = self.title_option or "jetseg: %s" % context.spec.name
        self.roi_only = context.roi_only if self.roi is None else self.roi

    def _write(self, result: Any) -> None:
        cv2 = self._cv2
        if not self._window:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self._window = True
        cv2.imshow(self.title, result.overlay(roi_only=self.roi_only, pair=self.pair))
        key = cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            if not self.quit_requested:
                log.info("display window closed by the user")
            self.quit_requested = True
        self.written += 1

    def _close(self) -> None:
        if self._cv2 is not None and self._window:
            self._cv2.destroyWindow(self.title)
            self._cv2.waitKey(1)
        self._window = False
        self._cv2 = None
