"""The accuracy gate: INT8 against FP32 on held-out frames, with layer fallback when INT8 hurts.

Both models run through the one runner layer (``open_runner("onnxrt", bundle)``) and are scored by the one
evaluation path, :mod:`jetseg.evaluate`, exactly as ``jetseg bench`` scores them:

- always against the FP32 masks: Dice, IoU and pixel agreement of INT8 with FP32, and the logit error;
- also against the labels when every held-out frame has one: FP32's and INT8's Dice;
- the *Dice drop* is the worst of both bases (:func:`~jetseg.evaluate.dice_drop`), so an INT8
  model that disagrees with FP32 does not pass because both are equally far from the labels; the pixel
  disagreement with FP32 must not exceed the threshold either.

``check`` frames (the first :data:`~jetseg.evaluate.BENCH_FRAMES` frames of the scans, what ``jetseg
bench`` reads by default) are scored too, and the gate passes only when both sets pass: if ``jetseg
calibrate --gate-dice D`` passes on scans S, ``jetseg bench --max-dice-drop D`` on S passes.

When the gate fails, :func:`rank_layers` measures each quantizable layer's own damage (the model with
*only that layer* quantized, its mean |logit error| against FP32) and the fallback keeps the worst layers
in float, one more per round, until the gate passes or ``max_fallback`` is reached.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetseg import evaluate
from jetseg.bundle import Bundle, BundleLike, staged_bundle
from jetseg.optional import require

log = logging.getLogger("jetseg.calibration")

#: Held-out frames used per layer by the sensitivity ranking (a cheap subset).
RANK_FRAMES = 8


def run_model(bundle: BundleLike, inputs: Sequence[np.ndarray], desc: str = "",
              progress: bool = False) -> evaluate.Outputs:
    """Outputs and masks of ``bundle`` for each preprocessed input, through the onnxrt runner."""
    from jetseg.jetson.runners import open_runner

    tqdm = require("tqdm", "progress bars").tqdm
    with open_runner("onnxrt", bundle) as runner:
        with tqdm(total=len(inputs), desc=desc, unit="frame", leave=False, disable=None if progress else True) as bar:
            return evaluate.run_inputs(runner.spec, runner.infer, inputs, lambda: bar.update(1))


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def compare(fp32: evaluate.Outputs, int8: evaluate.Outputs,
            labels: Optional[Sequence[Optional[np.ndarray]]] = None) -> Dict[str, Any]:
    """Scores of INT8 outputs against FP32 outputs (and labels): see the module docstring."""
    scores = evaluate.score(int8, fp32, labels)
    drop = evaluate.dice_drop(scores)
    result: Dict[str, Any] = {"frames": scores["frames"], "int8_vs_fp32": scores["vs_reference"],
                              "bases": ["fp32"] + (["labels"] if scores["reference_vs_labels"] else [])}
    if scores["reference_vs_labels"]:
        result["fp32_vs_labels"] = scores["reference_vs_labels"]
        result["int8_vs_labels"] = scores["vs_labels"]
    result["dice_drop"] = float(drop["dice_drop"])
    result["dice_drop_basis"] = "fp32" if drop["dice_drop_basis"] == "reference" else "labels"
    result["drop_vs_fp32"] = drop["drop_vs_reference"]
    result["drop_vs_labels"] = drop["drop_vs_labels"]
    result["pixel_agreement"] = drop["pixel_agreement"]
    result["logit_error"] = result["int8_vs_fp32"].get("logit_error")
    return rounded(result)


def verdict(result: Dict[str, Any], threshold: float) -> bool:
    """Pass when the Dice drop and the pixel disagreement with FP32 are both within ``threshold``."""
    return bool(result["dice_drop"] <= threshold and 1.0 - float(result["pixel_agreement"]) <= threshold)


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
                 threshold: float, work_dir: Path, progress: bool = True,
                 check_inputs: Sequence[np.ndarray] = (),
                 check_labels: Sequence[Optional[np.ndarray]] = ()) -> None:
        self.fp32 = fp32
        self.spec = fp32.spec
        self.inputs = list(inputs)
        self.labels = list(labels)
        self.check_inputs = list(check_inputs)
        self.check_labels = list(check_labels)
        self.threshold = float(threshold)
        self.work_dir = Path(work_dir)
        self.progress = progress
        self.reference = run_model(fp32, self.inputs, "gating (FP32)", progress)
        self.check_reference = run_model(fp32, self.check_inputs, "gating (FP32)", progress)
        self._staged = 0

    def score(self, model_path: Path) -> Dict[str, Any]:
        """Gate result for one candidate model: :func:`compare` on the held-out frames plus ``passed``,
        ``threshold`` and ``bench_frames`` (the same on the check frames)."""
        self._staged += 1
        with staged_bundle(model_path, self.spec, precision="int8", parent=self.work_dir,
                           prefix="candidate%d-" % self._staged) as bundle:
            int8 = run_model(bundle, self.inputs, "gating (INT8)", self.progress)
            checked = run_model(bundle, self.check_inputs, "gating (INT8)", self.progress) if self.check_inputs \
                else None
        result = self.compare(self.reference, int8, self.labels)
        result["threshold"] = self.threshold
        result["passed"] = self.verdict(result)
        if checked is not None:
            check = self.compare(self.check_reference, checked, self.check_labels)
            check["passed"] = self.verdict(check)
            result["bench_frames"] = check
            result["passed"] = result["passed"] and check["passed"]
        return result

    def compare(self, reference: evaluate.Outputs, candidate: evaluate.Outputs,
                labels: Sequence[Optional[np.ndarray]]) -> Dict[str, Any]:
        """The task's scores of ``candidate`` against ``reference`` (and labels): :func:`compare`."""
        return compare(reference, candidate, labels)

    def verdict(self, result: Dict[str, Any]) -> bool:
        """Whether one :meth:`compare` result passes: :func:`verdict`."""
        return verdict(result, self.threshold)

    def describe(self, result: Dict[str, Any]) -> str:
        """The result's numbers in one phrase, for the log and the failure message."""
        return "mean Dice drop %.4f (basis %s; pixel agreement with FP32 %.4f)" % (
            result["dice_drop"], result["dice_drop_basis"], result["pixel_agreement"])

    def limits(self) -> str:
        """The thresholds as the command line gives them."""
        return "--gate-dice %g" % self.threshold

    def failure(self, result: Dict[str, Any]) -> Tuple[str, str]:
        """Why ``result`` failed, and the limit to loosen: the two halves of the gate's error message."""
        return "%s > %s" % (self.describe(result), self.limits()), "a larger --gate-dice"

    def record(self, result: Dict[str, Any]) -> Dict[str, Any]:
        """The headline numbers calibration.json's ``gate`` keeps beside the full result."""
        return {"threshold": self.threshold, "int8_vs_fp32": {"dice": result["int8_vs_fp32"]["dice"],
                                                              "pixel_agreement": result["pixel_agreement"]}}

    def layer_error(self, model_path: Path, frames: int = RANK_FRAMES) -> float:
        """Mean |logit difference| to FP32 on the first ``frames`` held-out frames."""
        self._staged += 1
        with staged_bundle(model_path, self.spec, precision="int8", parent=self.work_dir,
                           prefix="probe%d-" % self._staged) as bundle:
            outs = run_model(bundle, self.inputs[:frames])
        return float(np.mean([np.abs(a - b).mean() for a, b in zip(outs.outputs, self.reference.outputs[:frames])]))


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
