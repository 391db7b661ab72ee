"""Segmentation accuracy: the project's one implementation of Dice, IoU, HD95, pixel agreement, logit error.

Masks are ``HxW`` (or ``NxHxW``) integer class indices, class 0 is background. Scores are per foreground
class (1..K-1) and per frame; a class that is absent from both masks of a frame has no Dice, IoU or HD95
for that frame (NaN, left out of every mean), so frames without the structure neither inflate nor deflate
the score.

- Dice ``2|P & R| / (|P| + |R|)``, IoU ``|P & R| / |P | R|``.
- HD95: the symmetric 95th-percentile Hausdorff distance between the class boundaries, in pixels of the
  compared masks (the larger of the two directed 95th percentiles, exact Euclidean distances from OpenCV's
  distance transform). When one mask has the class and the other not, HD95 is the mask's diagonal (the
  worst possible distance), so a missed or invented structure is penalised instead of ignored.
- Pixel agreement: the fraction of pixels with the same class in both masks (background included).
- Logit error: mean and max absolute difference between two models' raw outputs on the same input.

Dice and IoU need numpy only (the calibration gate imports them cheaply); HD95 needs OpenCV.

    scores = SegmentationScores(["background", "lesion"])
    for pred, ref in pairs:
        scores.add(pred, ref)
    scores.summary()  # {"dice": 0.93, "iou": ..., "hd95": ..., "per_class": {"lesion": {...}}, ...}
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["dice_per_class", "iou_per_class", "hd95_per_class", "pixel_agreement", "logit_error",
           "mean_dice", "SegmentationScores"]


def _pair(pred: Any, ref: Any) -> Any:
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError("masks differ in shape: %s vs %s; compare masks of the same size" % (pred.shape, ref.shape))
    if pred.ndim not in (2, 3):
        raise ValueError("masks must be HxW or NxHxW class indices, got shape %s" % (pred.shape,))
    return pred, ref


def _overlaps(pred: np.ndarray, ref: np.ndarray, num_classes: int) -> Any:
    """Per class 1..K-1: (|P & R|, |P|, |R|) as float arrays."""
    inter, p_sum, r_sum = (np.zeros(num_classes - 1) for _ in range(3))
    for k in range(1, num_classes):
        p, r = pred == k, ref == k
        inter[k - 1] = np.count_nonzero(p & r)
        p_sum[k - 1] = np.count_nonzero(p)
        r_sum[k - 1] = np.count_nonzero(r)
    return inter, p_sum, r_sum


def dice_per_class(pred: Any, ref: Any, num_classes: int) -> np.ndarray:
    """Dice of each foreground class (length K-1) for one mask pair; NaN where both lack the class."""
    pred, ref = _pair(pred, ref)
    inter, p_sum, r_sum = _overlaps(pred, ref, num_classes)
    denom = p_sum + r_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2.0 * inter / np.maximum(denom, 1), np.nan)


def iou_per_class(pred: Any, ref: Any, num_classes: int) -> np.ndarray:
    """IoU (Jaccard) of each foreground class (length K-1); NaN where both lack the class."""
    pred, ref = _pair(pred, ref)
    inter, p_sum, r_sum = _overlaps(pred, ref, num_classes)
    union = p_sum + r_sum - inter
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def mean_dice(pred: Any, ref: Any, num_classes: int) -> float:
    """Mean foreground Dice over frames and classes (NaN-free mean; 1.0 when no class appears anywhere).

    ``pred`` and ``ref`` are ``HxW`` or ``NxHxW``; each frame is scored on its own, then averaged.
    """
    pred, ref = _pair(pred, ref)
    if pred.ndim == 2:
        pred, ref = pred[None], ref[None]
    values = np.concatenate([dice_per_class(p, r, num_classes) for p, r in zip(pred, ref)])
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else 1.0


def _boundary(mask: np.ndarray, cv2: Any) -> np.ndarray:
    """Pixels of ``mask`` that touch a non-mask pixel (4-neighbourhood) or the image border."""
    padded = np.pad(mask.astype(np.uint8), 1, mode="constant")
    eroded = cv2.erode(padded, np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8))[1:-1, 1:-1]
    return mask & (eroded == 0)


def _distance_to(boundary: np.ndarray, cv2: Any) -> np.ndarray:
    """Exact Euclidean distance of every pixel to the nearest ``boundary`` pixel."""
    src = np.where(boundary, 0, 1).astype(np.uint8)
    return cv2.distanceTransform(src, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def hd95_per_class(pred: Any, ref: Any, num_classes: int) -> np.ndarray:
    """Symmetric 95th-percentile Hausdorff distance (pixels) per foreground class, for one ``HxW`` pair.

    NaN where both masks lack the class; the mask diagonal where exactly one has it.
    """
    from jetseg.optional import require

    cv2 = require("cv2", "the HD95 metric (OpenCV distance transform)")
    pred, ref = _pair(pred, ref)
    if pred.ndim != 2:
        raise ValueError("hd95_per_class takes one HxW mask pair, got shape %s" % (pred.shape,))
    worst = math.hypot(pred.shape[0], pred.shape[1])
    out = np.full(num_classes - 1, np.nan)
    for k in range(1, num_classes):
        p, r = pred == k, ref == k
        has_p, has_r = bool(p.any()), bool(r.any())
        if not has_p and not has_r:
            continue
        if has_p != has_r:
            out[k - 1] = worst
            continue
        bp, br = _boundary(p, cv2), _boundary(r, cv2)
        d_pr = _distance_to(br, cv2)[bp]  # pred boundary -> ref boundary
        d_rp = _distance_to(bp, cv2)[br]
        out[k - 1] = max(float(np.percentile(d_pr, 95)), float(np.percentile(d_rp, 95)))
    return out


def pixel_agreement(pred: Any, ref: Any) -> float:
    """Fraction of pixels where both masks hold the same class (background included)."""
    pred, ref = _pair(pred, ref)
    return float(np.count_nonzero(pred == ref)) / float(pred.size)


def logit_error(output: Any, ref_output: Any) -> Dict[str, float]:
    """``{"mean_abs": .., "max_abs": ..}`` difference between two raw model outputs of the same shape."""
    a, b = np.asarray(output, dtype=np.float32), np.asarray(ref_output, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError("outputs differ in shape: %s vs %s" % (a.shape, b.shape))
    diff = np.abs(a - b)
    return {"mean_abs": float(diff.mean()), "max_abs": float(diff.max())}


def _nanmean(values: List[float]) -> Optional[float]:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else None


class SegmentationScores:
    """Accumulates per-frame scores of predicted masks against reference masks (labels or FP32 masks).

    Args:
        classes: class names, background first (``Spec.classes``).
        hd95: also compute HD95 (needs OpenCV; the costliest metric).
    """

    def __init__(self, classes: Sequence[str], hd95: bool = True) -> None:
        if len(classes) < 2:
            raise ValueError("need at least two classes (background first), got %r" % (list(classes),))
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.with_hd95 = hd95
        self.frames = 0
        self._dice: List[np.ndarray] = []
        self._iou: List[np.ndarray] = []
        self._hd95: List[np.ndarray] = []
        self._agree: List[float] = []
        self._logit_mean: List[float] = []
        self._logit_max = 0.0

    def add(self, pred: Any, ref: Any, output: Any = None, ref_output: Any = None) -> Dict[str, Any]:
        """Score one ``HxW`` mask pair (and optionally the raw outputs behind them); return its scores."""
        pred, ref = _pair(pred, ref)
        dice = dice_per_class(pred, ref, self.num_classes)
        iou = iou_per_class(pred, ref, self.num_classes)
        self._dice.append(dice)
        self._iou.append(iou)
        agree = pixel_agreement(pred, ref)
        self._agree.append(agree)
        frame: Dict[str, Any] = {"dice": _nanmean(list(dice)), "pixel_agreement": agree}
        if self.with_hd95:
            hd = hd95_per_class(pred, ref, self.num_classes)
            self._hd95.append(hd)
            frame["hd95"] = _nanmean(list(hd))
        if output is not None and ref_output is not None:
            err = logit_error(output, ref_output)
            self._logit_mean.append(err["mean_abs"])
            self._logit_max = max(self._logit_max, err["max_abs"])
        self.frames += 1
        return frame

    def summary(self) -> Dict[str, Any]:
        """Means over frames: ``dice``, ``iou``, ``hd95`` (foreground classes pooled), ``per_class``,
        ``pixel_agreement``, ``logit_error`` (when outputs were given), ``frames``.

        A mean over no defined value (the class never appeared in either mask) is None.
        """
        out: Dict[str, Any] = {"frames": self.frames}
        tables = [("dice", self._dice), ("iou", self._iou)]
        if self.with_hd95:
            tables.append(("hd95", self._hd95))
        per_class: Dict[str, Dict[str, Optional[float]]] = {name: {} for name in self.classes[1:]}
        for key, rows in tables:
            stacked = np.stack(rows) if rows else np.zeros((0, self.num_classes - 1))
            out[key] = _nanmean(list(stacked.ravel()))
            for i, name in enumerate(self.classes[1:]):
                per_class[name][key] = _nanmean(list(stacked[:, i]))
        out["per_class"] = per_class
        out["pixel_agreement"] = _nanmean(self._agree)
        if self._logit_mean:
            out["logit_error"] = {"mean_abs": _nanmean(self._logit_mean), "max_abs": self._logit_max}
        return out
