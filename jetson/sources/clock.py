"""Capture stamps from the source's own clock: when a frame came to exist, not when jetseg read it.

A frame's ``timestamp`` starts its capture-to-mask latency, so time a frame spends waiting in a driver's or
a decoder's buffer must count. What each source uses:

- ``synthetic://`` with ``realtime=1``: the frame's place in the schedule (start + k / fps).
- video files paced with ``realtime=1``: likewise, the frame's due time; unpaced: the moment it was decoded.
- ``v4l2://`` through OpenCV's V4L2 backend: the driver's buffer timestamp (``CAP_PROP_POS_MSEC``), which is
  ``CLOCK_MONOTONIC``, the clock of ``time.monotonic()``; used when it is plausible (not in the future, at
  most ``max_age_s`` old), else as a stream clock (below).
- streams (RTSP, UDP, GStreamer pipelines, V4L2 through GStreamer): the presentation time
  (``CAP_PROP_POS_MSEC``) is on the stream's own clock; it is mapped onto ``time.monotonic()`` by the
  earliest arrival seen (offset = min(arrival - pts)), so a frame that waited in a buffer gets a stamp earlier
  than its arrival by that wait. A jump of the stream clock re-anchors the mapping.
- anything without a usable time (position 0, NaN): the moment the grabber received the frame.
"""
from __future__ import annotations

import math
from typing import Optional


class CaptureClock:
    """Maps one capture's frame times onto ``time.monotonic()`` (one per opened capture).

    Args:
        monotonic_source: the capture reports ``CLOCK_MONOTONIC`` buffer times (OpenCV's V4L2 backend).
        max_age_s: a stamp older than this (relative to arrival) is not believed: the mapping re-anchors.
    """

    def __init__(self, monotonic_source: bool = False, max_age_s: float = 2.0) -> None:
        self.monotonic_source = monotonic_source
        self.max_age_s = float(max_age_s)
        self.basis = "arrival"  # what the last stamp came from: buffer, stream, arrival
        self._offset: Optional[float] = None

    def stamp(self, pos_msec: Optional[float], arrived: float) -> float:
        """The capture time of a frame whose source time is ``pos_msec`` and that arrived at ``arrived``."""
        if pos_msec is None or not math.isfinite(pos_msec) or pos_msec <= 0:
            self.basis = "arrival"
            return arrived
        t = pos_msec / 1000.0
        if self.monotonic_source and 0.0 <= arrived - t <= self.max_age_s:
            self.basis = "buffer"
            return t
        offset = arrived - t
        # the earliest arrival anchors the mapping; a stamp after its arrival or far too old re-anchors it
        if self._offset is None or offset < self._offset or arrived - (t + self._offset) > self.max_age_s:
            self._offset = offset
        self.basis = "stream"
        return t + self._offset
