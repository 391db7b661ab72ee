"""Enhancement at run time: the enhanced image back in the frame's ROI, output range to uint8, the pictures
sinks show (enhanced frame, or input | output side by side), and what the web viewer's layers carry."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.errors import JetsegError, SinkError
from jetseg.jetson.frames.enhance import EnhancedResult, EnhancementPostProcessor
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.postprocess import PostProcessor, post_processor
from jetseg.jetson.frames.register import RegistrationPostProcessor
from tests.fixtures.specs import enhancement_spec, registration_spec, tiny_spec


def frame_of(height: int = 40, width: int = 60, value: int = 10) -> Frame:
    return Frame(index=3, image=np.full((height, width), value, np.uint8), timestamp=0.0)


def output_of(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32)[None, None]


def test_the_output_range_maps_to_uint8_and_is_clipped():
    post = EnhancementPostProcessor(enhancement_spec(size=4, value_range=(-1.0, 1.0)))
    out = np.array([[-2.0, -1.0, 0.0, 1.0]] * 4)
    img = post.image(output_of(out))
    assert img.dtype == np.uint8 and img.shape == (4, 4)
    assert img[0].tolist() == [0, 0, 128, 255]


def test_the_enhanced_image_goes_back_into_the_roi_only():
    spec = enhancement_spec(size=8)
    post = EnhancementPostProcessor(spec)
    result = post.result(output_of(np.ones((8, 8))), frame_of(), (20, 10, 16, 12), stamps={"captured": 1.0})
    assert isinstance(result, EnhancedResult)
    picture = result.overlay()
    assert picture.shape == (40, 60, 3) and picture.dtype == np.uint8
    assert (picture[10:22, 20:36] == 255).all()  # the ROI holds the enhanced image
    outside = np.ones((40, 60), bool)
    outside[10:22, 20:36] = False
    assert (picture[outside] == 10).all()  # the frame as captured around it
    assert result.overlay(roi_only=True).shape == (12, 16, 3)
    assert result.areas_px == {} and not result.mask.any()
    assert result.record()["task"] == "enhancement"


def test_pair_shows_input_and_output_side_by_side():
    post = EnhancementPostProcessor(enhancement_spec(size=8))
    result = post.result(output_of(np.ones((8, 8))), frame_of(), (0, 0, 60, 40))
    pair = result.overlay(pair=True)
    assert pair.shape == (40, 120, 3)
    assert (pair[:, :60] == 10).all() and (pair[:, 60:] == 255).all()
    roi_pair = result.overlay(roi_only=True, pair=True)
    assert roi_pair.shape == (40, 120, 3)
    # the viewer's layers: the picture is what the sink shows, with no mask to blend in
    assert np.array_equal(result.plain(pair=True), pair)
    assert result.labels(pair=True).shape == (40, 120) and not result.labels(pair=True).any()


def test_segmentation_pair_puts_the_plain_frame_left_and_the_overlay_right():
    spec = tiny_spec(size=8)
    post = PostProcessor(spec)
    logits = np.stack([np.zeros((8, 8)), np.full((8, 8), 4.0)]).astype(np.float32)[None]
    result = post.result(logits, frame_of(), (0, 0, 60, 40))
    pair = result.overlay(pair=True)
    assert pair.shape == (40, 120, 3)
    assert (pair[:, :60] == 10).all() and not (pair[:, 60:] == 10).all()
    labels = result.labels(pair=True)
    assert not labels[:, :60].any() and labels[:, 60:].all()
    assert np.array_equal(result.plain(pair=True)[:, 60:], result.plain())


def test_an_untrusted_roi_is_refused_for_roi_only_views():
    post = EnhancementPostProcessor(enhancement_spec(size=8))
    result = post.result(output_of(np.ones((8, 8))), frame_of(), (0, 0, 60, 40), roi_trusted=False)
    with pytest.raises(SinkError, match="roi=1 refused for frame 3"):
        result.plain(roi_only=True)
    assert result.overlay().shape == (40, 60, 3)


def test_smoothing_averages_enhanced_frames_and_restarts_on_a_new_roi():
    post = EnhancementPostProcessor(enhancement_spec(size=4), smoothing=0.5)
    assert post.image(output_of(np.zeros((4, 4))), key=("a",)).max() == 0
    assert post.image(output_of(np.ones((4, 4))), key=("a",)).max() == 128
    assert post.image(output_of(np.ones((4, 4))), key=("b",)).max() == 255


def test_colour_output_follows_the_input_colour_order():
    spec = enhancement_spec(size=2, channels=3)
    out = np.zeros((1, 3, 2, 2), np.float32)
    out[0, 0] = 1.0  # channel 0 is what the model reads first
    img = EnhancementPostProcessor(spec).image(out)
    assert img.shape == (2, 2, 3)
    first = 2 if spec.input.color_order == "rgb" else 0
    assert (img[:, :, first] == 255).all() and img.sum() == 255 * 4


def test_post_processor_follows_the_task():
    assert isinstance(post_processor(enhancement_spec()), EnhancementPostProcessor)
    assert isinstance(post_processor(tiny_spec()), PostProcessor)
    with pytest.raises(JetsegError, match="postprocess.min_area_px is 5; .*no mask"):
        post_processor(enhancement_spec(), min_area_px=5)
    assert isinstance(post_processor(registration_spec()), RegistrationPostProcessor)
