"""The accuracy gate of the registration task: the INT8 field against the FP32 field (docs/tasks.md).

The same gate as segmentation's (:class:`~jetseg.calibration.gate.Gate`: held-out and bench frames, the
layer ranking by mean |output difference| and the fallback), scoring fields instead of masks with
:func:`jetseg.evaluate.compare_fields`. Each held-out frame becomes a pair (the frame, and the frame warped by
a known smooth field: :func:`jetseg.evaluate.deformed_pairs`), and the calibration frames become pairs the
same way, fed to ONNX Runtime's calibration as ``{input.name: moving, registration.fixed_input: fixed}``.

It passes when, on the held-out pairs and on the pairs of the frames ``jetseg bench`` reads first:

- the end-point error of the INT8 field against the FP32 field has a 95th percentile of at most
  ``max_epe_p95`` pixels (default 0.5; the mean is recorded);
- the Dice of the moving image's labels warped by the INT8 field against the labels warped by the FP32 field
  drops by at most ``max_dice_drop`` (default 0.01, ``--gate-dice``), when the frames have labels (without
  labels the report says ``dice_drop: null``);
- the folding fraction (share of non-positive Jacobian determinants) is at most FP32's plus
  :data:`FOLDING_TOLERANCE` (0.001: one pixel in a thousand), so INT8 noise that folds tissue fails even when
  the field is close on average.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetseg import evaluate
from jetseg.bundle import Bundle
from jetseg.calibration.gate import Gate, rounded

#: Default of ``jetseg calibrate --gate-epe`` (pixels, the 95th percentile of the EPE against FP32).
MAX_EPE_P95 = 0.5
#: How much the INT8 folding fraction may exceed FP32's (a share of the pixels).
FOLDING_TOLERANCE = 0.001
#: Seeds of the calibration pairs' deformations (held-out and bench pairs: jetseg.evaluate.PAIR_SEED, 500, on).
CALIBRATION_SEED = 0


def calibration_feeds(spec: Any, frames: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
    """Calibration pairs of preprocessed frames as ONNX Runtime reader items: ``{moving, fixed}`` by input name."""
    reg = spec.registration
    return [{spec.input.name: moving, reg.fixed_input: fixed}
            for moving, fixed in evaluate.deformed_pairs(frames, CALIBRATION_SEED)]


def held_out_pairs(frames: Sequence[np.ndarray]) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The gate's (and the bench's) pairs of preprocessed frames: :func:`jetseg.evaluate.deformed_pairs`."""
    return evaluate.deformed_pairs(frames, evaluate.PAIR_SEED)


def warp_nodes(model: Any, field_output: str) -> List[str]:
    """Names of the nodes that do not lead to the field output ``field_output`` (a ModelProto): the warp of a
    model with ``registration.warped_output`` (the sampling grid's arithmetic and GridSample). Calibration
    keeps them in float: 8 bits on the grid's [-1, 1] would move every sample by up to a fraction of a pixel,
    and the gate, which checks the field, would not see it."""
    producers = {out: node for node in model.graph.node for out in node.output}
    needed, todo = set(), [field_output]
    while todo:
        node = producers.get(todo.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            todo.extend(node.input)
    return [node.name for node in model.graph.node if id(node) not in needed and node.name]


class FlowGate(Gate):
    """:class:`~jetseg.calibration.gate.Gate` for registration bundles.

    Args:
        pairs: held-out ``(moving, fixed)`` pairs (:func:`held_out_pairs`).
        labels: the moving images' labels at model size (None per pair without one).
        max_epe_p95: the largest allowed 95th percentile of the EPE against FP32, pixels.
        max_dice_drop: the largest allowed drop of the warped-label Dice against FP32.
    """

    def __init__(self, fp32: Bundle, pairs: Sequence[Any], labels: Sequence[Optional[np.ndarray]],
                 max_epe_p95: float, max_dice_drop: float, work_dir: Path, progress: bool = True,
                 check_inputs: Sequence[Any] = (), check_labels: Sequence[Optional[np.ndarray]] = ()) -> None:
        fp32.spec.require_task("the registration gate", "registration")
        self.max_dice_drop = float(max_dice_drop)
        self.warp_nodes: List[str] = []  # kept in float by the workflow (:func:`warp_nodes`), recorded here
        super().__init__(fp32, pairs, labels, max_epe_p95, work_dir, progress, check_inputs, check_labels)

    def compare(self, reference: evaluate.Outputs, candidate: evaluate.Outputs,
                labels: Sequence[Optional[np.ndarray]]) -> Dict[str, Any]:
        return rounded(evaluate.compare_fields(reference, candidate, labels))

    def verdict(self, result: Dict[str, Any]) -> bool:
        drop = result["dice_drop"]
        return bool(result["epe_p95"] <= self.threshold and (drop is None or drop <= self.max_dice_drop)
                    and result["folding_rise"] <= FOLDING_TOLERANCE)

    def describe(self, result: Dict[str, Any]) -> str:
        drop = "no labels" if result["dice_drop"] is None else "%.4f" % result["dice_drop"]
        return "EPE vs FP32 mean %.3f px, p95 %.3f px; warped-label Dice drop %s; folding %.4f (FP32 %.4f)" % (
            result["epe_mean"], result["epe_p95"], drop, result["folding"], result["fp32_folding"])

    def limits(self) -> str:
        return "--gate-epe %g / --gate-dice %g / folding rise %g" % (self.threshold, self.max_dice_drop,
                                                                     FOLDING_TOLERANCE)

    def failure(self, result: Dict[str, Any]) -> Tuple[str, str]:
        return "%s (limits %s)" % (self.describe(result), self.limits()), "a larger --gate-epe or --gate-dice"

    def record(self, result: Dict[str, Any]) -> Dict[str, Any]:
        return {"threshold": {"epe_p95_px": self.threshold, "dice_drop": self.max_dice_drop,
                              "folding_rise": FOLDING_TOLERANCE},
                "int8_vs_fp32": {"epe_mean": result["epe_mean"], "epe_p95": result["epe_p95"],
                                 "folding": result["folding"], "fp32_folding": result["fp32_folding"]},
                "dice_drop": result["dice_drop"], "warp_kept_in_float": list(self.warp_nodes)}
