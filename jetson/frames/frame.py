"""One captured frame: what every source delivers and every later stage carries along."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np


@dataclass
class Frame:
    """One captured frame.

    Attributes:
        index: 0-based position in the stream (counts delivered frames of a live source).
        image: ``HxW`` grey or ``HxWx3`` BGR, uint8 or uint16, as OpenCV delivers it.
        timestamp: ``time.monotonic()`` when the frame was captured (for latency measurements).
        label: optional ground-truth mask ``HxW uint8`` (synthetic sources, labelled folders).
        source_id: where it came from (file name, URI), for reports; never patient data.
        meta: anything else the source knows (pixel spacing from DICOM, native fps, ...).
    """

    index: int
    image: np.ndarray
    timestamp: float
    label: Optional[np.ndarray] = None
    source_id: str = ""
    meta: Dict[str, Any] = field(default_factory=dict)
