"""spec.task: segmentation (the default, read and written as before), enhancement and registration."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.errors import SpecError
from jetseg.spec import Spec
from jetseg.tasks import enhanced_images
from tests.fixtures.specs import enhancement_spec, registration_spec, tiny_spec


def test_segmentation_is_the_default_and_writes_no_task_section():
    spec = tiny_spec()
    assert spec.task == "segmentation"
    data = spec.to_dict()
    assert "enhancement" not in data and "registration" not in data
    assert Spec.from_dict(data) == spec


def test_enhancement_spec_fills_defaults_and_round_trips(tmp_path):
    spec = Spec.from_dict({"task": "enhancement", "output": {"name": "enhanced"}})
    assert spec.enhancement is not None and spec.enhancement.range == [0.0, 1.0]
    assert spec.output_shape == (1, 1, 128, 128)
    spec.save(tmp_path / "spec.yaml")
    assert Spec.load(tmp_path / "spec.yaml") == spec
    assert enhancement_spec(channels=3).output_shape == (1, 3, 32, 32)


def test_registration_spec_round_trips_with_its_field(tmp_path):
    spec = registration_spec(units="normalized")
    assert spec.output_shape == (1, 2, 32, 32)
    spec.save(tmp_path / "spec.yaml")
    again = Spec.load(tmp_path / "spec.yaml")
    assert again == spec and again.registration is not None
    assert (again.registration.fixed_input, again.registration.units, again.registration.warped_output) == \
        ("fixed", "normalized", "warped")


@pytest.mark.parametrize("data, message", [
    ({"task": "denoise"}, r"'task' is 'denoise'; expected one of segmentation, enhancement, registration"),
    ({"enhancement": {"channels": 1}}, r"'enhancement' .*; expected no enhancement section for task segmentation"),
    ({"task": "enhancement", "enhancement": {"range": [1.0, 0.0]}},
     r"'enhancement.range' is \[1.0, 0.0\]; expected \[low, high\]"),
    ({"task": "enhancement", "enhancement": {"channels": 2}}, r"'enhancement.channels' is 2; expected 1 or 3"),
    ({"task": "enhancement", "enhancement": {"chanels": 1}}, r"unknown spec field 'enhancement.chanels'"),
    ({"task": "registration", "registration": {"units": "mm"}},
     r"'registration.units' is 'mm'; expected pixels or normalized"),
    ({"task": "registration", "input": {"name": "a"}, "registration": {"fixed_input": "a"}},
     r"'registration.fixed_input' is 'a'; expected the fixed image's input name, other than input.name"),
    ({"task": "registration", "output": {"name": "flow"}, "registration": {"warped_output": "flow"}},
     r"'registration.warped_output' is 'flow'"),
])
def test_invalid_task_sections_name_the_field(data, message):
    with pytest.raises(SpecError, match=message):
        Spec.from_dict(data)


def test_masks_are_for_segmentation_only():
    with pytest.raises(SpecError, match="decoding to masks supports task segmentation; this model's spec.task "
                                        "is enhancement"):
        enhancement_spec().decode(np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(SpecError, match="spec.task is registration"):
        registration_spec().probabilities(np.zeros((1, 2, 32, 32), np.float32))


def test_enhanced_clips_to_the_range_and_rescales():
    spec = enhancement_spec(value_range=(-1.0, 1.0))
    out = enhanced_images(np.array([[[[-2.0, -1.0, 0.0, 1.0, 3.0]]]], np.float32), spec.enhancement)
    np.testing.assert_allclose(out, [[[[0.0, 0.0, 0.5, 1.0, 1.0]]]])
    assert out.dtype == np.float32
    with pytest.raises(SpecError, match=r"model output has shape \(1, 3, 4, 4\); spec expects \(N, 1, H, W\)"):
        enhanced_images(np.zeros((1, 3, 4, 4), np.float32), spec.enhancement)
    with pytest.raises(SpecError, match="reading enhanced images supports task enhancement"):
        tiny_spec().require_task("reading enhanced images", "enhancement")


def test_clean_target_crops_converts_and_scales_like_the_input():
    pytest.importorskip("cv2")
    from jetseg.tasks import clean_target

    grey = Spec.from_dict({"name": "d", "task": "enhancement", "output": {"name": "enhanced"},
                           "input": {"name": "input", "size": [2, 2], "channels": 1, "color_order": "gray"}})
    clean = np.zeros((4, 6, 3), np.uint8)
    clean[:, 2:4] = 255
    target = clean_target(grey, clean, (2, 0, 2, 4))
    assert target.shape == (1, 2, 2) and target.dtype == np.float32 and np.allclose(target, 1.0)
    assert np.allclose(clean_target(grey, clean.astype(np.uint16) * 257, (0, 0, 2, 4)), 0.0)
    rgb = Spec.from_dict({"name": "d", "task": "enhancement", "output": {"name": "enhanced"},
                          "enhancement": {"channels": 3},
                          "input": {"name": "input", "size": [2, 2], "channels": 3, "color_order": "rgb"}})
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    assert clean_target(rgb, bgr, (0, 0, 2, 2))[:, 0, 0].tolist() == [0.0, 0.0, 1.0]  # red, green, blue
    assert clean_target(rgb, bgr[..., 0], (0, 0, 2, 2)).shape == (3, 2, 2)  # a grey target for a colour model
