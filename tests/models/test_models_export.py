"""jetseg export: ONNX checks, TorchScript and factory routes, weights-only loading, parity, CLI errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402
from jetseg.models.export import ExportError, check_onnx, compare_with_torch, torch_to_onnx  # noqa: E402
from jetseg.spec import Spec  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx legacy exporter
from tests.fixtures import torch_models  # noqa: E402


def _spec(channels=1, classes=("background", "lesion"), size=(32, 32)):
    order = "gray" if channels == 1 else "rgb"
    return Spec.from_dict({"name": "t", "input": {"size": list(size), "channels": channels, "color_order": order},
                           "classes": list(classes)})


def _cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unet_export_parity_pytorch_vs_onnxruntime():
    from jetseg.models.archs import build_model

    spec = _spec(channels=3, size=(32, 48))
    torch.manual_seed(0)
    model = build_model("unet-small", input_size=(32, 48), in_channels=3, num_classes=2, depth=2, base_width=4)
    data = torch_to_onnx(model, spec)
    proto = check_onnx(data, spec)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 17
    ops = {n.op_type for n in proto.graph.node}
    assert "ConvTranspose" in ops and "Resize" not in ops
    assert compare_with_torch(model, data, spec) < 1e-4


def test_parity_failure_is_reported():
    spec = _spec()
    model = torch_models.build().eval()
    data = torch_to_onnx(model, spec)
    with torch.no_grad():
        model.body[2].bias += 1.0  # PyTorch now differs from the exported graph
    with pytest.raises(ExportError, match="ONNX Runtime and PyTorch outputs differ by up to"):
        compare_with_torch(model, data, spec)


def test_export_torchscript_with_flags(tmp_path, capsys):
    ts = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(torch_models.build_rgb().eval()), str(ts))
    out = tmp_path / "bundle"
    code, stdout, err = _cli(capsys, "export", str(ts), "--input-size", "32x48", "--channels", "3", "--classes",
                             "background,polyp,tool", "--mean", "0.5", "--std", "0.25", "--out", str(out))
    assert code == 0, err
    assert "torchscript" in stdout and "max |diff|" in stdout
    bundle = Bundle(out)
    spec = bundle.spec
    assert spec.input.size == (32, 48) and spec.input.channels == 3 and spec.input.color_order == "rgb"
    assert spec.classes == ["background", "polyp", "tool"] and spec.input.mean == [0.5, 0.5, 0.5]
    assert bundle.manifest.provenance["export"]["route"] == "torchscript"
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((1, 3, 32, 48), np.float32)})[0].shape == (1, 3, 32, 48)


def test_export_factory_with_weights_and_torch_runner(tmp_path, capsys):
    torch.manual_seed(1)
    trained = torch_models.build()
    weights = tmp_path / "w.pt"
    torch.save(trained.state_dict(), str(weights))
    out = tmp_path / "bundle"
    code, _, err = _cli(capsys, "export", "tests.fixtures.torch_models:build", "--weights", str(weights),
                        "--input-size", "16x16", "--channels", "1", "--out", str(out))
    assert code == 0, err
    bundle = Bundle(out)
    assert (out / "weights.pt").is_file()
    x = np.random.default_rng(0).standard_normal((1, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = trained(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.max(np.abs(got - expected)) < 1e-5  # the weights, not the factory's fresh init, were exported
    from jetseg.jetson.runners import open_runner

    with open_runner("torch", bundle, module="tests.fixtures.torch_models:build") as runner:  # code: from the user
        assert np.max(np.abs(runner.infer(x) - expected)) < 1e-5


def test_export_onnx_is_checked_and_copied(tmp_path, capsys):
    spec = _spec(size=(16, 16))
    src = tmp_path / "m.onnx"
    src.write_bytes(torch_to_onnx(torch_models.build(), spec))
    code, stdout, err = _cli(capsys, "export", str(src), "--input-size", "16x16", "--channels", "1",
                             "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert (tmp_path / "b" / "model.onnx").read_bytes() == src.read_bytes()


def _onnx_file(tmp_path, dynamic=False, opset=17, name="input"):
    path = tmp_path / ("m_%s_%d_%s.onnx" % (dynamic, opset, name))
    kwargs = {"dynamic_axes": {name: {0: "n", 2: "h", 3: "w"}}} if dynamic else {}
    torch.onnx.export(torch_models.build().eval(), (torch.zeros(1, 1, 16, 16),), str(path), opset_version=opset,
                      input_names=[name], output_names=["logits"], dynamo=False, **kwargs)
    return path


@pytest.mark.parametrize("kind, text", [
    ("dynamic", "has a dynamic shape"),
    ("name", "has inputs ['image']; the spec expects exactly one input named 'input' (use --input-name image"),
    ("size", "has shape [1, 1, 16, 16]; the spec expects [1, 1, 32, 32]"),
])
def test_onnx_checks(tmp_path, kind, text):
    path = _onnx_file(tmp_path, dynamic=kind == "dynamic", name="image" if kind == "name" else "input")
    spec = _spec(size=(32, 32) if kind == "size" else (16, 16))
    with pytest.raises(ExportError) as err:
        check_onnx(path, spec)
    assert text in str(err.value)


def test_onnx_opset_above_17_is_rejected(tmp_path):
    path = _onnx_file(tmp_path)
    proto = onnx.load(str(path))
    proto.opset_import[0].version = 18
    onnx.save(proto, str(path))
    with pytest.raises(ExportError, match=r"uses ONNX opset 18; TensorRT 8.5 parses opset <= 17 \(re-export with opset_version=17\)"):
        check_onnx(path, _spec(size=(16, 16)))


def test_cli_errors_are_one_line(tmp_path):
    def run(*argv):
        proc = subprocess.run([sys.executable, "-m", "jetseg", "export", *argv], capture_output=True, text=True,
                              cwd=str(tmp_path), timeout=120)
        return proc.returncode, proc.stderr.strip()

    code, err = run("nothing.onnx", "--input-size", "16x16", "--channels", "1", "--out", "b")
    assert code != 0 and err == "jetseg export: error: ONNX model nothing.onnx does not exist"
    code, err = run("nothing.onnx", "--out", "b")
    assert code != 0 and len(err.splitlines()) == 1 and "give at least --input-size HxW and --channels" in err
    code, err = run("nomodule_xyz:build", "--input-size", "16x16", "--channels", "1", "--out", "b")
    assert code != 0 and len(err.splitlines()) == 1 and "cannot import nomodule_xyz" in err
    code, err = run("model.bin", "--input-size", "16x16", "--channels", "1", "--out", "b")
    assert code != 0 and "expected MODEL.onnx, MODEL.ts (TorchScript) or package.module:factory" in err
    bad = tmp_path / "bad.ts"
    bad.write_bytes(b"not a model")
    code, err = run(str(bad), "--input-size", "16x16", "--channels", "1", "--out", "b")
    assert code != 0 and len(err.splitlines()) == 1 and "is not a TorchScript model" in err
    code, err = run(str(bad), "--input-size", "16x15x2", "--channels", "1", "--out", "b")
    assert code != 0 and "input size '16x15x2' is invalid; expected HxW" in err
    assert not (tmp_path / "b").exists()
