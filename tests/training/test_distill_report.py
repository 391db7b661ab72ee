"""distill's report scores the student like the calibration gate and the bench (jetseg/evaluate.py), with the
numbers the per-frame mean Dice of jetseg.scores gives."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.bundle import Bundle
from jetseg.scores import mean_dice
from tests.fixtures.bundles import threshold_bundle

pytest.importorskip("onnxruntime")


def test_student_report_uses_the_one_evaluation_path_and_keeps_the_numbers(make_teacher, tmp_path):
    from jetseg.training.data import Dataset
    from jetseg.training.distill import DistillConfig, held_out
    from jetseg.training.distill_report import evaluate_student
    from jetseg.training.train import run_held_out

    teacher = Bundle(make_teacher())
    student = Bundle(threshold_bundle(tmp_path / "student", size=32, threshold=0.35, roi=teacher.spec.input.roi))
    rng = np.random.default_rng(0)
    x = rng.random((6, 1, 32, 32)).astype(np.float32)
    x[1] = 0.0  # a frame where neither finds anything (no Dice defined there)
    y = (x[:, 0] > 0.3).astype(np.uint8)
    y[2] = 0  # a label without the structure
    data = Dataset(x=x, y=y, uri="test://frames", sha256="0" * 64, read=6)
    report = held_out(teacher, data, DistillConfig(teacher=str(teacher.path), scans="test://"), "teacher")

    metrics = evaluate_student(student.model_path.read_bytes(), student.spec, b"", {}, teacher, report)

    masks = np.stack(run_held_out(student, data).masks)
    assert metrics["frames"] == 6 and metrics["dice_vs_teacher"] < 1.0
    assert metrics["dice_vs_teacher"] == round(mean_dice(masks, report.teacher_masks, 2), 4)
    assert metrics["dice_vs_labels"] == round(mean_dice(masks, y, 2), 4)
    assert metrics["teacher_dice_vs_labels"] == round(mean_dice(report.teacher_masks, y, 2), 4)
    unlabelled = held_out(teacher, Dataset(x=x, y=None, uri="u", sha256="0" * 64, read=6),
                          DistillConfig(teacher=str(teacher.path), scans="test://"), "teacher")
    none = evaluate_student(student.model_path.read_bytes(), student.spec, b"", {}, teacher, unlabelled)
    assert none["dice_vs_teacher"] == metrics["dice_vs_teacher"]
    assert none["dice_vs_labels"] is None and none["teacher_dice_vs_labels"] is None
