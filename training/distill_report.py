"""What ``jetseg distill`` measures and writes about a student: held-out Dice, size, MACs, the model card."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from jetseg.bundle import WEIGHTS_FILE, Bundle, command_line, staged_bundle
from jetseg.spec import Spec

#: The temporary folder a student is scored in (with the pid: jetseg distill removes its own on SIGTERM).
STAGING_PREFIX = "jetseg-distill-%d-"


def evaluate_student(onnx_bytes: bytes, spec: Spec, weights: bytes, provenance: Dict[str, Any], teacher: Bundle,
                     report: Any, backend: str = "onnxrt") -> Dict[str, Any]:
    """Held-out Dice of the exported student run through ``backend``: against the teacher, and the labels.

    The student is staged and run as training stages and runs its model (:func:`jetseg.bundle.staged_bundle`,
    :func:`~jetseg.training.train.run_held_out`), and scored by the one evaluation path
    (:func:`jetseg.evaluate.score`, the Dice of the calibration gate and the bench). ``report`` is a
    :class:`~jetseg.training.distill.HeldOut` set: frames never used for training or for choosing the step.
    """
    from jetseg.evaluate import dice_or_one, score
    from jetseg.training.train import run_held_out

    data = report.data
    with staged_bundle(onnx_bytes, spec, extra_files={WEIGHTS_FILE: weights}, provenance=provenance,
                       prefix=STAGING_PREFIX % os.getpid()) as student_bundle:
        student = run_held_out(student_bundle, data, backend)
    scores = score(student, report.teacher, list(data.y) if data.y is not None else None)
    out: Dict[str, Any] = {
        "dice_vs_teacher": round(dice_or_one(scores["vs_reference"]), 4),
        "dice_vs_labels": None, "teacher_dice_vs_labels": None,
        "frames": int(len(student.masks)), "backend": backend, "data": data.uri,
        "resolution": "model input (%dx%d)" % tuple(spec.input.size),
    }
    if data.y is not None:
        out["dice_vs_labels"] = round(dice_or_one(scores["vs_labels"]), 4)
        out["teacher_dice_vs_labels"] = round(dice_or_one(scores["reference_vs_labels"]), 4)
    return out


def sizes(teacher: Bundle, student_onnx: bytes) -> Dict[str, Any]:
    """Bytes, parameters and MACs per frame of the teacher's and the student's ONNX models."""
    from jetseg.models.complexity import onnx_stats

    t = onnx_stats(teacher.model_path)
    s = onnx_stats(student_onnx)
    t_bytes = teacher.model_path.stat().st_size
    return {
        "teacher": {"bytes": int(t_bytes), "params": t["params"], "macs": t["macs"]},
        "student": {"bytes": len(student_onnx), "params": s["params"], "macs": s["macs"]},
        "bytes_ratio": round(len(student_onnx) / float(t_bytes), 4),
        "macs_ratio": round(s["macs"] / float(max(1, t["macs"])), 4),
    }


def _fmt(value: Optional[float]) -> str:
    return "n/a (no labels)" if value is None else "%.4f" % value


def model_card(spec: Spec, prov: Dict[str, Any], model: Any) -> bytes:
    """MODEL_CARD.md for a distilled bundle (all numbers come from this run)."""
    arch, d, m, size = prov["architecture"], prov["distillation"], prov["metrics"], prov["size"]
    data = prov["data"]
    params = sum(int(p.numel()) for p in model.parameters())
    command = command_line()
    lines = [
        "# %s" % spec.name, "",
        "A student distilled from the teacher bundle `%s` (model sha256 %s...). It keeps the teacher's spec "
        "(input, normalisation, ROI, classes, output kind). **Not for clinical use.**"
        % (prov["teacher"]["name"], prov["teacher"]["model_sha256"][:16]), "",
        "## Architecture", "",
        "- `%s`, %d parameters, kwargs `%s`" % (arch["name"], params, arch["kwargs"]),
        "- input `%s` %s float32 (NCHW), %s, mean %s, std %s, ROI %s" % (
            spec.input.name, list(spec.input_shape), spec.input.color_order, spec.input.mean, spec.input.std,
            spec.input.roi),
        "- output `%s` %s %s logits, classes %s" % (spec.output.name, list(spec.output_shape), spec.output.kind,
                                                   spec.classes),
        "- ONNX opset 17, static shape; ONNX Runtime vs PyTorch max |diff| %.2g" % prov["onnx_max_abs_diff_vs_torch"],
        "",
        "| model | ONNX bytes | parameters | MACs per frame |", "|---|---|---|---|",
        "| teacher | %d | %d | %.3g |" % (size["teacher"]["bytes"], size["teacher"]["params"], size["teacher"]["macs"]),
        "| student | %d (%.1f%%) | %d | %.3g (%.1f%%) |" % (
            size["student"]["bytes"], 100 * size["bytes_ratio"], size["student"]["params"], size["student"]["macs"],
            100 * size["macs_ratio"]), "",
        "## Data", "",
        "- training: `%s`, one frame in %d, %d frames (sha256 %s...), labels %s" % (
            data["train"]["uri"], data["train"]["every"], data["train"]["frames_used"], data["train"]["sha256"][:16],
            "used" if data["train"]["labels_used"] else "not used"),
        "- step selection: `%s`, %d frames" % (data["selection"]["uri"], data["selection"]["frames_used"]),
        "- report and gate: `%s`, %d frames, used for nothing else" % (data["report"]["uri"],
                                                                      data["report"]["frames_used"]),
        "",
        "## Distillation", "",
        "```", command, "```", "",
        "%d steps, batch %d, AdamW lr %g (one-cycle); loss: soft targets at temperature %g (%s) + %g x soft Dice "
        "vs the teacher%s; augmentation as in training; best step %d; %.0f s on this machine's CPU."
        % (d["steps"], d["batch"], d["lr"], d["temperature"],
           "KL" if spec.output.kind == "softmax" else "BCE", d["dice_weight"],
           " + %g x label loss" % d["label_weight"] if data["train"]["labels_used"] else "",
           prov["best_step"], prov["seconds"]), "",
        "## Held-out accuracy", "",
        "Mean per-frame Dice of the exported `model.onnx` through the `%s` runner on %d report frames, at the "
        "model's input resolution: **%.4f vs the teacher** (gate %.2f); vs the labels %s (teacher vs the labels "
        "%s)." % (m["backend"], m["frames"], m["dice_vs_teacher"], d["gate_dice"], _fmt(m["dice_vs_labels"]),
                  _fmt(m["teacher_dice_vs_labels"])), "",
        "## Limits", "",
        "- A student reproduces its teacher, errors included; it is no better than the teacher on the labels.",
        "- Not a medical device; not for diagnosis or any clinical use.", "",
    ]
    return "\n".join(lines).encode("utf-8")
