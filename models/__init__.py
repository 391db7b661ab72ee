"""Models: the U-Net family (:mod:`jetseg.models.archs`), export
(:mod:`jetseg.models.export`), synthetic scans (:mod:`jetseg.models.synthetic`) and the bundled demo bundles.

Importing this package is light (no torch): the submodules import what they need.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

from jetseg.errors import JetsegError

BUNDLES_DIR = Path(__file__).resolve().parent / "bundles"
BUNDLED = {"ultrasound": "ultrasound-unet", "endoscopy": "endoscopy-unet",
           "ultrasound-denoise": "ultrasound-denoise",  # task enhancement (docs/tasks.md)
           "ultrasound-register": "ultrasound-register"}  # task registration


def bundled(kind: str) -> Path:
    """The path of a demo bundle shipped with jetseg: ``bundled("ultrasound")``, ``bundled("endoscopy")`` (segmentation),
    ``bundled("ultrasound-denoise")`` (a denoiser, task enhancement), ``bundled("ultrasound-register")`` (task
    registration).

    All are trained on jetseg's synthetic scans (see their MODEL_CARD.md); not for clinical use.
    """
    if kind not in BUNDLED:
        raise JetsegError("no bundled model %r; bundled models: %s" % (kind, ", ".join(sorted(BUNDLED))))
    path = BUNDLES_DIR / BUNDLED[kind]
    if not (path / "model.onnx").is_file():
        raise JetsegError("bundled model %r is missing at %s; reinstall jetseg or retrain it (see "
                          "docs/models.md)" % (kind, path))
    return path


def bundled_names() -> List[str]:
    return sorted(BUNDLED)


__all__ = ["BUNDLED", "BUNDLES_DIR", "bundled", "bundled_names"]
