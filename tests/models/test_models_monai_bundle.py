"""jetseg export of MONAI bundles made with MONAI's own API: the spec from metadata.json, the three model files,
the sigmoid ending of an inference config, and the refusals (code in configs, 3-D networks, no model)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("monai")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402
from jetseg.models.monai_bundle import MonaiBundleError, normalisation, read_bundle, spec_data  # noqa: E402
from tests.fixtures import monai_bundles  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
              pytest.mark.filterwarnings("ignore:ONNX export mode:UserWarning")]


def _export(capsys, bundle, out, *flags):
    code = main(["export", str(bundle), "--out", str(out)] + list(flags))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _monai_output(bundle_dir, x):
    """What MONAI's own network (network_def + model.pt) gives for ``x``."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle_dir / "configs" / "inference.json"))
    net = parser.get_parsed_content("network_def").eval()
    net.load_state_dict(torch.load(str(bundle_dir / "models" / "model.pt"), weights_only=True))
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_softmax_bundle_from_model_pt_matches_metadata_and_runs(tmp_path, capsys):
    src = monai_bundles.build(tmp_path / "monai", value_range=(-1, 1), size=(32, 48))
    code, stdout, err = _export(capsys, src, tmp_path / "b")
    assert code == 0, err
    assert "monai-config" in stdout
    bundle = Bundle(tmp_path / "b")
    spec = bundle.spec
    meta = json.loads((src / "configs" / "metadata.json").read_text())["network_data_format"]
    assert list(spec.input.size) == meta["inputs"]["image"]["spatial_shape"] == [32, 48]
    assert spec.input.channels == meta["inputs"]["image"]["num_channels"] == 1
    assert spec.classes == [meta["outputs"]["pred"]["channel_def"][str(i)] for i in range(3)]
    assert spec.output.kind == "softmax" and spec.output.activation == "logits"
    assert spec.input.mean == [0.5] and spec.input.std == [0.5]  # [0, 1] frames -> value_range [-1, 1]
    provenance = bundle.manifest.provenance["export"]["monai_bundle"]
    assert (provenance["name"], provenance["version"]) == ("echo_unet", "0.2.1")
    assert set(provenance["sha256"]) == {"configs/metadata.json", "configs/inference.json", "models/model.pt"}
    from jetseg.jetson.runners import open_runner

    x = np.random.default_rng(0).standard_normal((1, 1, 32, 48)).astype(np.float32)
    with open_runner("onnxrt", bundle) as runner:
        got = runner.infer(x)
    assert np.max(np.abs(got - _monai_output(src, x))) < 1e-4  # the bundle's trained weights, not a fresh init


def test_sigmoid_ending_from_model_ts(tmp_path, capsys):
    src = monai_bundles.build(tmp_path / "monai", kind="sigmoid", classes=["lv"], torchscript=True)
    code, stdout, err = _export(capsys, src, tmp_path / "b")
    assert code == 0, err
    assert "monai-torchscript" in stdout
    spec = Bundle(tmp_path / "b").spec
    assert spec.output.kind == "sigmoid" and spec.output.threshold == 0.4
    assert spec.classes == ["background", "lv"] and spec.output_channels == 1
    assert (tmp_path / "b" / "model.ts").is_file()  # the PyTorch reference for the torch runner


def test_model_onnx_is_used_first_with_its_tensor_names(tmp_path, capsys):
    src = monai_bundles.build(tmp_path / "monai")
    net = read_bundle(src)
    from jetseg.models.monai_bundle import network_from_config

    model = network_from_config(net).eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 32, 32),), str(src / "models" / "model.onnx"), opset_version=17,
                      input_names=["image"], output_names=["pred"], dynamo=False)
    code, stdout, err = _export(capsys, src, tmp_path / "b", "--classes", "background,cavity,wall")
    assert code == 0, err
    spec = Bundle(tmp_path / "b").spec
    assert "monai-onnx" in stdout and (spec.input.name, spec.output.name) == ("image", "pred")
    assert spec.classes == ["background", "cavity", "wall"]  # the flags override metadata.json


def test_an_exported_monai_bundle_calibrates_runs_and_benches(tmp_path, capsys):
    from tests.fixtures.media import write_png_scans

    src = monai_bundles.build(tmp_path / "monai")
    assert _export(capsys, src, tmp_path / "b")[0] == 0
    scans = write_png_scans(tmp_path / "scans", 10, False)
    code = main(["calibrate", str(tmp_path / "b"), "--scans", str(scans), "--count", "6", "--holdout", "4",
                 "--target", "cpu", "--out", str(tmp_path / "int8")])
    assert code == 0, capsys.readouterr().err
    assert Bundle(tmp_path / "int8").spec.classes == ["background", "lv", "myocardium"]
    code = main(["run", "--model", str(tmp_path / "int8"), "--backend", "onnxrt", "--source", str(scans),
                 "--sink", "masks://%s" % (tmp_path / "masks")])
    assert code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "masks").rglob("*.png"))) == 10
    code = main(["bench", str(tmp_path / "int8"), "--reference", str(tmp_path / "b"), "--data", str(scans),
                 "--backend", "onnxrt", "--min-time", "0.02", "--warmup", "1", "--min-runs", "3", "--no-naive",
                 "--no-plots", "--out", str(tmp_path / "report")])
    assert code == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "report" / "report.json").read_text())["results"]
    assert {row["precision"] for row in rows} >= {"fp32", "int8"}


@pytest.mark.parametrize("change, text", [
    ({"network_def": {"_target_": "os.system", "command": "true"}},
     "network_def._target_ is 'os.system'; jetseg instantiates only MONAI's classes"),
    ({"network_def": dict(monai_bundles.NETWORK_DEF, in_channels="$1 + 0")},
     "network_def.in_channels is '$1 + 0', an expression or reference; jetseg runs no code from a bundle"),
])
def test_config_code_is_refused(tmp_path, capsys, change, text):
    src = monai_bundles.build(tmp_path / "monai")
    config = json.loads((src / "configs" / "inference.json").read_text())
    config.update(change)
    (src / "configs" / "inference.json").write_text(json.dumps(config))
    code, _, err = _export(capsys, src, tmp_path / "b")
    assert code != 0 and text in err and "Traceback" not in err


def test_refusals_say_what_was_found(tmp_path, capsys):
    src = monai_bundles.build(tmp_path / "monai", size=(16, 16, 16))
    with pytest.raises(MonaiBundleError, match=r"spatial_shape is \[16, 16, 16\]; jetseg runs 2-D networks"):
        spec_data(read_bundle(src))
    flexible = monai_bundles.build(tmp_path / "flex", size=("16*n", "16*n"))
    with pytest.raises(MonaiBundleError, match="is not a fixed size; give --input-size HxW"):
        spec_data(read_bundle(flexible))
    assert spec_data(read_bundle(flexible), input_size=(64, 64))["input"]["size"] == [64, 64]
    (flexible / "models" / "model.pt").unlink()
    code, _, err = _export(capsys, flexible, tmp_path / "b", "--input-size", "64x64")
    assert code != 0 and "has none of models/model.onnx, models/model.ts, models/model.pt" in err
    (tmp_path / "plain").mkdir()
    code, _, err = _export(capsys, tmp_path / "plain", tmp_path / "c", "--input-size", "8x8", "--channels", "1")
    assert code != 0 and "is a folder but not a MONAI bundle (no configs/metadata.json)" in err


@pytest.mark.parametrize("value_range, mean, std", [((0, 1), 0.0, 1.0), ((-1, 1), 0.5, 0.5), ((0, 255), 0.0, 1 / 255)])
def test_value_range_maps_unit_frames(value_range, mean, std):
    means, stds = normalisation(list(value_range), 1, "here")
    assert means == [pytest.approx(mean)] and stds == [pytest.approx(std)]
    x = np.array([0.0, 1.0])
    assert np.allclose((x - means[0]) / stds[0], value_range)
