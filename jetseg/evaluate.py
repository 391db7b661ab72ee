"""The one way to run a bundle on frames and score it: used by training, the calibration gate and the bench.

    outputs = run_inputs(runner.spec, runner.infer, inputs)          # preprocessed (1, C, H, W) float32
    outputs = run_frames(runner.spec, runner.infer, frames)          # Frames, through Spec.preprocess
    scores = score(candidate, reference, labels)                     # jetseg.scores, model resolution
    drop = dice_drop(scores)                                         # the number both gates compare

Masks come from :meth:`~jetseg.spec.Spec.decode` and are compared at the candidate's model resolution.
When the reference's spec has another input size or ROI, its mask is mapped back onto the frame and
cropped and resized (nearest) like the candidate's input; labels are full-frame ``HxW`` for
:func:`score_frames` (through :meth:`~jetseg.spec.Spec.preprocess_mask`) and model-size for :func:`score`.

**The Dice drop** of a candidate (INT8) against its reference (FP32) is the worst of two bases:

- ``reference``: ``1 - Dice(candidate masks, reference masks)``, always;
- ``labels``: ``Dice(reference, labels) - Dice(candidate, labels)``, when every frame has a label.

A mean Dice that is undefined (no foreground in either mask anywhere) counts as 1.0: nothing to find and
nothing invented. A candidate that disagrees with its reference therefore never passes because both are
equally far from the labels. ``jetseg calibrate --gate-dice D`` and ``jetseg bench --max-dice-drop D``
both compare this number with ``D``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetseg import flowscores
from jetseg.flowscores import FlowScores
from jetseg.imagescores import ImageScores
from jetseg.scores import SegmentationScores, mean_dice
from jetseg.spec import Spec
from jetseg.tasks import enhanced_images

#: Frames ``jetseg bench`` reads by default (``--frames``); the calibration gate also scores its final
#: model on the first this many frames of the scans, so that a passing gate implies a passing bench.
BENCH_FRAMES = 50

#: How far the synthetic deformations of :func:`deformed_pairs` move pixels (``smooth_field``'s amplitude, in
#: pixels at the model's input size): the registration pairs of the calibration gate and the bench.
PAIR_AMPLITUDE = 4.0
#: The first seed of those deformations for held-out frames: the gate's held-out and bench-frame pairs and the
#: bench's pairs are the same pairs of the same frames (calibration pairs use other seeds).
PAIR_SEED = 500

#: A runner's ``infer``: ``infer(batch)``, and for a registration model ``infer(moving, {fixed_input: fixed})``.
Infer = Callable[..., np.ndarray]


@dataclass
class Outputs:
    """What a model produced for a list of inputs: raw outputs ``(1, K, h, w)`` and masks ``(h, w)`` (segmentation
    only; empty for the other tasks)."""

    spec: Spec
    outputs: List[np.ndarray]
    masks: List[np.ndarray]


def same_geometry(a: Spec, b: Spec) -> bool:
    """True when two specs turn a frame into masks of the same pixels (size and ROI)."""
    return tuple(a.input.size) == tuple(b.input.size) and a.input.roi == b.input.roi


def run_inputs(spec: Spec, infer: Infer, inputs: Sequence[np.ndarray],
               progress: Optional[Callable[[], None]] = None) -> Outputs:
    """Run ``infer`` (a runner's ``infer``: one ``(1, C, H, W) float32`` batch -> raw output) on each input; for a
    registration model each input is a pair ``(moving, fixed)`` (:func:`deformed_pairs`) and the output its field."""
    outputs, masks = [], []
    for x in inputs:
        if spec.registration is not None:
            moving, fixed = x
            out = np.asarray(infer(np.asarray(moving, dtype=np.float32),
                                   {spec.registration.fixed_input: np.asarray(fixed, dtype=np.float32)}), np.float32)
        else:
            out = np.asarray(infer(np.asarray(x, dtype=np.float32)), dtype=np.float32)
        outputs.append(out)
        if spec.task == "segmentation":  # other tasks have no masks; their scores read the outputs
            masks.append(spec.decode(out)[0])
        if progress is not None:
            progress()
    return Outputs(spec=spec, outputs=outputs, masks=masks)


def run_frames(spec: Spec, infer: Infer, frames: Sequence[Any],
               progress: Optional[Callable[[], None]] = None) -> Outputs:
    """:func:`run_inputs` on Frames, each through ``spec.preprocess(frame.image)``."""
    return run_inputs(spec, infer, (spec.preprocess(frame.image) for frame in frames), progress)  # type: ignore[arg-type]


def score(candidate: Outputs, reference: Optional[Outputs] = None,
          labels: Optional[Sequence[Optional[np.ndarray]]] = None, hd95: bool = False,
          frame_shapes: Optional[Sequence[Sequence[int]]] = None) -> Dict[str, Any]:
    """Scores of ``candidate`` against ``reference`` masks and against model-size ``labels``.

    Returns ``{"frames", "vs_reference", "vs_labels", "reference_vs_labels"}``; each is a
    :meth:`~jetseg.scores.SegmentationScores.summary` or None (no reference; no labels on any frame).
    ``frame_shapes`` is needed only when the reference has another geometry (see the module docstring).
    """
    spec = candidate.spec
    n = len(candidate.masks)
    vs_ref = SegmentationScores(spec.classes, hd95=hd95)
    vs_labels = SegmentationScores(spec.classes, hd95=hd95)
    ref_vs_labels = SegmentationScores(spec.classes, hd95=hd95)
    aligned = reference is None or same_geometry(spec, reference.spec)
    for i in range(n):
        ref_mask: Optional[np.ndarray] = None
        if reference is not None:
            ref_mask = reference.masks[i]
            if not aligned:
                assert frame_shapes is not None, "a reference of another geometry needs the frame shapes"
                ref_mask = spec.preprocess_mask(reference.spec.mask_to_frame(ref_mask, frame_shapes[i]))
            comparable = aligned and candidate.outputs[i].shape == reference.outputs[i].shape
            vs_ref.add(candidate.masks[i], ref_mask, output=candidate.outputs[i] if comparable else None,
                       ref_output=reference.outputs[i] if comparable else None)
        label = labels[i] if labels is not None and i < len(labels) else None
        if label is not None:
            vs_labels.add(candidate.masks[i], label)
            if ref_mask is not None and aligned:
                ref_vs_labels.add(ref_mask, label)
    all_labelled = labels is not None and len(labels) == n and all(lab is not None for lab in labels)
    return {"frames": n, "vs_reference": vs_ref.summary() if reference is not None else None,
            "vs_labels": vs_labels.summary() if vs_labels.frames else None,
            "reference_vs_labels": ref_vs_labels.summary() if all_labelled and ref_vs_labels.frames else None}


def score_frames(candidate: Outputs, reference: Optional[Outputs], frames: Sequence[Any],
                 hd95: bool = True) -> Dict[str, Any]:
    """:func:`score` on Frames: full-frame labels (``frame.label``) go through ``Spec.preprocess_mask``."""
    spec = candidate.spec
    labels = [spec.preprocess_mask(f.label) if f.label is not None else None for f in frames]
    return score(candidate, reference, labels, hd95=hd95, frame_shapes=[f.image.shape for f in frames])


def dice_or_one(summary: Optional[Dict[str, Any]]) -> float:
    """A summary's mean Dice, 1.0 when undefined (no foreground in either mask anywhere)."""
    value = None if summary is None else summary.get("dice")
    return 1.0 if value is None else float(value)


def dice_drop(scores: Dict[str, Any]) -> Dict[str, Any]:
    """The Dice drop of :func:`score`'s result: the worst of its bases (see the module docstring).

    Returns ``{"dice_drop", "dice_drop_basis", "drop_vs_reference", "drop_vs_labels", "pixel_agreement"}``;
    ``dice_drop_basis`` names the basis that gave the drop (``reference`` or ``labels``).
    """
    vs_ref = scores.get("vs_reference")
    drops: Dict[str, float] = {}
    if vs_ref is not None:
        drops["reference"] = 1.0 - dice_or_one(vs_ref)
    if scores.get("reference_vs_labels") is not None and scores.get("vs_labels") is not None:
        drops["labels"] = dice_or_one(scores["reference_vs_labels"]) - dice_or_one(scores["vs_labels"])
    basis = max(drops, key=lambda k: drops[k]) if drops else None
    return {"dice_drop": drops[basis] if basis else None, "dice_drop_basis": basis,
            "drop_vs_reference": drops.get("reference"), "drop_vs_labels": drops.get("labels"),
            "pixel_agreement": vs_ref.get("pixel_agreement") if vs_ref else None}


def _image_scores(spec: Spec, outputs: Sequence[np.ndarray], refs: Sequence[np.ndarray],
                  enhanced_refs: bool) -> Dict[str, Any]:
    scores = ImageScores(data_range=1.0)
    assert spec.enhancement is not None, "an enhancement spec has its section (filled with defaults)"
    for out, ref in zip(outputs, refs):
        scores.add(enhanced_images(out, spec.enhancement)[0],
                   enhanced_images(ref, spec.enhancement)[0] if enhanced_refs else ref)
    return scores.summary()


def compare_images(reference: Outputs, candidate: Outputs,
                   targets: Optional[Sequence[Optional[np.ndarray]]] = None) -> Dict[str, Any]:
    """Scores of an enhancement model's ``candidate`` images against ``reference`` images (and clean
    ``targets``, ``(C, h, w)`` in [0, 1]): ``frames``, ``bases``, ``int8_vs_fp32``, and with a target for
    every frame ``fp32_vs_targets``, ``int8_vs_targets``; ``psnr_drop`` and ``ssim_drop`` (None without
    targets), ``ssim`` and ``psnr`` vs FP32 (docs/tasks.md). Used by the calibration gate and the bench."""
    spec = candidate.spec
    vs_fp32 = _image_scores(spec, candidate.outputs, reference.outputs, True)
    result: Dict[str, Any] = {"frames": len(candidate.outputs), "int8_vs_fp32": vs_fp32, "bases": ["fp32"],
                              "ssim": vs_fp32["ssim"], "psnr": vs_fp32["psnr"], "psnr_drop": None, "ssim_drop": None}
    n = len(candidate.outputs)
    if targets is not None and len(targets) == n and n and all(t is not None for t in targets):
        fp32_t = _image_scores(spec, reference.outputs, targets, False)  # type: ignore[arg-type]
        int8_t = _image_scores(spec, candidate.outputs, targets, False)  # type: ignore[arg-type]
        result.update(bases=["fp32", "targets"], fp32_vs_targets=fp32_t, int8_vs_targets=int8_t,
                      psnr_drop=fp32_t["psnr"] - int8_t["psnr"], ssim_drop=fp32_t["ssim"] - int8_t["ssim"])
    return result


def deformed_pairs(inputs: Sequence[np.ndarray], first_seed: int = PAIR_SEED,
                   amplitude: float = PAIR_AMPLITUDE) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Registration pairs from preprocessed frames ``(1, C, H, W)``: pair ``i`` is the frame (moving) and the
    frame warped by :func:`~jetseg.flowscores.smooth_field` of seed ``first_seed + i`` (fixed), so the field
    that registers them is known. The calibration gate and the bench build their pairs here (docs/tasks.md)."""
    pairs = []
    for i, x in enumerate(inputs):
        moving = np.asarray(x, dtype=np.float32)
        flow = flowscores.smooth_field(first_seed + i, moving.shape[-2:], amplitude)
        pairs.append((moving, flowscores.warp(moving[0], flow)[None].astype(np.float32)))
    return pairs


def compare_fields(reference: Outputs, candidate: Outputs,
                   labels: Optional[Sequence[Optional[np.ndarray]]] = None) -> Dict[str, Any]:
    """Scores of a registration model's ``candidate`` fields against ``reference`` fields (both converted to
    pixels from ``registration.units``): ``frames``, ``epe_mean`` and ``epe_p95`` (pixels, all pixels of all
    pairs), ``folding`` and ``fp32_folding`` (mean folding fractions) and ``folding_rise``; with labels of the
    moving images (model size, None where a pair has none) the Dice of the labels warped by the candidate's
    field against those warped by the reference's (``warped_label_dice``, nearest; 1.0 where neither has a
    foreground) and ``dice_drop`` = 1 - that; None without labels. Used by the calibration gate and the bench."""
    spec = candidate.spec
    assert spec.registration is not None, "a registration spec has its section (filled with defaults)"
    units = spec.registration.units
    fields = FlowScores()
    warped_c, warped_r = [], []
    for i, (out, ref) in enumerate(zip(candidate.outputs, reference.outputs)):
        flow, ref_flow = flowscores.to_pixels(out, units), flowscores.to_pixels(ref, units)
        fields.add(flow, ref_flow)
        label = labels[i] if labels is not None and i < len(labels) else None
        if label is not None:
            warped_c.append(flowscores.warp(label, flow, "nearest"))
            warped_r.append(flowscores.warp(label, ref_flow, "nearest"))
    summary = fields.summary()
    result: Dict[str, Any] = {"frames": summary["frames"], "bases": ["fp32"], "epe_mean": summary["epe_mean"],
                              "epe_p95": summary["epe_p95"], "folding": summary["folding"],
                              "fp32_folding": summary["reference_folding"], "labelled_frames": len(warped_c),
                              "warped_label_dice": None, "dice_drop": None}
    if summary["frames"]:
        result["folding_rise"] = summary["folding"] - summary["reference_folding"]
    if warped_c:
        classes = max(2, int(max(int(w.max()) for w in warped_c + warped_r)) + 1)
        dice = mean_dice(np.stack(warped_c), np.stack(warped_r), classes)
        result.update(warped_label_dice=dice, dice_drop=1.0 - dice)
    return result
