"""Post-processing: decoding, temporal smoothing, small components, mapping to the frame, areas in mm^2."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.errors import JetsegError, SinkError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.postprocess import PostProcessor, class_pixels, remove_small_components
from jetseg.jetson.frames.result import Result
from jetseg.spec import Spec
from tests.fixtures.specs import tiny_spec


def logits_for(fg: np.ndarray, strength: float = 4.0) -> np.ndarray:
    """Softmax logits (1, 2, h, w): class 1 where ``fg`` is True, with margin ``strength``."""
    one = np.where(fg, strength, -strength).astype(np.float32)
    return np.stack([np.zeros_like(one), one])[None]


def test_decode_and_map_back_to_the_full_frame():
    spec = tiny_spec(size=8)
    fg = np.zeros((8, 8), bool)
    fg[2:6, 2:6] = True
    post = PostProcessor(spec)
    mask, areas_px, areas_mm2 = post(logits_for(fg), (100, 200), roi=(40, 20, 80, 40))
    assert mask.shape == (100, 200) and mask.dtype == np.uint8
    ys, xs = np.nonzero(mask)
    # the 4x4 block of an 8x8 model output over an 80x40 ROI at (40, 20): 40 px wide, 20 px high
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (40 + 20, 40 + 59, 20 + 10, 20 + 29)
    assert areas_px == {"lesion": 40 * 20} and areas_mm2 is None
    assert mask[:20].sum() == 0 and mask[:, :40].sum() == 0  # nothing outside the ROI


def test_areas_in_mm2_from_the_spec_and_from_the_frame():
    spec = tiny_spec(size=8, spacing=[0.2, 0.5])
    fg = np.ones((8, 8), bool)
    post = PostProcessor(spec)
    _, px, mm2 = post(logits_for(fg), (10, 10), roi=(0, 0, 10, 10))
    assert px == {"lesion": 100} and mm2 == pytest.approx({"lesion": 100 * 0.2 * 0.5})
    _, _, mm2 = post(logits_for(fg), (10, 10), roi=(0, 0, 10, 10), spacing_mm=[0.1, 0.1])  # DICOM wins
    assert mm2 == pytest.approx({"lesion": 1.0})


def test_temporal_smoothing_keeps_a_one_frame_flicker_out():
    spec = tiny_spec(size=8)
    on = np.ones((8, 8), bool)
    post = PostProcessor(spec, smoothing=0.8)
    roi = (0, 0, 8, 8)
    for _ in range(5):
        mask, _, _ = post(logits_for(on), (8, 8), roi)
        assert mask.all()
    # one frame says "nothing" with confidence: the smoothed mask stays on
    mask, _, _ = post(logits_for(~on), (8, 8), roi)
    assert mask.all()
    # without smoothing it flickers off at once
    raw, _, _ = PostProcessor(spec)(logits_for(~on), (8, 8), roi)
    assert not raw.any()
    # a persistent change wins after a few frames
    for _ in range(10):
        mask, _, _ = post(logits_for(~on), (8, 8), roi)
    assert not mask.any()


def test_smoothing_restarts_when_the_geometry_changes():
    spec = tiny_spec(size=8)
    on = np.ones((8, 8), bool)
    post = PostProcessor(spec, smoothing=0.9)
    for _ in range(5):
        post(logits_for(on), (8, 8), (0, 0, 8, 8))
    mask, _, _ = post(logits_for(~on), (8, 8), (0, 0, 4, 4))  # new ROI: no history
    assert not mask.any()
    post.reset()
    mask, _, _ = post(logits_for(on), (8, 8), (0, 0, 4, 4))
    assert mask[:4, :4].all()


def test_smoothing_with_a_sigmoid_output_uses_the_spec_threshold():
    spec = tiny_spec(size=4, kind="sigmoid")
    post = PostProcessor(spec, smoothing=0.7)
    logit = np.full((1, 1, 4, 4), 3.0, np.float32)  # p = 0.953
    mask, _, _ = post(logit, (4, 4), (0, 0, 4, 4))
    assert mask.all()
    mask, _, _ = post(-logit, (4, 4), (0, 0, 4, 4))  # p = 0.7 * 0.953 + 0.3 * 0.047 = 0.681
    assert mask.all()
    mask, _, _ = post(-logit, (4, 4), (0, 0, 4, 4))  # p = 0.7 * 0.681 + 0.3 * 0.047 = 0.491 < 0.5
    assert not mask.any()


def test_small_components_are_removed_per_class():
    spec = Spec.from_dict({"input": {"size": [4, 4]}, "classes": ["background", "a", "b"]})
    mask = np.zeros((40, 40), np.uint8)
    mask[2:12, 2:12] = 1  # 100 px: kept
    mask[20:22, 20:22] = 1  # 4 px: removed
    mask[30:38, 30:38] = 2  # 64 px: kept
    mask[0:3, 37:40] = 2  # 9 px: removed
    out = remove_small_components(mask.copy(), 10, spec.num_classes)
    assert out[2:12, 2:12].all() and out[30:38, 30:38].all()
    assert out[20:22, 20:22].sum() == 0 and out[0:3, 37:40].sum() == 0
    assert class_pixels(out, 3) == [100, 64]
    post = PostProcessor(spec, min_area_px=10)
    logits = np.zeros((1, 3, 4, 4), np.float32)
    logits[0, 1, 0, 0] = 5.0  # one model pixel = 4 frame pixels at 8x8: removed
    logits[0, 2, 2:, 2:] = 5.0  # 2x2 model pixels = 16 frame pixels: kept
    mask, px, _ = post(logits, (8, 8), (0, 0, 8, 8))
    assert px == {"a": 0, "b": 16}


def test_bad_settings_are_rejected_with_the_expected_range():
    with pytest.raises(JetsegError, match=r"smoothing is 1.0; expected a number in \[0, 1\)"):
        PostProcessor(tiny_spec(), smoothing=1.0)
    with pytest.raises(JetsegError, match="min_area_px is -3; expected a non-negative integer"):
        PostProcessor(tiny_spec(), min_area_px=-3)


def test_two_class_decode_equals_argmax_including_ties():
    spec = tiny_spec(size=8)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 2, 8, 8)).astype(np.float32)
    logits[0, 1, :2] = logits[0, 0, :2]  # ties go to class 0, as with argmax
    assert np.array_equal(spec.decode(logits), np.argmax(logits, axis=1).astype(np.uint8))
    assert spec.decode(logits).dtype == np.uint8 and spec.decode(logits[0]).shape == (1, 8, 8)


@pytest.mark.parametrize("classes", [2, 4])
def test_areas_from_the_model_size_mask_equal_counting_the_full_frame(classes):
    names = ["background"] + ["c%d" % i for i in range(1, classes)]
    spec = Spec.from_dict({"input": {"size": [20, 24]}, "classes": names, "pixel_spacing_mm": [0.5, 0.25]})
    post = PostProcessor(spec)
    rng = np.random.default_rng(classes)
    for frame_shape, roi in [((480, 640), (49, 34, 542, 422)), ((100, 90), (0, 0, 90, 100)),
                             ((37, 1001), (3, 1, 995, 35)), ((30, 40), (5, 5, 7, 3))]:
        small = rng.integers(0, classes, size=(20, 24)).astype(np.uint8)
        full = spec.mask_to_frame(small, frame_shape, roi=roi)
        assert post.areas_from_small(small, roi) == post.areas(full)
        px, mm2 = post.areas_from_small(small, roi, spacing_mm=[0.1, 0.1])
        assert mm2 == pytest.approx({k: v * 0.01 for k, v in px.items()})


def test_process_defers_the_full_frame_mask_unless_components_are_removed():
    spec = tiny_spec(size=8)
    fg = np.zeros((8, 8), bool)
    fg[:4] = True
    mask, small, px, _ = PostProcessor(spec).process(logits_for(fg), (40, 40), (0, 0, 40, 40))
    assert mask is None and small.shape == (8, 8) and px == {"lesion": 800}
    result = Result(frame=Frame(index=0, image=np.zeros((40, 40), np.uint8), timestamp=0.0), roi=(0, 0, 40, 40),
                    spec=spec, model_mask=small)
    assert result.mask.sum() == 800 and result.mask.shape == (40, 40)
    assert result.mask is result.mask  # made once
    mask, _, px, _ = PostProcessor(spec, min_area_px=5).process(logits_for(fg), (40, 40), (0, 0, 40, 40))
    assert isinstance(mask, np.ndarray) and px == {"lesion": 800}


def test_result_takes_exactly_one_of_mask_and_model_mask():
    spec = tiny_spec(size=8)
    frame = Frame(index=7, image=np.zeros((8, 8), np.uint8), timestamp=0.0)
    with pytest.raises(SinkError, match="frame 7: received neither"):
        Result(frame=frame, roi=(0, 0, 8, 8), spec=spec)
    with pytest.raises(SinkError, match="frame 7: received both"):
        Result(frame=frame, roi=(0, 0, 8, 8), spec=spec, mask=np.zeros((8, 8), np.uint8),
               model_mask=np.zeros((8, 8), np.uint8))
