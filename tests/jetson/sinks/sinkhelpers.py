"""Hand-built Results for driving the sinks directly: a small synthetic grey frame with a bright disc, its
mask, and a two-class spec with a red overlay colour. (Named uniquely: imported by the tests as a module.)"""
from __future__ import annotations

import time
from typing import Tuple

import numpy as np

from jetseg.jetson.result import Result
from jetseg.jetson.sources.base import Frame
from jetseg.spec import Spec

#: ROI (x, y, w, h) of the test frames.
ROI = (20, 10, 80, 60)
LESION_RGB = (255, 40, 40)


def make_spec(spacing: bool = True) -> Spec:
    return Spec.from_dict({
        "name": "test-unet",
        "input": {"size": [32, 32], "channels": 1, "color_order": "gray", "roi": list(ROI)},
        "classes": ["background", "lesion"],
        "colors": [[0, 0, 0], list(LESION_RGB)],
        "overlay_alpha": 0.6,
        "pixel_spacing_mm": [0.5, 0.5] if spacing else None,
    })


def make_result(index: int, spec: Spec, shape: Tuple[int, int] = (96, 128)) -> Result:
    """Frame ``index``: a disc that moves one pixel per frame inside the ROI; mask = the disc."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    x0, y0, w, h = ROI
    cx, cy = x0 + 20 + index % 30, y0 + h // 2
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= 12 ** 2
    image = np.full((height, width), 40, np.uint8)
    image[disc] = 200
    image[:8, :60] = 255  # "burned-in text" outside the ROI
    mask = np.zeros((height, width), np.uint8)
    mask[disc] = 1
    mask[:y0, :] = 0
    area = int(mask.sum())
    now = time.monotonic()
    return Result(frame=Frame(index=index, image=image, timestamp=now, source_id="test"),
                  mask=mask, roi=ROI, spec=spec, areas_px={"lesion": area},
                  areas_mm2={"lesion": area * 0.25} if spec.pixel_spacing_mm else None,
                  stamps={"captured": now, "inferred": now}, inference_ms=1.5)

