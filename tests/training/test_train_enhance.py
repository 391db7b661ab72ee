"""jetseg train --task enhancement: a tiny run writes a verified denoiser bundle; losses; one-line errors."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402

DATA = "synthetic://ultrasound?noise=speckle,lowgain&frames=40&width=160&height=120"
TINY = ["--task", "enhancement", "--input-size", "32x32", "--depth", "2", "--base-width", "4", "--steps", "6",
        "--batch", "2", "--eval-interval", "3", "--patch", "16", "--frames", "8", "--val-frames", "4", "--val-every",
        "2", "--threads", "1", "--train-threads", "1"]


def _cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("data,extra", [
    (DATA, []),
    ("synthetic://ct?noise=lowdose&frames=40&width=160&height=120", ["--loss", "mse", "--ssim-weight", "0.5",
                                                                     "--adversarial"]),
])
def test_tiny_run_writes_an_enhancement_bundle(tmp_path, capsys, data, extra):
    out = tmp_path / "denoiser"
    code, stdout, err = _cli(capsys, "train", "--data", data, "--out", str(out), *(TINY + extra))
    assert code == 0, err
    assert "held-out PSNR" in stdout and "noisy input" in stdout
    bundle = Bundle(out)
    spec = bundle.spec
    assert spec.task == "enhancement" and spec.enhancement.channels == 1 and spec.enhancement.range == [0.0, 1.0]
    assert spec.input.mean == [0.0] and spec.input.std == [1.0] and spec.input.interpolation == "area"
    prov = bundle.manifest.provenance
    assert prov["architecture"]["name"] == "unet-denoise" and prov["task"] == "enhancement"
    noise = data.split("noise=")[1].split("&")[0]
    assert "noise=" + noise in prov["data"]["validation"]["uri"] and "seed=1000" in prov["data"]["validation"]["uri"]
    metrics = prov["metrics"]
    assert metrics["frames"] == 4 and metrics["backend"] == "onnxrt"
    assert 0 < metrics["input"]["psnr"] < 40 and 0 < metrics["psnr"] < 100 and -1 <= metrics["ssim"] <= 1
    assert [h["step"] for h in prov["history"]] == [3, 6] and all("val_psnr" in h for h in prov["history"])
    card = (out / "MODEL_CARD.md").read_text()
    assert "| noisy input | %.2f |" % metrics["input"]["psnr"] in card and "**%.2f**" % metrics["psnr"] in card
    assert ("GAN" in card) == bool(extra) and "of 16x16 crops" in card
    from jetseg.jetson.runners import open_runner

    x = np.random.default_rng(0).random((1, 1, 32, 32)).astype(np.float32)
    with open_runner("torch", bundle) as a, open_runner("onnxrt", bundle) as b:
        assert np.max(np.abs(a.infer(x) - b.infer(x))) < 1e-4


def test_an_untrained_denoiser_is_the_identity():
    from jetseg.models.archs import build_model

    model = build_model("unet-denoise", input_size=[32, 32], in_channels=1, depth=2, base_width=4)
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(model(x), x)


def test_ssim_loss_is_one_minus_jetsegs_ssim():
    from jetseg.imagescores import ssim
    from jetseg.training.enhance_losses import ssim_loss

    rng = np.random.default_rng(1)
    a = rng.random((1, 1, 40, 40)).astype(np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    assert 1.0 - float(ssim_loss(torch.from_numpy(a), torch.from_numpy(b))) == pytest.approx(ssim(a[0, 0], b[0, 0]),
                                                                                            abs=1e-5)


def test_adversarial_step_trains_the_discriminator_but_not_with_the_denoisers_loss():
    from jetseg.training.enhance_losses import Adversarial

    torch.manual_seed(0)
    adv = Adversarial(1)
    denoised = torch.rand(2, 1, 32, 32, requires_grad=True)
    before = [p.detach().clone() for p in adv.net.parameters()]
    loss = adv.generator_loss(denoised, torch.rand(2, 1, 32, 32))
    assert any(not torch.equal(p, q) for p, q in zip(adv.net.parameters(), before))  # the discriminator stepped
    own = [p.grad.clone() for p in adv.net.parameters()]  # its own loss's gradients
    loss.backward()
    assert denoised.grad is not None and float(denoised.grad.abs().sum()) > 0
    assert all(torch.equal(p.grad, g) for p, g in zip(adv.net.parameters(), own))  # untouched by the denoiser's loss


@pytest.mark.parametrize("argv,message", [
    (["--data", "synthetic://ultrasound?frames=8"], "has no clean target; enhancement training needs noisy/clean pairs"),
    (["--data", DATA, "--arch", "unet-tiny"], "--arch unet-tiny is a segmentation architecture; --task enhancement "
                                              "takes unet-denoise"),
    (["--data", DATA, "--classes", "a,b"], "--classes is for segmentation"),
    (["--data", DATA, "--patch", "-1"], "--patch -1 is invalid"),
    (["--data", DATA, "--patch", "10"], "--patch 10 is not a multiple of 4 (2**depth)"),
    (["--data", DATA, "--ssim-weight", "-1"], "--ssim-weight -1 is invalid"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    args = [a for a in TINY if a not in ("--patch", "16")] if "--patch" in argv else TINY
    code, stdout, err = _cli(capsys, "train", "--out", str(tmp_path / "x"), *(args + argv))
    assert code != 0 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_a_folder_of_noisy_clean_pairs_trains_with_its_last_files_held_out(tmp_path, capsys):
    import cv2

    from jetseg.jetson.sources import open_source

    data = tmp_path / "pairs"
    (data / "images").mkdir(parents=True)
    (data / "clean").mkdir()
    with open_source("synthetic://ct?noise=lowdose&width=96&height=96&frames=10") as source:
        for frame in source:
            cv2.imwrite(str(data / "images" / ("s%02d.png" % frame.index)), frame.image)
            cv2.imwrite(str(data / "clean" / ("s%02d.png" % frame.index)), frame.meta["clean"])
    argv = TINY[:TINY.index("--frames")] + TINY[TINY.index("--threads"):]  # a folder: all its files, split
    code, _, err = _cli(capsys, "train", "--data", str(data), "--out", str(tmp_path / "d"), *argv)
    assert code == 0, err
    prov = Bundle(tmp_path / "d").manifest.provenance
    assert prov["data"]["train"]["frames_used"] == 8 and prov["metrics"]["frames"] == 2
    assert prov["data"]["validation"]["uri"].endswith("(last 2 frames held out)")
    assert Bundle(tmp_path / "d").spec.input.channels == 1  # grey PNGs
