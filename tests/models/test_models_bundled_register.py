"""The bundled registration model (models/bundles/ultrasound-register): verified, documented, better than the
identity on held-out pairs of frames and fields it never saw, its warped output the warp of its field."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg import flowscores
from jetseg.bundle import Bundle
from jetseg.models import BUNDLES_DIR

PATH = BUNDLES_DIR / "ultrasound-register"


def test_bundle_is_complete_and_its_card_states_held_out_scores():
    bundle = Bundle(PATH)  # sha256 of every file checked against the manifest
    spec = bundle.spec
    assert spec.task == "registration" and spec.registration.warped_output == "warped"
    assert bundle.weights_path is not None and spec.input.roi is not None
    prov = bundle.manifest.provenance
    assert prov["architecture"]["name"] == "vxm-small"
    m = prov["metrics"]
    assert m["epe_mean"] < 0.8 * m["identity_epe_mean"] and m["warped_label_dice"] > m["identity_label_dice"]
    card = (PATH / "MODEL_CARD.md").read_text()
    assert "not for clinical use" in card and "**%.3f px**" % m["epe_mean"] in card


def test_registers_unseen_pairs_better_than_the_identity():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    import onnxruntime as ort

    from jetseg.jetson.runners import open_runner
    from jetseg.jetson.sources import open_source

    bundle = Bundle(PATH)
    spec = bundle.spec
    errors, identity = [], []
    with open_runner("onnxrt", bundle, threads=1) as runner, \
            open_source("synthetic://ultrasound?seed=4242&frames=6&start=37") as source:
        for i, frame in enumerate(source):
            moving = spec.preprocess(frame.image, roi=frame.meta["roi"])
            truth = flowscores.smooth_field(777 + i, tuple(spec.input.size), amplitude=4.0)
            fixed = flowscores.warp(moving[0], truth)[None].astype(np.float32)
            flow = runner.infer(moving, {"fixed": fixed})[0]
            errors.append(flowscores.endpoint_error(flow, truth).mean())
            identity.append(np.sqrt((truth ** 2).sum(axis=0)).mean())
    assert np.mean(errors) < 0.8 * np.mean(identity)
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    flow, warped = session.run(["flow", "warped"], {"moving": moving, "fixed": fixed})
    np.testing.assert_allclose(warped[0], flowscores.warp(moving[0], flow[0]), atol=1e-3)
