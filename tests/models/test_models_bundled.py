"""The bundled demo bundles: present, verified, documented, and accurate on held-out synthetic frames."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.bundle import Bundle
from jetseg.errors import JetsegError
from jetseg.models import bundled


def test_unknown_name_is_a_clear_error():
    with pytest.raises(JetsegError, match="no bundled model 'mri'; bundled models: endoscopy, ultrasound, ultrasound-denoise, "
                       "ultrasound-register"):
        bundled("mri")


@pytest.mark.parametrize("kind", ["ultrasound", "endoscopy"])
def test_bundle_is_complete(kind):
    path = bundled(kind)
    assert kind in path.name
    bundle = Bundle(path)  # sha256 of every file checked against the manifest
    assert bundle.weights_path is not None
    assert (path / "MODEL_CARD.md").is_file() and "not for clinical use" in (path / "MODEL_CARD.md").read_text()
    prov = bundle.manifest.provenance
    assert prov["architecture"]["name"] == "unet"
    assert prov["metrics"]["dice"] >= 0.90
    assert bundle.spec.input.roi is not None  # burned-in text outside the field of view is cropped away


@pytest.mark.parametrize("kind", ["ultrasound", "endoscopy"])
def test_held_out_dice(kind):
    """A few frames of a seed used neither for training (0) nor for the card's validation (1000)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    from jetseg.jetson.runners import open_runner
    from jetseg.jetson.sources import open_source
    from jetseg.scores import mean_dice

    bundle = Bundle(bundled(kind))
    spec = bundle.spec
    preds, refs = [], []
    with open_runner("onnxrt", bundle, threads=1) as runner, \
            open_source("synthetic://%s?seed=4242&frames=6&start=37" % kind) as source:
        for frame in source:
            preds.append(spec.decode(runner.infer(spec.preprocess(frame.image, roi=frame.meta["roi"])))[0])
            refs.append(spec.preprocess_mask(frame.label, roi=frame.meta["roi"]))
    assert mean_dice(np.stack(preds), np.stack(refs), spec.num_classes) >= 0.85


def test_bundled_denoiser_is_complete():
    bundle = Bundle(bundled("ultrasound-denoise"))
    assert bundle.spec.task == "enhancement" and bundle.weights_path is not None
    assert "not for clinical use" in (bundle.path / "MODEL_CARD.md").read_text()
    prov = bundle.manifest.provenance
    assert prov["architecture"]["name"] == "unet-denoise"
    metrics = prov["metrics"]
    assert metrics["psnr"] >= metrics["input"]["psnr"] + 5.0  # it denoises, by a wide margin
    assert bundle.spec.input.roi is not None


def test_bundled_denoiser_improves_held_out_frames():
    """Frames of a seed used neither for training (0) nor for picking the step (1000)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    from jetseg.imagescores import psnr
    from jetseg.jetson.runners import open_runner
    from jetseg.jetson.sources import open_source
    from jetseg.tasks import clean_target, enhanced_images

    bundle = Bundle(bundled("ultrasound-denoise"))
    spec = bundle.spec
    gains = []
    with open_runner("onnxrt", bundle, threads=1) as runner, \
            open_source("synthetic://ultrasound?noise=speckle,lowgain&seed=4242&frames=4&start=37") as source:
        for frame in source:
            x = spec.preprocess(frame.image, roi=frame.meta["roi"])
            target = clean_target(spec, frame.meta["clean"], frame.meta["roi"])
            out = enhanced_images(runner.infer(x), spec.enhancement)[0]
            gains.append(psnr(out, target) - psnr(x[0], target))
    assert min(gains) > 5.0
