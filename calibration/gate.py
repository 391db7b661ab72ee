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
*only that layer* quantized, its mean |logit error| against FP32) and the fallback (:func:`fall_back`) keeps
the worst layers in float, one more per round, until the gate passes or ``max_fallback`` is reached.

A candidate is a Q/DQ ONNX (run by the onnxrt runner) or an OpenVINO INT8 IR (``.xml`` with its ``.bin``:
staged next to the FP32 ONNX and run by the openvino runner, which prefers it): both meet the same gate.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from jetseg import evaluate
from jetseg.bundle import OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE, Bundle, BundleLike, staged_bundle
from jetseg.optional import require

log = logging.getLogger("jetseg.calibration")

#: Held-out frames used per layer by the sensitivity ranking (a cheap subset).
RANK_FRAMES = 8


def run_model(bundle: BundleLike, inputs: Sequence[np.ndarray], desc: str = "",
              progress: bool = False, backend: str = "onnxrt") -> evaluate.Outputs:
    """Outputs and masks of ``bundle`` for each preprocessed input, through the ``backend`` runner."""
    from jetseg.jetson.runners import open_runner

    tqdm = require("tqdm", "progress bars").tqdm
    with open_runner(backend, bundle) as runner:
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

    @contextlib.contextmanager
    def _staged_candidate(self, model_path: Path, prefix: str) -> Iterator[Tuple[Bundle, str]]:
        """The candidate as a throw-away INT8 bundle, and the backend that runs it: a Q/DQ ONNX through onnxrt;
        an OpenVINO IR (``.xml`` + ``.bin``) next to the FP32 ONNX through openvino, which prefers the IR."""
        self._staged += 1
        model_path = Path(model_path)
        extra: Dict[str, Any]
        if model_path.suffix == ".xml":
            extra = {OPENVINO_MODEL_FILE: model_path, OPENVINO_WEIGHTS_FILE: model_path.with_suffix(".bin")}
            model, backend = self.fp32.model_path, "openvino"
        else:
            extra, model, backend = {}, model_path, "onnxrt"
        with staged_bundle(model, self.spec, precision="int8", extra_files=extra, parent=self.work_dir,
                           prefix="%s%d-" % (prefix, self._staged)) as bundle:
            yield bundle, backend

    def score(self, model_path: Path) -> Dict[str, Any]:
        """Gate result for one candidate model (a Q/DQ ONNX or an OpenVINO IR): :func:`compare` on the held-out
        frames plus ``passed``, ``threshold`` and ``bench_frames`` (the same on the check frames)."""
        with self._staged_candidate(model_path, "candidate") as (bundle, backend):
            int8 = run_model(bundle, self.inputs, "gating (INT8)", self.progress, backend)
            checked = run_model(bundle, self.check_inputs, "gating (INT8)", self.progress, backend) \
                if self.check_inputs else None
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
        with self._staged_candidate(model_path, "probe") as (bundle, backend):
            outs = run_model(bundle, self.inputs[:frames], backend=backend)
        return float(np.mean([np.abs(a - b).mean() for a, b in zip(outs.outputs, self.reference.outputs[:frames])]))


def rank_layers(gate: Gate, candidates: Sequence[str], quantize_only: Callable[[str, Path], Any],
                progress: bool = True, suffix: str = ".onnx") -> List[Dict[str, Any]]:
    """Each candidate layer's own damage, worst first: ``[{"layer": name, "logit_error": e}, ...]``.

    ``quantize_only(layer, path)`` writes a model in which only ``layer`` is quantized to ``path`` (named
    ``only<suffix>``: ``.onnx`` for a Q/DQ model, ``.xml`` for an OpenVINO IR).
    """
    tqdm = require("tqdm", "progress bars").tqdm
    out = []
    with tempfile.TemporaryDirectory(dir=str(gate.work_dir)) as tmp:
        for name in tqdm(list(candidates), desc="ranking layers", unit="layer", leave=False,
                         disable=None if progress else True):
            path = Path(tmp) / ("only" + suffix)
            quantize_only(name, path)
            out.append({"layer": name, "logit_error": round(gate.layer_error(path), 6)})
    out.sort(key=lambda item: -item["logit_error"])
    return out


@dataclass
class Fallback:
    """What :func:`fall_back` did: every attempt (the last is the accepted or final one), the layers kept in
    float, and the sensitivity ranking (None when the first attempt passed)."""

    history: List[Dict[str, Any]]
    exclude: List[str]
    ranking: Optional[List[Dict[str, Any]]]

    @property
    def final(self) -> Dict[str, Any]:
        return self.history[-1]


def fall_back(attempt: Callable[[List[str]], Dict[str, Any]], rank: Callable[[], List[Dict[str, Any]]],
              max_fallback: int) -> Fallback:
    """Quantize with no layer in float, then keep the most harmful layer in float, one more per round, until
    the gate passes or ``max_fallback`` layers are in float.

    Args:
        attempt: ``attempt(exclude)`` quantizes with the layers ``exclude`` kept in float and returns the gate
            result (:meth:`Gate.score`).
        rank: the layers, worst first (:func:`rank_layers`); called once, on the first failure.
        max_fallback: the most layers kept in float.
    """
    exclude: List[str] = []
    history = [dict(attempt(exclude), float_layers=[])]
    ranking: Optional[List[Dict[str, Any]]] = None
    while not history[-1]["passed"] and len(exclude) < max_fallback:
        if ranking is None:
            ranking = rank()
        remaining = [r["layer"] for r in ranking if r["layer"] not in exclude]
        if not remaining:
            break
        exclude.append(remaining[0])
        history.append(dict(attempt(exclude), float_layers=list(exclude)))
    return Fallback(history, exclude, ranking)
