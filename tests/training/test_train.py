"""jetseg train: a tiny run ends with a loadable, verified bundle; folder data; CLI errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402

TINY = ["--arch", "unet-tiny", "--input-size", "32x32", "--steps", "4", "--batch", "2", "--eval-interval", "2",
        "--threads", "1", "--train-threads", "1"]


def _cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tiny_synthetic_run_writes_a_loadable_bundle(tmp_path, capsys):
    out = tmp_path / "us"
    code, stdout, err = _cli(capsys, "train", "--data", "synthetic://ultrasound?frames=40&width=160&height=120",
                             "--frames", "8", "--val-frames", "4", "--val-every", "2", "--out", str(out), *TINY)
    assert code == 0, err
    assert "held-out Dice" in stdout
    bundle = Bundle(out)  # verifies every file against the manifest
    spec = bundle.spec
    assert spec.input.size == (32, 32) and spec.input.channels == 1 and spec.classes == ["background", "lesion"]
    from jetseg.models.synthetic import field_of_view

    assert spec.input.roi == list(field_of_view("ultrasound", (120, 160)))
    prov = bundle.manifest.provenance
    assert prov["architecture"]["name"] == "unet-tiny"
    assert prov["architecture"]["kwargs"]["input_size"] == [32, 32]
    assert isinstance(prov["command"], str) and prov["command"]  # sys.argv of the process (pytest here)
    assert len(prov["data"]["train"]["sha256"]) == 64 and prov["data"]["train"]["frames_used"] == 8
    assert "seed=1000" in prov["data"]["validation"]["uri"]  # held out: other seed
    assert 0.0 <= prov["metrics"]["dice"] <= 1.0 and prov["metrics"]["backend"] == "onnxrt"
    card = (out / "MODEL_CARD.md").read_text()
    assert "not for clinical use" in card and "## Training" in card and "## Held-out accuracy" in card
    from jetseg.jetson.runners import open_runner

    frame = np.zeros((120, 160, 3), np.uint8)
    with open_runner("torch", bundle) as a, open_runner("onnxrt", bundle) as b:
        x = spec.preprocess(frame)
        assert np.max(np.abs(a.infer(x) - b.infer(x))) < 1e-4


def test_threads_0_is_jetsegs_default_for_the_loop_and_the_runner(tmp_path, capsys, opened_runners):
    argv = TINY[:-4] + ["--threads", "0", "--train-threads", "0"]
    code, _, err = _cli(capsys, "train", "--data", "synthetic://ultrasound?frames=16&width=96&height=96", "--frames",
                        "4", "--val-frames", "2", "--out", str(tmp_path / "t"), *argv)
    assert code == 0, err
    training = Bundle(tmp_path / "t").manifest.provenance["training"]
    assert training["threads"] == 0 and training["train_threads"] == 0 and training["train_threads_used"] == 2
    assert [r.threads for r in opened_runners] == [2]  # the held-out check's runner


def test_folder_of_images_and_masks(tmp_path, capsys):
    from jetseg.models.synthetic import make_frame

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i in range(10):
        image, mask = make_frame("endoscopy", i * 13, seed=9, size=(96, 128))
        cv2.imwrite(str(data / "images" / ("case%02d.png" % i)), image)
        cv2.imwrite(str(data / "masks" / ("case%02d.png" % i)), mask)
    out = tmp_path / "en"
    code, _, err = _cli(capsys, "train", "--data", str(data), "--out", str(out), "--classes", "background,polyp",
                        *TINY)
    assert code == 0, err
    bundle = Bundle(out)
    assert bundle.spec.input.channels == 3 and bundle.spec.input.color_order == "rgb"
    assert bundle.spec.input.roi is None
    prov = json.loads((out / "manifest.json").read_text())["provenance"]
    assert prov["data"]["train"]["frames_used"] == 8 and prov["data"]["validation"]["frames_used"] == 2
    assert "last 2 frames held out" in prov["data"]["validation"]["uri"]


@pytest.mark.parametrize("argv, text", [
    (["--arch", "unet-smal"], "unknown architecture 'unet-smal'; did you mean 'unet-small'?"),
    (["--input-size", "30x30", "--arch", "unet"], "U-Net input size 30x30 is invalid for depth 4"),
    (["--steps", "0"], "--steps 0 is invalid; expected a positive integer"),
    (["--threads", "-1"], "--threads -1 is invalid; expected 0 (jetseg's default) or a positive integer"),
    (["--train-threads", "-2"], "--train-threads -2 is invalid; expected 0 (jetseg's default) or a positive integer"),
    (["--input-size", "abc"], "input size 'abc' is invalid; expected HxW"),
    (["--data", "/nonexistent/folder"], "source /nonexistent/folder does not exist"),
    (["--data", "synthetic://ultrasound"], None),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, text):
    base = {"--data": "synthetic://ultrasound?frames=4&width=96&height=96", "--out": str(tmp_path / "o"),
            "--frames": "2", "--val-frames": "2", "--steps": "1", "--input-size": "32x32", "--arch": "unet-tiny"}
    args = dict(base)
    args.update(dict(zip(argv[::2], argv[1::2])))
    flat = ["train"] + [v for kv in args.items() for v in kv]
    if text is None:  # an endless source with a frame limit is fine: --frames bounds it
        code, _, err = _cli(capsys, *flat)
        assert code == 0, err
        return
    code, _, err = _cli(capsys, *flat)
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and text in err
    assert not (tmp_path / "o").exists()
