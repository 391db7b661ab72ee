"""Registration at run time: the reference (first, previous, a file, a frame set from the viewer), the field read
once and scaled to the ROI, the warp, the tracked landmarks, the motion in the metrics, multi-stream batching,
with the real ONNX Runtime runner and a model whose field is a known function of its inputs
(:func:`tests.fixtures.models.known_field`: ``u_x = gain * (moving - fixed) + shift_x``, ``u_y = shift_y``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jetseg.errors import JetsegError
from jetseg.flowscores import warp
from jetseg.jetson.daemon.assembly import run_pipeline
from jetseg.jetson.daemon.config import DaemonConfig
from jetseg.jetson.daemon.streams import run_streams
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.frames.reference import Reference, ReferenceError
from jetseg.jetson.frames.register import GRID, Field, RegistrationPostProcessor, flow_colours, grid_points
from tests.fixtures.bundles import known_field_bundle
from tests.fixtures.media import write_video
from tests.fixtures.specs import registration_spec, tiny_spec

GAIN, SHIFT = 4.0, (1.5, -0.5)


def video_frames(path) -> list:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            return frames
        frames.append(image)


def records(folder) -> list:
    return [json.loads(line) for line in (folder / "frames.jsonl").read_text().splitlines()]


def expected_motion(moving: np.ndarray, fixed: np.ndarray, spec, roi) -> dict:
    """The field the known model gives for two frames, in frame pixels (computed here, not by jetseg)."""
    m, f = spec.preprocess(moving, roi=roi)[0, 0], spec.preprocess(fixed, roi=roi)[0, 0]
    sx, sy = roi[2] / spec.input.size[1], roi[3] / spec.input.size[0]
    mag = np.hypot((GAIN * (m - f) + SHIFT[0]) * sx, np.full_like(m, SHIFT[1] * sy))
    return {"mean_px": float(mag.mean()), "p95_px": float(np.percentile(mag, 95))}


# ---------------------------------------------------------------------------------------------- the field
def test_the_field_is_read_in_model_pixels_and_scaled_to_the_roi():
    spec = registration_spec(size=8, units="normalized", warped=None)
    out = np.zeros((1, 2, 8, 8), np.float32)
    out[0, 0], out[0, 1] = 0.25, -0.5  # a quarter of the half-width = 1 px; half the half-height = -2 px
    field = Field.read(out, spec, (10, 20, 16, 32))
    assert np.allclose(field.model[0], 1.0) and np.allclose(field.model[1], -2.0)
    assert field.scale == (2.0, 4.0)
    roi_field = field.at_roi()
    assert roi_field.shape == (2, 32, 16) and np.allclose(roi_field[0], 2.0) and np.allclose(roi_field[1], -8.0)
    motion = field.motion()
    assert motion["mean_px"] == pytest.approx(np.hypot(2.0, 8.0)) and motion["folding"] == 0.0
    with pytest.raises(JetsegError, match=r"model output 'flow' has shape \(1, 3, 8, 8\); expected \(1, 2, 8, 8\)"):
        Field.read(np.zeros((1, 3, 8, 8)), spec, (0, 0, 8, 8))


def test_the_warp_moves_the_roi_by_the_field_exactly():
    spec = registration_spec(size=8, warped=None)
    post = RegistrationPostProcessor(spec)
    image = np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    out = np.zeros((1, 2, 8, 8), np.float32)
    out[0, 0], out[0, 1] = 1.0, 0.5  # model pixels; the ROI is 2x the model: 2 and 1 ROI pixels
    result = post.result(out, Frame(0, image, 0.0), (4, 6, 16, 16))
    warped = result.warped_roi()
    crop = image[6:22, 4:20]
    assert np.array_equal(warped[:15, :14], crop[1:, 2:])  # sampled at p + u: whole pixels, exact
    assert not warped[15:].any() and not warped[:, 14:].any()  # outside the moving image: zeros
    same = warp(crop.transpose(2, 0, 1).astype(np.float32), result.field.at_roi())
    assert np.array_equal(warped, np.clip(same + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    picture = result.overlay()
    assert picture.shape == image.shape
    outside = np.ones(image.shape[:2], bool)
    outside[6:22, 4:20] = False
    assert np.array_equal(picture[outside], image[outside])  # the frame as captured around the ROI
    assert result.overlay(pair=True).shape == (40, 100, 3) and result.overlay(roi_only=True).shape == (16, 16, 3)
    assert np.array_equal(result.plain(pair=True), result.overlay(pair=True))
    assert not result.labels(pair=True).any() and result.labels(pair=True).shape == (40, 100)
    assert result.record()["task"] == "registration"


def test_the_picture_warp_agrees_with_the_reference_warp_at_sub_pixel_shifts():
    """cv2.remap makes the picture; jetseg.flowscores.warp is the reference: within about a grey level on an image
    like a scan (smooth). OpenCV 4.5 (JetPack 5's) samples at 1/32 px, so on pixel noise it differs by up to
    |gradient| / 64 (4.8 grey levels seen), which a smooth image keeps small."""
    import cv2

    spec = registration_spec(size=8, warped=None)
    rng = np.random.default_rng(2)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64, 3)).astype(np.float32), (0, 0), 2.0)
    image = cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    out = (rng.standard_normal((1, 2, 8, 8)) * 0.7).astype(np.float32)  # fractional, smooth after the resize
    result = RegistrationPostProcessor(spec).result(out, Frame(0, image, 0.0), (0, 0, 64, 48))
    u = result.field.at_roi()
    reference = warp(image.transpose(2, 0, 1).astype(np.float32), u).transpose(1, 2, 0)
    diff = np.abs(result.warped_roi().astype(np.float32) - reference).max(axis=2)
    yy, xx = np.mgrid[0:48, 0:64]
    inside = (xx + u[0] >= 0) & (xx + u[0] <= 63) & (yy + u[1] >= 0) & (yy + u[1] <= 47)
    # samples whose taps fall partly outside (a one-pixel fringe) are mixed with the zero border differently
    # by OpenCV 4.5's fixed-point remap (up to 3 grey levels seen); the rest agree within about a grey level
    assert inside.mean() > 0.8 and diff[inside].max() <= 1.5 and diff.mean() < 0.6


def test_flow_colours_show_direction_by_hue_and_size_by_weight():
    field = np.zeros((2, 2, 2), np.float32)
    field[0, 0, 0], field[1, 0, 1], field[0, 1, 0] = 4.0, 4.0, 1.0  # +x, +y (down), a quarter of full
    colours, weight = flow_colours(field, 4.0)
    assert tuple(colours[0, 0]) == (0, 0, 255)  # +x: red (BGR)
    blue, green, red = (int(v) for v in colours[0, 1])  # +y (down): 90 degrees, between yellow and green
    assert (blue, green) == (0, 255) and 120 <= red <= 135
    assert weight[0, 0] == 1.0 and weight[1, 0] == pytest.approx(0.25) and weight[1, 1] == 0.0


def test_landmarks_are_carried_by_the_field_and_accumulate_with_previous():
    spec = registration_spec(size=8, warped=None)
    shift = np.zeros((1, 2, 8, 8), np.float32)
    shift[0, 0] = 0.25
    frame = Frame(0, np.zeros((8, 8), np.uint8), 0.0)
    grid = grid_points(8, 8)
    first = RegistrationPostProcessor(spec, "first")
    for _ in range(3):
        result = first.result(shift, frame, (0, 0, 8, 8), reference=1)
    assert np.allclose(result.landmarks, grid + [0.25, 0.0])  # against one reference: no accumulation
    previous = RegistrationPostProcessor(spec, "previous")
    for _ in range(3):
        result = previous.result(shift, frame, (0, 0, 8, 8), reference=1)
    assert np.allclose(result.landmarks, grid + [0.75, 0.0])  # frame after frame
    result = previous.result(shift, frame, (0, 0, 8, 8), reference=2)  # a new reference restarts the grid
    assert np.allclose(result.landmarks, grid + [0.25, 0.0]) and len(result.landmarks) == GRID * GRID
    left = result.overlay(pair=True)[:, :8]
    assert (left[..., 1] == 255).any()  # the landmarks are drawn (green) on the input half


# ------------------------------------------------------------------------------------------- the reference
def test_reference_modes_give_the_fixed_image_and_its_generation(tmp_path):
    import cv2

    spec = registration_spec(size=8, warped=None)
    roi = (0, 0, 8, 8)
    t = [np.full((1, 1, 8, 8), v, np.float32) for v in (0.1, 0.2, 0.3)]
    first = Reference(spec, "first")
    assert [first.fixed_for(x, (8, 8), roi, i)[0][0, 0, 0, 0] for i, x in enumerate(t)] == pytest.approx([0.1] * 3)
    assert first.frame_index == 0
    image = np.full((8, 8), 255, np.uint8)
    first.use_frame(image, roi, 7)  # the viewer's button: from the next frame on
    fixed, generation = first.fixed_for(t[0], (8, 8), roi, 8)
    assert fixed[0, 0, 0, 0] == pytest.approx(1.0) and generation == 2 and first.frame_index == 7
    assert first.fixed_for(t[0], (9, 9), roi, 9)[1] == 3  # a new frame size: this frame is the new reference
    previous = Reference(spec, "previous")
    got = [previous.fixed_for(x, (8, 8), roi, i) for i, x in enumerate(t)]
    assert [g[0][0, 0, 0, 0] for g in got] == pytest.approx([0.1, 0.1, 0.2]) and {g[1] for g in got} == {1}
    with pytest.raises(ReferenceError, match="reference=previous registers each frame against the one before"):
        previous.use_frame(image, roi, 3)
    path = tmp_path / "ref.png"
    cv2.imwrite(str(path), np.full((16, 16), 51, np.uint8))  # not the frames' size: taken whole
    from_file = Reference(spec, str(path))
    assert from_file.fixed_for(t[0], (8, 8), roi, 0)[0][0, 0, 0, 0] == pytest.approx(0.2)


def test_a_bad_reference_is_refused_in_one_line(tmp_path):
    spec = registration_spec(size=8, warped=None)
    (tmp_path / "notes.txt").write_text("no image")
    with pytest.raises(ReferenceError, match="postprocess.reference '.*missing.png' is not a file; give"):
        Reference(spec, str(tmp_path / "missing.png"))
    with pytest.raises(ReferenceError, match="is not an image OpenCV can read"):
        Reference(spec, str(tmp_path / "notes.txt"))
    with pytest.raises(ReferenceError, match="only registration models have a reference image"):
        Reference(tiny_spec(), "previous")


# ---------------------------------------------------------------------------- the pipeline, real sources
@pytest.mark.parametrize("reference", ["first", "previous"])
def test_a_video_through_opencv_gives_the_known_field_for_each_reference(tmp_path, reference):
    bundle = known_field_bundle(tmp_path / "reg", gain=GAIN, shift=SHIFT)
    video = write_video(tmp_path / "in.mp4", frames=5, size=(64, 48))
    metrics = Metrics()
    stats = run_pipeline(bundle, "file://%s" % video, sink_uris=["masks://%s?png=0" % (tmp_path / "m")],
                         backend="onnxrt", metrics=metrics, reference=reference, roi=[8, 0, 48, 48])
    assert stats["frames"] == 5
    frames, spec, roi = video_frames(video), bundle_spec(bundle), (8, 0, 48, 48)
    for i, rec in enumerate(records(tmp_path / "m")):
        fixed = frames[0] if reference == "first" else frames[max(i - 1, 0)]
        want = expected_motion(frames[i], fixed, spec, roi)
        assert rec["task"] == "registration" and rec["reference"] == reference
        assert rec["motion"]["mean_px"] == pytest.approx(want["mean_px"], abs=1e-3)
        assert rec["motion"]["p95_px"] == pytest.approx(want["p95_px"], abs=1e-3)
    assert records(tmp_path / "m")[0]["motion"]["mean_px"] == pytest.approx(np.hypot(1.5 * 1.5, 0.5 * 1.5), abs=1e-3)
    summary = metrics.stats()["motion"]
    assert summary["frames"] == 5 and summary["last"]["mean_px"] == pytest.approx(records(tmp_path / "m")[-1]
                                                                                  ["motion"]["mean_px"], abs=1e-3)
    assert metrics.health()["motion"] == summary["last"]
    text = metrics.exposition()[0].decode()
    assert "jetseg_motion_mean_pixels" in text and "jetseg_motion_folding_fraction 0.0" in text


def bundle_spec(bundle):
    from jetseg.bundle import Bundle

    return Bundle(bundle).spec


def test_synthetic_frames_are_recorded_side_by_side(tmp_path):
    import cv2

    bundle = known_field_bundle(tmp_path / "reg")
    out = tmp_path / "out.mp4"
    stats = run_pipeline(bundle, "synthetic://ultrasound?frames=4", sink_uris=["file://%s?pair=1" % out],
                         backend="onnxrt", reference="previous")
    assert stats["frames"] == 4 and stats["sinks"]["file"]["written"] == 4
    cap = cv2.VideoCapture(str(out))
    ok, image = cap.read()
    assert ok and image.shape[1] == 2 * 640  # input | registered


def test_metrics_of_other_tasks_carry_no_motion():
    metrics = Metrics()
    assert metrics.stats()["motion"] is None and "motion" not in metrics.health()
    assert b"jetseg_motion" not in metrics.exposition()[0]


def test_streams_each_keep_their_own_reference_and_are_batched(tmp_path):
    bundle = known_field_bundle(tmp_path / "reg")
    config = DaemonConfig.from_dict({
        "model": str(bundle), "backend": {"name": "onnxrt"}, "batch": {"size": 2, "max_delay_ms": 200},
        "postprocess": {"reference": "previous"}, "device": {"telemetry": "off"},
        "sources": [{"name": "a", "uri": "file://%s" % write_video(tmp_path / "a.mp4", frames=4),
                     "sinks": ["masks://%s?png=0" % (tmp_path / "ma")]},
                    {"name": "b", "uri": "file://%s" % write_video(tmp_path / "b.mp4", frames=4, size=(48, 64)),
                     "postprocess": {"reference": "first"}, "sinks": ["masks://%s?png=0" % (tmp_path / "mb")]}]})
    summary = run_streams(config)
    assert summary["batcher"]["sizes"].get("2", 0) >= 1  # both streams' frames (and fixed images) in one call
    spec = bundle_spec(bundle)
    for name, reference, size in (("a", "previous", (64, 48)), ("b", "first", (48, 64))):
        frames = video_frames(tmp_path / ("%s.mp4" % name))
        roi = (0, 0, size[0], size[1])
        for i, rec in enumerate(records(tmp_path / ("m" + name))):
            fixed = frames[0] if reference == "first" else frames[max(i - 1, 0)]
            assert rec["motion"]["mean_px"] == pytest.approx(expected_motion(frames[i], fixed, spec, roi)["mean_px"],
                                                             abs=1e-3), (name, i)


# ------------------------------------------------------------------------------------- the viewer's button
def post(url: str, headers: dict) -> tuple:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.mark.parametrize("mode", ["first", "previous"])
def test_post_reference_sets_the_frame_on_screen_as_the_reference(mode):
    from jetseg.jetson.sinks import SinkContext, open_sink

    spec = registration_spec(size=8, warped=None)
    post_processor = RegistrationPostProcessor(spec, mode)
    reference = post_processor.reference
    sink = open_sink("http://127.0.0.1:0")
    sink.open(SinkContext(spec=spec))
    try:
        assert post(sink.url + "reference", {"X-Requested-With": "jetseg"})[0] == 503  # no frame yet
        image = np.full((8, 8), 255, np.uint8)
        sink.write(post_processor.result(np.zeros((1, 2, 8, 8), np.float32), Frame(5, image, 0.0), (0, 0, 8, 8)))
        assert post(sink.url + "reference", {})[0] == 403  # a page of another site cannot send the header
        viewer = sink.viewer_stats()
        assert viewer["task"] == "registration" and viewer["classes"] == []  # the page shows no class legend
        code, answer = post(sink.url + "reference", {"X-Requested-With": "jetseg"})
    finally:
        sink.close()
    if mode == "previous":
        assert code == 409 and "reference=previous registers each frame against the one before" in answer["message"]
        return
    assert code == 200 and answer["message"] == "reference: frame 5"
    fixed, _ = reference.fixed_for(np.zeros((1, 1, 8, 8), np.float32), (8, 8), (0, 0, 8, 8), 6)
    assert fixed[0, 0, 0, 0] == pytest.approx(1.0) and reference.frame_index == 5


def test_post_reference_is_refused_for_a_segmentation_model():
    from jetseg.jetson.sinks import SinkContext, open_sink
    from tests.fixtures.media import make_result

    spec = tiny_spec()
    sink = open_sink("http://127.0.0.1:0")
    sink.open(SinkContext(spec=spec))
    try:
        sink.write(make_result(1, spec))
        code, answer = post(sink.url + "reference", {"X-Requested-With": "jetseg"})
    finally:
        sink.close()
    assert code == 409 and "only registration models have a reference" in answer["message"]


@pytest.mark.parametrize("uri", ["masks://{d}", "dicom-seg://{d}"])
def test_mask_sinks_refuse_a_registration_model_in_one_line(tmp_path, uri):
    from jetseg.errors import SinkError
    from jetseg.jetson.sinks import SinkContext, open_sink

    sink = open_sink(uri.format(d=tmp_path / "out"))
    with pytest.raises(SinkError, match="this model's spec.task is registration \\(no mask\\); use masks://.*png=0"):
        sink.open(SinkContext(spec=registration_spec(warped=None)))
    assert not (tmp_path / "out").exists()


def test_a_reference_file_of_the_frames_size_is_cropped_like_them(tmp_path):
    import cv2

    bundle = known_field_bundle(tmp_path / "reg", gain=GAIN, shift=SHIFT)
    video = write_video(tmp_path / "in.mp4", frames=3, size=(64, 48))
    frames = video_frames(video)
    reference = tmp_path / "ref.png"
    saved = frames[2].copy()
    saved[:, :8] = 255  # outside the ROI: a reference taken whole (not cropped) would differ
    cv2.imwrite(str(reference), saved)  # the last frame, saved at the frames' size
    run_pipeline(bundle, "file://%s" % video, sink_uris=["masks://%s?png=0" % (tmp_path / "m")], backend="onnxrt",
                 reference=str(reference), roi=[8, 0, 48, 48])
    got = records(tmp_path / "m")
    assert [r["reference"] for r in got] == ["file"] * 3
    for i, rec in enumerate(got):
        want = expected_motion(frames[i], frames[2], bundle_spec(bundle), (8, 0, 48, 48))
        assert rec["motion"]["mean_px"] == pytest.approx(want["mean_px"], abs=1e-3)


def test_the_config_field_names_what_it_expects():
    from jetseg.jetson.daemon.config import ConfigError

    assert DaemonConfig.from_dict({"postprocess": {"reference": "previous"}}).postprocess.reference == "previous"
    with pytest.raises(ConfigError, match="config field 'postprocess.reference' is 5; expected first, previous or an "
                                          "image file"):
        DaemonConfig.from_dict({"postprocess": {"reference": 5}})
