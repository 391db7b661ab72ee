"""The accuracy gate: INT8 against FP32 on held-out frames, with layer fallback when INT8 hurts.

Both models run through the one runner layer (``open_runner("onnxrt", bundle)``) on the same preprocessed
held-out frames. Scores come from :mod:`jetseg.scores` (the project's one Dice/IoU):

- against the labels when every held-out frame has one: mean foreground Dice of FP32 and of INT8; the
  *Dice drop* is FP32's minus INT8's;
- otherwise against the FP32 masks: the drop is ``1 - Dice(INT8 mask, FP32 mask)``;
- always: per-class Dice and IoU, pixel agreement of INT8 with FP32, and the logit error (mean/max |diff|).

A mean Dice that is undefined (no structure in either mask anywhere) counts as 1.0: nothing to find and
nothing invented.

When the drop exceeds the threshold, :func:`rank_layers` measures each quantizable layer's own damage
(the model with *only that layer* quantized, its mean |logit error| against FP32) and the fallback keeps the
worst layers in float, one more per round, until the gate passes or ``max_fallback`` is reached.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from jetseg.bundle import Bundle, BundleLike, save_bundle
from jetseg.optional import require
from jetseg.spec import Spec

log = logging.getLogger("jetseg.calibration")

#: Held-out frames used per layer by the sensitivity ranking (a cheap subset).
RANK_FRAMES = 8


def run_model(bundle: BundleLike, inputs: Sequence[np.ndarray], desc: str = "", progress: bool = False) -> List[np.ndarray]:
    """Logits ``(1, K, H, W)`` of ``bundle`` for each preprocessed input, through the onnxrt runner."""
    from jetseg.jetson.runners import open_runner

    tqdm = require("tqdm", "progress bars").tqdm
    with open_runner("onnxrt", bundle) as runner:
        return [np.asarray(runner.infer(x), dtype=np.float32)
                for x in tqdm(inputs, desc=desc, unit="frame", leave=False, disable=None if progress else True)]


def stage(model_path: Path, spec: Spec, directory: Path, name: str) -> Bundle:
    """A throw-away bundle around a candidate model, so that it runs through the runner layer like any other."""
    return save_bundle(Path(directory) / name, model_path, spec, precision="int8", overwrite=True)


def _dice_or_one(summary: Optional[Dict[str, Any]]) -> float:
    value = None if summary is None else summary.get("dice")
    return 1.0 if value is None else float(value)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def compare(spec: Spec, fp32: Sequence[np.ndarray], int8: Sequence[np.ndarray],
            labels: Optional[Sequence[Optional[np.ndarray]]] = None) -> Dict[str, Any]:
    """Scores of INT8 outputs against FP32 outputs (and labels): see the module docstring."""
    from jetseg import scores

    agreement = scores.SegmentationScores(spec.classes, hd95=False)
    fp32_vs_label = scores.SegmentationScores(spec.classes, hd95=False)
    int8_vs_label = scores.SegmentationScores(spec.classes, hd95=False)
    use_labels = labels is not None and len(labels) == len(fp32) and all(lab is not None for lab in labels)
    for i, (ref_out, out) in enumerate(zip(fp32, int8)):
        ref_mask, mask = spec.decode(ref_out)[0], spec.decode(out)[0]
        agreement.add(mask, ref_mask, out, ref_out)
        if use_labels:
            label = np.asarray(labels[i])  # type: ignore[index]
            fp32_vs_label.add(ref_mask, label)
            int8_vs_label.add(mask, label)
    result: Dict[str, Any] = {"frames": len(fp32), "reference": "labels" if use_labels else "fp32",
                              "int8_vs_fp32": agreement.summary()}
    if use_labels:
        result["fp32_vs_labels"] = fp32_vs_label.summary()
        result["int8_vs_labels"] = int8_vs_label.summary()
        drop = _dice_or_one(result["fp32_vs_labels"]) - _dice_or_one(result["int8_vs_labels"])
    else:
        drop = 1.0 - _dice_or_one(result["int8_vs_fp32"])
    result["dice_drop"] = float(drop)
    result["pixel_agreement"] = result["int8_vs_fp32"]["pixel_agreement"]
    result["logit_error"] = result["int8_vs_fp32"].get("logit_error")
    return _rounded(result)


class Gate:
    """Scores candidate INT8 models against the FP32 bundle on the held-out frames.

    Args:
        fp32: the FP32 bundle (the reference).
        inputs: held-out preprocessed frames ``(1, C, H, W) float32``.
        labels: their preprocessed labels (or None per frame).
        threshold: the largest allowed mean Dice drop.
        work_dir: where candidate bundles are staged.
    """

    def __init__(self, fp32: Bundle, inputs: Sequence[np.ndarray], labels: Sequence[Optional[np.ndarray]],
                 threshold: float, work_dir: Path, progress: bool = True) -> None:
        self.fp32 = fp32
        self.spec = fp32.spec
        self.inputs = list(inputs)
        self.labels = list(labels)
        self.threshold = float(threshold)
        self.work_dir = Path(work_dir)
        self.progress = progress
        self.reference = run_model(fp32, self.inputs, "gating (FP32)", progress)
        self._staged = 0

    def score(self, model_path: Path) -> Dict[str, Any]:
        """Gate result for one candidate model: :func:`compare` plus ``passed`` and ``threshold``."""
        self._staged += 1
        bundle = stage(model_path, self.spec, self.work_dir, "candidate%d" % self._staged)
        result = compare(self.spec, self.reference, run_model(bundle, self.inputs, "gating (INT8)", self.progress),
                         self.labels)
        result["threshold"] = self.threshold
        result["passed"] = bool(result["dice_drop"] <= self.threshold)
        return result

    def layer_error(self, model_path: Path, frames: int = RANK_FRAMES) -> float:
        """Mean |logit difference| to FP32 on the first ``frames`` held-out frames."""
        self._staged += 1
        bundle = stage(model_path, self.spec, self.work_dir, "probe%d" % self._staged)
        outs = run_model(bundle, self.inputs[:frames])
        return float(np.mean([np.abs(a - b).mean() for a, b in zip(outs, self.reference[:frames])]))


def rank_layers(gate: Gate, candidates: Sequence[str], quantize_only: Callable[[str, Path], None],
                progress: bool = True) -> List[Dict[str, Any]]:
    """Each candidate layer's own damage, worst first: ``[{"layer": name, "logit_error": e}, ...]``.

    ``quantize_only(layer, path)`` writes a model in which only ``layer`` is quantized.
    """
    tqdm = require("tqdm", "progress bars").tqdm
    out = []
    with tempfile.TemporaryDirectory(dir=str(gate.work_dir)) as tmp:
        for name in tqdm(list(candidates), desc="ranking layers", unit="layer", leave=False,
                         disable=None if progress else True):
            path = Path(tmp) / "only.onnx"
            quantize_only(name, path)
            out.append({"layer": name, "logit_error": round(gate.layer_error(path), 6)})
    out.sort(key=lambda item: -item["logit_error"])
    return out
