"""What ``jetseg bench`` measures for accuracy, by the model's task (docs/tasks.md), in the same tables.

- segmentation: masks against the FP32 reference's masks (Dice, IoU, HD95, pixel agreement) and against
  labels when the frames have them; the Dice drop is the worse of the two bases (:mod:`jetseg.evaluate`).
- enhancement: images against the FP32 reference's images (PSNR, SSIM) and, when every frame carries a
  clean target (``frame.meta["clean"]``, the same size as the frame), against the targets; the PSNR drop is
  ``PSNR(FP32, target) - PSNR(row, target)`` (None without targets: FP32 is then the only reference).
- registration: each frame and its known smooth deformation make a pair (the calibration gate's pairs); the
  fields against the FP32 reference's fields: end-point error (mean, p95, pixels), the Dice of the frames'
  labels warped by the row's field against those warped by FP32's (its drop is the row's ``dice_drop``),
  and the folding fraction beside FP32's (:func:`jetseg.evaluate.compare_fields`).

A row dict carries every task's accuracy keys (None where they do not apply), so that tables, plots and
gates read one layout.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from jetseg import evaluate
from jetseg.spec import Spec
from jetseg.tasks import clean_target

#: The accuracy keys of enhancement rows (report.json; None for segmentation rows).
IMAGE_KEYS = ("psnr_vs_reference", "ssim_vs_reference", "psnr_vs_targets", "ssim_vs_targets",
              "psnr_drop", "ssim_drop")
#: The accuracy keys of registration rows (None for the other tasks; ``dice_drop`` is the warped-label drop).
FLOW_KEYS = ("epe_mean", "epe_p95", "folding", "reference_folding", "warped_label_dice")
#: The accuracy keys of segmentation rows (None for enhancement rows).
MASK_KEYS = ("dice_vs_reference", "iou_vs_reference", "hd95_vs_reference", "pixel_agreement", "logit_error",
             "dice_vs_labels", "iou_vs_labels", "hd95_vs_labels", "per_class", "dice_drop", "dice_drop_basis")


def _round(value: Any, digits: int = 5) -> Any:
    return round(float(value), digits) if isinstance(value, (int, float)) else value


def clean_targets(spec: Spec, frames: Sequence[Any],
                  boxes: Optional[Sequence[Sequence[int]]] = None) -> Optional[List[np.ndarray]]:
    """Each frame's clean target (``frame.meta["clean"]``, full frame) cropped to its ROI (``boxes``, as the
    inputs were; default the spec's) and resized like the model's input, ``(C, h, w) float32`` in [0, 1]
    (:func:`jetseg.tasks.clean_target`); None unless every frame has one."""
    cleans: List[np.ndarray] = [c for c in ((f.meta or {}).get("clean") for f in frames) if c is not None]
    if not cleans or len(cleans) != len(frames):
        return None
    rois = list(boxes) if boxes is not None else [spec.roi_for(f.image.shape) for f in frames]
    return [clean_target(spec, clean, box) for clean, box in zip(cleans, rois)]


def score_row(outputs: evaluate.Outputs, reference: evaluate.Outputs, frames: Sequence[Any], hd95: bool,
              labels: Optional[Sequence[Optional[np.ndarray]]] = None,
              boxes: Optional[Sequence[Sequence[int]]] = None) -> Dict[str, Any]:
    """One row's scores against the reference row (and labels or clean targets), by the spec's task.

    Args:
        labels: model-size labels, cropped to each frame's ROI (``bench --roi``); default: the frames' labels
            through the spec's ROI.
        boxes: each frame's ROI ``(x, y, w, h)`` (``bench --roi``) for the clean targets; default the spec's.
    """
    spec = outputs.spec
    if spec.task == "registration":
        return {"task": "registration", "fields": evaluate.compare_fields(
            reference, outputs, labels if labels is not None else [None] * len(frames))}
    if spec.task == "enhancement":
        return {"task": "enhancement",
                "images": evaluate.compare_images(reference, outputs, clean_targets(spec, frames, boxes))}
    if labels is None:
        scores = evaluate.score_frames(outputs, reference, frames, hd95=hd95)
    else:
        scores = evaluate.score(outputs, reference, labels, hd95=hd95, frame_shapes=[f.image.shape for f in frames])
    scores["task"] = "segmentation"
    return scores


def accuracy_columns(scores: Dict[str, Any]) -> Dict[str, Any]:
    """A row's accuracy keys (every task's; None where they do not apply) from :func:`score_row`."""
    out: Dict[str, Any] = dict.fromkeys(MASK_KEYS + IMAGE_KEYS + FLOW_KEYS)
    out["task"] = scores["task"]
    if scores["task"] == "registration":
        f = scores["fields"]
        out.update(epe_mean=_round(f["epe_mean"]), epe_p95=_round(f["epe_p95"]), folding=_round(f["folding"], 6),
                   reference_folding=_round(f["fp32_folding"], 6), warped_label_dice=_round(f["warped_label_dice"]),
                   dice_drop=_round(f["dice_drop"]), dice_drop_basis="warped labels, vs FP32")
        return out
    if scores["task"] == "enhancement":
        images = scores["images"]
        vs_ref = images["int8_vs_fp32"]
        out.update(psnr_vs_reference=_round(vs_ref["psnr"], 3), ssim_vs_reference=_round(vs_ref["ssim"], 5),
                   psnr_drop=_round(images["psnr_drop"], 3), ssim_drop=_round(images["ssim_drop"], 5))
        targets = images.get("int8_vs_targets")
        if targets is not None:
            out.update(psnr_vs_targets=_round(targets["psnr"], 3), ssim_vs_targets=_round(targets["ssim"], 5))
        return out
    vs_ref, vs_labels = scores["vs_reference"], scores["vs_labels"]
    drop = evaluate.dice_drop(scores)
    out.update({
        "dice_vs_reference": _round(vs_ref["dice"]), "iou_vs_reference": _round(vs_ref["iou"]),
        "hd95_vs_reference": _round(vs_ref.get("hd95"), 3),
        "pixel_agreement": _round(vs_ref["pixel_agreement"], 6),
        "logit_error": vs_ref.get("logit_error"),
        "dice_vs_labels": _round(vs_labels["dice"]) if vs_labels else None,
        "iou_vs_labels": _round(vs_labels["iou"]) if vs_labels else None,
        "hd95_vs_labels": _round(vs_labels.get("hd95"), 3) if vs_labels else None,
        "per_class": {"vs_reference": vs_ref["per_class"],
                      "vs_labels": vs_labels["per_class"] if vs_labels else None},
        "dice_drop": _round(drop["dice_drop"]), "dice_drop_basis": drop["dice_drop_basis"]})
    return out
