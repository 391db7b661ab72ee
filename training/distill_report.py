"""What ``jetseg distill`` measures about a student: held-out Dice, size, MACs (the card: :mod:`.card`)."""
from __future__ import annotations

import os
from typing import Any, Dict

from jetseg.bundle import WEIGHTS_FILE, Bundle, staged_bundle
from jetseg.spec import Spec

#: The temporary folder a student is scored in (with the pid: jetseg distill removes its own on SIGTERM).
STAGING_PREFIX = "jetseg-distill-%d-"


def evaluate_student(onnx_bytes: bytes, spec: Spec, weights: bytes, provenance: Dict[str, Any], teacher: Bundle,
                     report: Any, backend: str = "onnxrt", threads: int = 0) -> Dict[str, Any]:
    """Held-out Dice of the exported student run through ``backend`` (``threads``: its inference threads, 0:
    jetseg's default): against the teacher, and the labels.

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
        student = run_held_out(student_bundle, data, backend, threads)
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
