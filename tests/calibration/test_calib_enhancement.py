"""jetseg calibrate on an enhancement bundle: the image gate (SSIM vs FP32, PSNR drop vs targets) and fallback."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg import evaluate
from jetseg.calibration.gate_image import compare_images
from jetseg.calibration.workflow import calibrate
from jetseg.cli import main
from jetseg.errors import GateError
from tests.fixtures.bundles import smoother_bundle
from tests.fixtures.images import smooth_pair
from tests.fixtures.specs import enhancement_spec


def _outputs(images):
    spec = enhancement_spec(size=40)
    return evaluate.Outputs(spec=spec, outputs=[np.asarray(im, np.float32)[None, None] for im in images], masks=[])


def test_compare_images_measures_the_psnr_drop_against_targets():
    clean, noisy = smooth_pair(40, 40)
    fp32, int8 = _outputs([clean]), _outputs([noisy])
    alone = compare_images(fp32, int8)
    assert alone["bases"] == ["fp32"] and alone["psnr_drop"] is None
    assert alone["ssim"] < 0.9
    both = compare_images(fp32, int8, [clean[None]])
    assert both["bases"] == ["fp32", "targets"]
    assert both["fp32_vs_targets"]["psnr"] == 100.0  # identical to the target: capped
    assert both["psnr_drop"] == pytest.approx(100.0 - both["int8_vs_targets"]["psnr"], abs=1e-5)


def test_enhancement_bundle_calibrates_through_the_image_gate(tmp_path, png_folder, capsys):
    bundle, scans, out = smoother_bundle(tmp_path / "fp32"), png_folder(16), tmp_path / "int8"
    code = main(["calibrate", str(bundle), "--scans", str(scans), "--out", str(out), "--count", "8",
                 "--holdout", "4", "--target", "cpu"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "gate: SSIM vs FP32 0.99" in stdout and "PSNR drop vs targets n/a (no clean targets)" in stdout
    import json

    gate = json.loads((out / "calibration.json").read_text())["gate"]
    assert gate["task"] == "enhancement" and gate["bases"] == ["fp32"]
    assert gate["int8_vs_fp32"]["ssim"] >= 0.99 and gate["threshold"] == {"psnr_drop_db": 0.3, "min_ssim": 0.99}


def test_image_gate_keeps_the_outlier_layer_in_float(tmp_path, png_folder):
    bundle = smoother_bundle(tmp_path / "fp32", outlier=True)
    report = calibrate(bundle, str(png_folder(16)), out=tmp_path / "int8", count=8, holdout=4, progress=False,
                       target="cpu", gate_ssim=0.999)
    first, final = report["gate"]["attempts"][0], report["gate"]["result"]
    assert not first["passed"] and first["ssim"] < 0.999
    assert report["float_layers"] and final["ssim"] >= 0.999
    with pytest.raises(GateError, match=r"INT8 fails the accuracy gate: SSIM vs FP32 0\.\d+, PSNR vs FP32 .* dB, "
                                         r"PSNR drop vs targets no clean targets \(limits --gate-ssim 0.999 / "
                                         r"--gate-psnr 0.3\) on 4 held-out frames .*or a lower --gate-ssim"):
        calibrate(bundle, str(png_folder(16, name="again")), out=tmp_path / "fails", count=8, holdout=4,
                  progress=False, target="cpu", gate_ssim=0.999, max_fallback=0)


def test_scans_with_clean_targets_give_the_psnr_drop_from_the_command_line(tmp_path, capsys):
    import json

    bundle, out = smoother_bundle(tmp_path / "fp32"), tmp_path / "int8"
    scans = "synthetic://ultrasound?noise=speckle&width=160&height=120&frames=24"
    code = main(["calibrate", str(bundle), "--scans", scans, "--out", str(out), "--count", "8", "--holdout", "4",
                 "--target", "cpu"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "PSNR drop vs targets" in stdout and "no clean targets" not in stdout
    gate = json.loads((out / "calibration.json").read_text())["gate"]
    assert gate["bases"] == ["fp32", "targets"]
    assert gate["psnr_drop"] is not None and gate["psnr_drop"] <= 0.3


def _noisy_clean_folder(root, n=6):
    """DIR/images/*.png (noisy) + DIR/clean/*.png: synthetic ultrasound frames and their clean versions."""
    import cv2

    from jetseg.jetson.sources import open_source

    (root / "images").mkdir(parents=True)
    (root / "clean").mkdir()
    with open_source("synthetic://ultrasound?noise=lowgain&width=160&height=120&frames=%d" % n) as source:
        for frame in source:
            cv2.imwrite(str(root / "images" / ("f%02d.png" % frame.index)), frame.image)
            cv2.imwrite(str(root / "clean" / ("f%02d.png" % frame.index)), frame.meta["clean"])
    return root


@pytest.mark.parametrize("memory_mb", [1024.0, 0.001])  # in memory, and read again in a second pass
def test_scan_readers_deliver_clean_targets_cropped_like_the_input(tmp_path, memory_mb):
    from jetseg.calibration.scans import read_scans
    from jetseg.tasks import clean_target

    spec = enhancement_spec(size=32)
    folder = _noisy_clean_folder(tmp_path / "pairs")
    scans = read_scans(str(folder), spec, progress=False, roi=[10, 20, 100, 80], memory_mb=memory_mb)
    assert scans.with_targets and scans.in_memory == (memory_mb > 1)
    targets = scans.targets([1, 4])
    import cv2

    clean = cv2.imread(str(folder / "clean" / "f04.png"))
    np.testing.assert_array_equal(targets[1], clean_target(spec, clean, [10, 20, 100, 80]))
    assert targets[0].shape == (1, 32, 32) and 0.0 <= targets[0].min() and targets[0].max() <= 1.0
    # the noisy input is darker than its target (low gain), so the pair is not the same picture twice
    assert float(scans.tensors([4])[0].mean()) < 0.8 * float(targets[1].mean())


def test_scans_without_clean_targets_give_none(tmp_path, png_folder):
    from jetseg.calibration.scans import read_scans

    scans = read_scans(str(png_folder(4)), enhancement_spec(size=32), progress=False)
    assert not scans.with_targets and scans.targets([0, 1]) == [None, None]
