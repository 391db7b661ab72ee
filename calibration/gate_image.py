"""The accuracy gate of the enhancement task: PSNR and SSIM of INT8 images against FP32 (and clean targets).

The same gate as segmentation's (:class:`~jetseg.calibration.gate.Gate`: held-out and bench frames, the
layer ranking and fallback), scoring images instead of masks. Outputs are read with
:func:`jetseg.tasks.enhanced_images` (clipped to ``enhancement.range``, scaled to [0, 1]) and scored with
:mod:`jetseg.imagescores`:

- always against FP32: the mean SSIM of INT8 with FP32 must be at least ``min_ssim`` (default 0.99); the
  PSNR of INT8 against FP32 is recorded;
- also against clean targets when every held-out frame has one: the *PSNR drop* ``PSNR(FP32, target) -
  PSNR(INT8, target)`` must be at most ``max_psnr_drop`` dB (default 0.3), and the SSIM drop is recorded.

Without targets there is no PSNR drop to measure (FP32 is the only reference and INT8's distance to it is
what SSIM measures); the result says ``psnr_drop: null`` and ``bases: ["fp32"]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from jetseg import evaluate
from jetseg.bundle import Bundle
from jetseg.calibration.gate import Gate, rounded

#: Defaults of ``jetseg calibrate --gate-psnr`` (dB) and ``--gate-ssim`` for enhancement models.
MAX_PSNR_DROP = 0.3
MIN_SSIM = 0.99


def compare_images(reference: evaluate.Outputs, candidate: evaluate.Outputs,
                   targets: Optional[Sequence[Optional[np.ndarray]]] = None) -> Dict[str, Any]:
    """:func:`jetseg.evaluate.compare_images` (the scores bench shows too), rounded for the report."""
    return rounded(evaluate.compare_images(reference, candidate, targets))


class ImageGate(Gate):
    """:class:`~jetseg.calibration.gate.Gate` for enhancement bundles (``targets`` in place of labels).

    Args:
        max_psnr_drop: the largest allowed PSNR drop against the targets, dB.
        min_ssim: the smallest allowed mean SSIM of INT8 against FP32.
    """

    def __init__(self, fp32: Bundle, inputs: Sequence[np.ndarray], targets: Sequence[Optional[np.ndarray]],
                 max_psnr_drop: float, min_ssim: float, work_dir: Path, progress: bool = True,
                 check_inputs: Sequence[np.ndarray] = (),
                 check_targets: Sequence[Optional[np.ndarray]] = ()) -> None:
        fp32.spec.require_task("the image gate", "enhancement")
        self.min_ssim = float(min_ssim)
        super().__init__(fp32, inputs, targets, max_psnr_drop, work_dir, progress, check_inputs, check_targets)

    def compare(self, reference: evaluate.Outputs, candidate: evaluate.Outputs,
                labels: Sequence[Optional[np.ndarray]]) -> Dict[str, Any]:
        return compare_images(reference, candidate, labels)

    def verdict(self, result: Dict[str, Any]) -> bool:
        drop = result["psnr_drop"]
        return bool(result["ssim"] >= self.min_ssim and (drop is None or drop <= self.threshold))

    def describe(self, result: Dict[str, Any]) -> str:
        drop = "no clean targets" if result["psnr_drop"] is None else "%.3f dB" % result["psnr_drop"]
        return "SSIM vs FP32 %.4f, PSNR vs FP32 %.2f dB, PSNR drop vs targets %s" % (
            result["ssim"], result["psnr"], drop)

    def limits(self) -> str:
        return "--gate-ssim %g / --gate-psnr %g" % (self.min_ssim, self.threshold)

    def failure(self, result: Dict[str, Any]) -> Tuple[str, str]:
        return "%s (limits %s)" % (self.describe(result), self.limits()), "a lower --gate-ssim or a larger --gate-psnr"

    def record(self, result: Dict[str, Any]) -> Dict[str, Any]:
        return {"threshold": {"psnr_drop_db": self.threshold, "min_ssim": self.min_ssim},
                "int8_vs_fp32": {"ssim": result["ssim"], "psnr": result["psnr"]}, "psnr_drop": result["psnr_drop"]}
