"""Accuracy metrics on hand-made masks with values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from jetseg.scores import (
    SegmentationScores,
    dice_per_class,
    hd95_per_class,
    iou_per_class,
    logit_error,
    mean_dice,
    pixel_agreement,
)


def _square(shape, top, left, size, value=1):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[top:top + size, left:left + size] = value
    return mask


def test_dice_and_iou_of_half_overlapping_squares():
    pred = _square((32, 32), 0, 0, 10)
    ref = _square((32, 32), 0, 5, 10)  # overlap 10x5 = 50 pixels, each square 100
    assert dice_per_class(pred, ref, 2)[0] == pytest.approx(0.5)
    assert iou_per_class(pred, ref, 2)[0] == pytest.approx(50 / 150)


def test_identical_masks_score_perfectly():
    mask = _square((20, 20), 3, 4, 8)
    assert dice_per_class(mask, mask, 2)[0] == 1.0
    assert iou_per_class(mask, mask, 2)[0] == 1.0
    assert hd95_per_class(mask, mask, 2)[0] == 0.0
    assert pixel_agreement(mask, mask) == 1.0


def test_class_absent_from_both_masks_is_left_out():
    pred = _square((16, 16), 0, 0, 4, value=1)
    ref = _square((16, 16), 0, 0, 4, value=1)
    dice = dice_per_class(pred, ref, 3)  # class 2 appears nowhere
    assert dice[0] == 1.0 and math.isnan(dice[1])
    assert mean_dice(pred, ref, 3) == 1.0
    empty = np.zeros((16, 16), np.uint8)
    assert mean_dice(empty, empty, 2) == 1.0


def test_hd95_single_pixels_is_their_distance():
    pred = np.zeros((20, 20), np.uint8)
    ref = np.zeros((20, 20), np.uint8)
    pred[0, 0] = 1
    ref[3, 4] = 1
    assert hd95_per_class(pred, ref, 2)[0] == pytest.approx(5.0, abs=1e-3)


def test_hd95_of_shifted_square_is_the_shift():
    # A 40x40 square moved 3 pixels right: the left/right edges (a quarter of each boundary) are 3 px off,
    # everything else closer, so the 95th percentile distance is 3 in both directions.
    pred = _square((64, 64), 10, 10, 40)
    ref = _square((64, 64), 10, 13, 40)
    assert hd95_per_class(pred, ref, 2)[0] == pytest.approx(3.0, abs=1e-3)


def test_hd95_missing_structure_costs_the_diagonal():
    pred = np.zeros((30, 40), np.uint8)
    ref = _square((30, 40), 5, 5, 5)
    assert hd95_per_class(pred, ref, 2)[0] == pytest.approx(50.0)


def test_pixel_agreement_and_logit_error():
    pred = np.zeros((10, 10), np.uint8)
    ref = pred.copy()
    ref[0, :5] = 1  # 5 of 100 pixels differ
    assert pixel_agreement(pred, ref) == pytest.approx(0.95)
    err = logit_error(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 1.0]))
    assert err["max_abs"] == pytest.approx(2.0)
    assert err["mean_abs"] == pytest.approx(2.5 / 3)


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="masks differ in shape"):
        dice_per_class(np.zeros((4, 4)), np.zeros((4, 5)), 2)


def test_scores_accumulate_per_frame_means():
    scores = SegmentationScores(["background", "a", "b"])
    pred = _square((32, 32), 0, 0, 10, value=1)
    ref = _square((32, 32), 0, 5, 10, value=1)
    scores.add(pred, ref)  # class a: Dice 0.5; class b absent
    both = _square((32, 32), 20, 20, 6, value=2)
    scores.add(both, both, output=np.zeros(4), ref_output=np.full(4, 0.5))  # class b: 1.0, class a absent
    summary = scores.summary()
    assert summary["frames"] == 2
    assert summary["per_class"]["a"]["dice"] == pytest.approx(0.5)
    assert summary["per_class"]["b"]["dice"] == pytest.approx(1.0)
    assert summary["dice"] == pytest.approx(0.75)
    assert summary["per_class"]["b"]["hd95"] == 0.0
    assert summary["logit_error"] == {"mean_abs": pytest.approx(0.5), "max_abs": pytest.approx(0.5)}
