"""Output sinks, named by URI: ``display://``, ``file://out.mp4``, ``http://HOST:PORT``, ``masks://DIR``, ``dicom-seg://DIR``, ``null://``."""
from __future__ import annotations

from jetseg.jetson.sinks.base import SINKS, Sink, SinkContext, open_sink

__all__ = ["SINKS", "Sink", "SinkContext", "open_sink"]
