"""Accuracy of one runner against the FP32 reference and against ground-truth labels, on the same frames.

Every model sees the frames through its own bundle's :meth:`~jetseg.spec.Spec.preprocess`; masks come
from :meth:`~jetseg.spec.Spec.decode`. Masks are compared at the candidate's model resolution. When the
reference's spec has another input size or ROI, its mask is mapped back onto the frame and cropped and
resized (nearest) like the candidate's input; labels (full-frame ``HxW``) go through
:meth:`~jetseg.spec.Spec.preprocess_mask`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from jetseg.scores import SegmentationScores
from jetseg.spec import Spec


@dataclass
class Outputs:
    """What a model produced for a list of frames: raw outputs ``(1, K, h, w)`` and masks ``(h, w)``."""

    spec: Spec
    outputs: List[np.ndarray]
    masks: List[np.ndarray]


def same_geometry(a: Spec, b: Spec) -> bool:
    """True when two specs turn a frame into masks of the same pixels (size and ROI)."""
    return tuple(a.input.size) == tuple(b.input.size) and a.input.roi == b.input.roi


def run_frames(spec: Spec, infer: Callable[[np.ndarray], np.ndarray], frames: Sequence[Any],
               progress: Optional[Callable[[], None]] = None) -> Outputs:
    """Run ``infer`` (one preprocessed batch of 1 -> raw output) on every frame."""
    outputs, masks = [], []
    for frame in frames:
        out = np.asarray(infer(spec.preprocess(frame.image)))
        outputs.append(out)
        masks.append(spec.decode(out)[0])
        if progress is not None:
            progress()
    return Outputs(spec=spec, outputs=outputs, masks=masks)


def evaluate(candidate: Outputs, reference: Outputs, frames: Sequence[Any], hd95: bool = True) -> Dict[str, Any]:
    """Scores of ``candidate`` against ``reference`` (always) and against labels (frames that have one).

    Returns ``{"vs_reference": summary, "vs_labels": summary or None}`` (see
    :meth:`~jetseg.scores.SegmentationScores.summary`).
    """
    spec = candidate.spec
    vs_ref = SegmentationScores(spec.classes, hd95=hd95)
    vs_labels = SegmentationScores(spec.classes, hd95=hd95)
    aligned = same_geometry(spec, reference.spec)
    for i, frame in enumerate(frames):
        ref_mask = reference.masks[i]
        if not aligned:
            ref_mask = spec.preprocess_mask(reference.spec.mask_to_frame(ref_mask, frame.image.shape))
        comparable = aligned and candidate.outputs[i].shape == reference.outputs[i].shape
        vs_ref.add(candidate.masks[i], ref_mask,
                   output=candidate.outputs[i] if comparable else None,
                   ref_output=reference.outputs[i] if comparable else None)
        if frame.label is not None:
            vs_labels.add(candidate.masks[i], spec.preprocess_mask(frame.label))
    return {"vs_reference": vs_ref.summary(), "vs_labels": vs_labels.summary() if vs_labels.frames else None}


def dice_drop(row: Dict[str, Any], reference: Dict[str, Any]) -> Dict[str, Any]:
    """The Dice drop of a row relative to the FP32 reference, against the best truth available.

    With labels: reference Dice vs labels minus the row's Dice vs labels (positive = worse than FP32).
    Without labels the reference is the truth: ``1 - Dice vs reference``.
    """
    labels, ref_labels = row.get("vs_labels"), reference.get("vs_labels")
    if labels and ref_labels and labels.get("dice") is not None and ref_labels.get("dice") is not None:
        return {"dice_drop": ref_labels["dice"] - labels["dice"], "dice_drop_basis": "labels"}
    dice = row["vs_reference"].get("dice")
    return {"dice_drop": None if dice is None else 1.0 - dice, "dice_drop_basis": "reference"}
