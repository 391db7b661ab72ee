"""jetseg train --task registration: a tiny run writes a registration bundle whose held-out scores come from
the exported model through the onnxrt runner (two inputs), the torch runner reproduces it, errors are one line."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402
from jetseg.jetson.runners import open_runner  # noqa: E402

TINY = ["--task", "registration", "--arch", "vxm-tiny", "--input-size", "32x32", "--steps", "6", "--batch", "2",
        "--eval-interval", "3", "--threads", "1", "--train-threads", "1", "--frames", "8", "--val-frames", "4",
        "--val-every", "2"]
DATA = "synthetic://ultrasound?frames=40&width=160&height=120"


def test_tiny_registration_run_writes_a_registration_bundle(tmp_path, capsys):
    out = tmp_path / "reg"
    code = main(["train", "--data", DATA, "--out", str(out)] + TINY)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "held-out EPE mean" in captured.out
    bundle = Bundle(out)
    spec = bundle.spec
    assert spec.task == "registration" and spec.registration is not None
    assert (spec.input.name, spec.registration.fixed_input, spec.output.name) == ("moving", "fixed", "flow")
    assert spec.registration.units == "pixels" and spec.registration.warped_output is None  # vxm-tiny default
    prov = bundle.manifest.provenance
    m = prov["metrics"]
    assert m["backend"] == "onnxrt" and m["pairs"] == 4
    for key in ("epe_mean", "epe_p95", "folding", "identity_epe_mean", "warped_label_dice", "identity_label_dice"):
        assert isinstance(m[key], float), key
    assert m["identity_epe_mean"] > 0.1  # the held-out pairs are really deformed
    card = (out / "MODEL_CARD.md").read_text()
    assert "%.3f px" % m["epe_mean"] in card and "Synthetic data only" in card
    # the PyTorch reference (two inputs, through the torch runner) gives the ONNX model's field
    rng = np.random.default_rng(0)
    moving, fixed = rng.random((1, 1, 32, 32), dtype=np.float32), rng.random((1, 1, 32, 32), dtype=np.float32)
    with open_runner("onnxrt", bundle, threads=1) as ort_runner, open_runner("torch", bundle, threads=1) as ref:
        np.testing.assert_allclose(ort_runner.infer(moving, {"fixed": fixed}), ref.infer(moving, {"fixed": fixed}),
                                   atol=1e-4)


def test_torch_runner_returns_the_field_of_a_model_with_a_warped_output(tmp_path):
    from tests.fixtures.bundles import vxm_bundle

    bundle = Bundle(vxm_bundle(tmp_path / "b", warped=True))
    rng = np.random.default_rng(2)
    moving, fixed = rng.random((1, 1, 32, 32), dtype=np.float32), rng.random((1, 1, 32, 32), dtype=np.float32)
    with open_runner("torch", bundle, threads=1) as ref, open_runner("onnxrt", bundle, threads=1) as ort_runner:
        flow = ref.infer(moving, {"fixed": fixed})
        np.testing.assert_allclose(flow, ort_runner.infer(moving, {"fixed": fixed}), atol=1e-4)
    assert flow.shape == (1, 2, 32, 32) and np.abs(flow).max() > 1e-3  # not the zero field


def test_a_segmentation_arch_is_refused_for_registration(tmp_path, capsys):
    code = main(["train", "--data", DATA, "--out", str(tmp_path / "o"), "--task", "registration",
                 "--arch", "unet-tiny", "--input-size", "32x32", "--steps", "1"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "--arch unet-tiny is a segmentation model; --task registration trains vxm-small or vxm-tiny" in err
    assert not (tmp_path / "o").exists()


def test_a_registration_arch_is_refused_for_segmentation(tmp_path, capsys):
    code = main(["train", "--data", DATA, "--out", str(tmp_path / "o"), "--arch", "vxm-tiny", "--input-size", "32x32",
                 "--steps", "1"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "--arch vxm-tiny is a registration model; add --task registration" in err


def test_distill_refuses_registration_in_one_line(tmp_path, capsys):
    from jetseg.models import BUNDLES_DIR

    for teacher, student, message in (
            ("ultrasound-unet", "vxm-tiny", "--student vxm-tiny is a registration model; jetseg distill makes "
                                            "segmentation students"),
            ("ultrasound-register", "unet-tiny", "jetseg distill supports task segmentation; this model's spec.task "
                                                 "is registration")):
        code = main(["distill", str(BUNDLES_DIR / teacher), "--student", student, "--scans", DATA, "--steps", "1",
                     "--out", str(tmp_path / student)])
        err = capsys.readouterr().err
        assert code != 0 and "Traceback" not in err and message in err, err
