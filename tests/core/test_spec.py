"""Spec validation, preprocessing and decoding: the one implementation everything uses."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.errors import SpecError
from jetseg.spec import Spec


def make_spec(**input_overrides):
    inp = {"name": "input", "size": [32, 48], "channels": 1, "color_order": "gray", "mean": [0.5], "std": [0.25]}
    inp.update(input_overrides)
    return Spec.from_dict({"name": "t", "input": inp, "output": {"name": "logits", "kind": "softmax"},
                           "classes": ["background", "lesion"]})


@pytest.mark.parametrize("data, message", [
    ({"inptu": {}}, "unknown spec field 'inptu' (did you mean 'input'?)"),
    ({"input": {"channels": 2}}, "spec field 'input.channels' is 2; expected 1 or 3"),
    ({"input": {"channels": 3, "color_order": "gray", "mean": [0, 0, 0], "std": [1, 1, 1]}},
     "spec field 'input.color_order' is 'gray'; expected rgb or bgr for 3 channel(s)"),
    ({"input": {"size": [32]}}, "spec field 'input.size' is [32]; expected [height, width]"),
    ({"input": {"std": [0.0]}}, "spec field 'input.std' is [0.0]; expected positive numbers"),
    ({"input": {"roi": [0, 0, -1, 5]}}, "spec field 'input.roi'"),
    ({"output": {"kind": "softplus"}}, "spec field 'output.kind' is 'softplus'; expected one of softmax, sigmoid"),
    ({"classes": ["bg"]}, "spec field 'classes' is ['bg']; expected a list of at least two distinct names"),
    ({"output": {"activation": "softmax"}}, "'output.activation' is 'softmax'; expected one of logits, probabilities"),
    ({"colors": [[0, 0, 0]]}, "spec field 'colors'"),
    ({"input": {"rio": [0, 0, 1, 1]}}, "(did you mean 'input.roi'?)"),
    ({"input": 5}, "spec field 'input' is 5; expected a mapping"),
    ([1, 2], "spec must be a mapping of fields, got list"),
])
def test_invalid_specs_name_the_field(data, message):
    with pytest.raises(SpecError) as info:
        Spec.from_dict(data)
    assert message in str(info.value)


def test_spec_round_trips_through_yaml(tmp_path):
    spec = make_spec(roi=[2, 3, 40, 30])
    spec.pixel_spacing_mm = [0.2, 0.3]
    spec.save(tmp_path / "spec.yaml")
    again = Spec.load(tmp_path / "spec.yaml")
    assert again.to_dict() == spec.to_dict()
    assert again.input.size == (32, 48)
    assert again.colors == [[0, 0, 0], [255, 64, 64]]


def test_load_reports_bad_yaml_with_the_path(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("input: [unclosed\n")
    with pytest.raises(SpecError, match="spec.yaml is not valid YAML"):
        Spec.load(path)
    with pytest.raises(SpecError, match="cannot read spec"):
        Spec.load(tmp_path / "missing.yaml")


def test_preprocess_grey_uint8_normalises_and_lays_out_nchw():
    spec = make_spec()
    frame = np.full((32, 48, 3), 255, dtype=np.uint8)  # BGR white
    x = spec.preprocess(frame)
    assert x.shape == (1, 1, 32, 48) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x, (1.0 - 0.5) / 0.25)


def test_preprocess_scales_uint16_and_accepts_grey():
    spec = make_spec(mean=[0.0], std=[1.0])
    frame = np.full((32, 48), 65535, dtype=np.uint16)
    np.testing.assert_allclose(spec.preprocess(frame), 1.0)
    frame8 = np.full((32, 48), 51, dtype=np.uint8)
    np.testing.assert_allclose(spec.preprocess(frame8), 0.2, rtol=1e-6)


def test_preprocess_rgb_order_crop_and_resize():
    spec = Spec.from_dict({"input": {"size": [4, 4], "channels": 3, "color_order": "rgb",
                                     "mean": [0, 0, 0], "std": [1, 1, 1], "roi": [10, 20, 8, 8],
                                     "interpolation": "nearest"}})
    frame = np.zeros((64, 64, 3), dtype=np.uint8)
    frame[20:28, 10:18] = (255, 0, 0)  # pure blue in BGR inside the ROI, black elsewhere
    x = spec.preprocess(frame)
    assert x.shape == (1, 3, 4, 4)
    np.testing.assert_allclose(x[0, 2], 1.0)  # blue is the third channel in RGB
    np.testing.assert_allclose(x[0, :2], 0.0)


def _reference(spec, frame):
    """Spec.preprocess's steps in their textbook order and arithmetic (colour conversion at full size, then
    resize, then float normalisation): what the fast path must match bit for bit."""
    import cv2

    x, y, w, h = spec.roi_for(frame.shape)
    crop = frame[y:y + h, x:x + w]
    if crop.ndim == 3 and crop.shape[2] == 4:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGRA2BGR)
    if spec.input.channels == 1 and crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    elif spec.input.channels == 3:
        if crop.ndim == 2:
            crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
        if spec.input.color_order == "rgb":
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    interp = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}[spec.input.interpolation]
    crop = cv2.resize(crop, spec.input.size[::-1], interpolation=interp)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(crop.dtype, 1.0)
    data = crop.astype(np.float32)
    data = data[:, :, None] if data.ndim == 2 else data
    mean = np.asarray(spec.input.mean, dtype=np.float32) * scale
    std = np.asarray(spec.input.std, dtype=np.float32) * scale
    return np.ascontiguousarray(((data - mean) / std).transpose(2, 0, 1)[None])


@pytest.mark.parametrize("frame_channels", [None, 3, 4])
@pytest.mark.parametrize("interpolation", ["linear", "area"])
@pytest.mark.parametrize("channels, order, dtype", [
    (1, "gray", np.uint8), (3, "rgb", np.uint8), (3, "bgr", np.uint8), (1, "gray", np.uint16),
    (3, "rgb", np.uint16), (3, "rgb", np.float32)])
def test_preprocess_gives_exactly_the_reference_arithmetic(channels, order, dtype, interpolation, frame_channels):
    """Colour steps done after the resize and table look-ups change no value: the result equals, bit for bit,
    colour conversion at full size, resize, then float arithmetic."""
    spec = Spec.from_dict({"input": {"size": [24, 40], "channels": channels, "color_order": order,
                                     "mean": [0.239, 0.4, 0.31][:channels], "std": [0.258, 0.21, 0.3][:channels],
                                     "roi": [3, 5, 57, 41], "interpolation": interpolation}})
    shape = (60, 70) if frame_channels is None else (60, 70, frame_channels)
    rng = np.random.default_rng(1)
    if dtype == np.float32:
        frame = rng.random(shape, dtype=np.float32)
    else:
        frame = rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)
    got = spec.preprocess(frame)
    assert got.shape == (1, channels, 24, 40) and got.dtype == np.float32 and got.flags.c_contiguous
    assert np.array_equal(got, _reference(spec, frame))


def test_roi_override_and_roi_outside_frame():
    spec = make_spec(roi=[100, 100, 10, 10])
    with pytest.raises(SpecError, match="lies outside the 48x32 frame"):
        spec.preprocess(np.zeros((32, 48), np.uint8))
    x = spec.preprocess(np.zeros((32, 48), np.uint8), roi=(0, 0, 48, 32))
    assert x.shape == (1, 1, 32, 48)


def test_preprocess_rejects_non_frames():
    spec = make_spec()
    with pytest.raises(SpecError, match="a frame must be a numpy array, got list"):
        spec.preprocess([[1, 2]])
    with pytest.raises(SpecError, match=r"a frame must be HxW \(grey\) or HxWx3 \(BGR\)"):
        spec.preprocess(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(SpecError, match="a frame must be uint8, uint16 or float, got int64"):
        spec.preprocess(np.zeros((4, 4), np.int64))


def test_mask_crop_and_map_back_are_inverse_on_the_roi():
    spec = make_spec(roi=[8, 4, 32, 16], interpolation="nearest")
    spec.input.size = (16, 32)
    mask = np.zeros((32, 48), np.uint8)
    mask[8:12, 16:24] = 1
    small = spec.preprocess_mask(mask)
    assert small.shape == (16, 32) and small.sum() == mask.sum()
    full = spec.mask_to_frame(small, mask.shape)
    np.testing.assert_array_equal(full, mask)


def test_decode_softmax_and_sigmoid():
    spec = make_spec()
    logits = np.zeros((2, 2, 3, 3), np.float32)
    logits[0, 1, 1, 1] = 5.0
    masks = spec.decode(logits)
    assert masks.shape == (2, 3, 3) and masks.dtype == np.uint8
    assert masks[0, 1, 1] == 1 and masks.sum() == 1
    sig = Spec.from_dict({"output": {"kind": "sigmoid", "threshold": 0.5}})
    out = np.array([[[[-1.0, 0.5]]]], np.float32)
    np.testing.assert_array_equal(sig.decode(out), [[[0, 1]]])
    probs = sig.probabilities(out)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(SpecError, match=r"model output has shape \(1, 3, 2, 2\); spec expects \(N, 2, H, W\)"):
        spec.decode(np.zeros((1, 3, 2, 2)))


def test_probabilities_are_not_activated_twice():
    logits = Spec.from_dict({"output": {"kind": "sigmoid"}, "classes": ["bg", "lesion"]})
    probs = Spec.from_dict({"output": {"kind": "sigmoid", "activation": "probabilities"}, "classes": ["bg", "lesion"]})
    p = np.full((1, 1, 2, 2), 0.3, np.float32)  # a model ending in Sigmoid: 0.3 means "no"
    assert probs.decode(p).sum() == 0 and logits.decode(p).sum() == 4  # as a logit 0.3 -> p 0.57 -> "yes"
    assert np.allclose(probs.probabilities(p)[:, 1], 0.3)
    soft = Spec.from_dict({"output": {"activation": "probabilities"}})
    q = np.array([[[[0.2]], [[0.8]]]], np.float32)
    assert soft.decode(q)[0, 0, 0] == 1 and np.allclose(soft.probabilities(q), q)


def test_multilabel_sigmoid_decodes_overlapping_classes():
    spec = Spec.from_dict({"output": {"kind": "sigmoid"}, "classes": ["bg", "organ", "lesion"]})
    assert spec.multilabel and spec.output_channels == 2 and spec.output_shape[1] == 2
    out = np.full((1, 2, 1, 3), -5.0, np.float32)
    out[0, 0, 0, :2] = 3.0  # organ on pixels 0 and 1
    out[0, 1, 0, 1] = 4.0  # lesion on pixel 1, inside the organ
    labels = spec.decode_labels(out)
    assert labels[0, 0, 0].tolist() == [True, True, False] and labels[0, 1, 0].tolist() == [False, True, False]
    assert spec.decode(out)[0, 0].tolist() == [1, 2, 0]  # the last class above the threshold per pixel
    assert spec.probabilities(out).shape == (1, 3, 1, 3)
