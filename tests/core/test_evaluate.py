"""The one evaluation path: run outputs, score against a reference and labels, the worst-basis Dice drop."""
from __future__ import annotations

import numpy as np

from jetseg import evaluate
from jetseg.spec import Spec


def _outputs(spec: Spec, masks):
    outs = [np.stack([1.0 - m, m.astype(np.float32)])[None].astype(np.float32) for m in masks]
    return evaluate.run_inputs(spec, lambda x: outs.pop(0), [np.zeros(spec.input_shape, np.float32)] * len(masks))


def test_disagreeing_with_fp32_fails_although_both_are_equally_far_from_the_labels():
    spec = Spec.from_dict({"input": {"size": [8, 8]}})
    label = np.zeros((8, 8), np.uint8)
    label[0:4, 0:4] = 1
    fp32 = np.zeros((8, 8), np.uint8)
    fp32[0:4, 2:6] = 1  # half right
    int8 = np.zeros((8, 8), np.uint8)
    int8[2:6, 0:4] = 1  # half right too, other half
    scores = evaluate.score(_outputs(spec, [int8]), _outputs(spec, [fp32]), [label])
    drop = evaluate.dice_drop(scores)
    assert drop["drop_vs_labels"] == 0.0  # both Dice 0.5 against the labels
    assert drop["dice_drop"] == drop["drop_vs_reference"] == 0.75 and drop["dice_drop_basis"] == "reference"


def test_undefined_dice_counts_as_agreement_and_labels_need_every_frame():
    spec = Spec.from_dict({"input": {"size": [8, 8]}})
    empty = np.zeros((8, 8), np.uint8)
    scores = evaluate.score(_outputs(spec, [empty, empty]), _outputs(spec, [empty, empty]), [empty, None])
    assert scores["reference_vs_labels"] is None and scores["vs_labels"]["frames"] == 1
    assert evaluate.dice_drop(scores) == {"dice_drop": 0.0, "dice_drop_basis": "reference", "drop_vs_reference": 0.0,
                                          "drop_vs_labels": None, "pixel_agreement": 1.0}
