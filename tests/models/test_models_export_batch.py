"""jetseg export --batch: a fixed N or a dynamic batch axis, run as one batch by the CPU runners and kept
through calibration (issue 23: several streams in one daemon run as one batch)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402
from jetseg.jetson.runners import open_runner  # noqa: E402
from jetseg.models.export import ExportError, check_onnx, parse_batch  # noqa: E402
from jetseg.onnxgraph import dims  # noqa: E402
from jetseg.spec import Spec  # noqa: E402
from tests.fixtures.media import write_png_scans  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx legacy exporter
FACTORY = "tests.fixtures.torch_models:build"


def _export(tmp_path, capsys, *extra, name="bundle"):
    out = tmp_path / name
    code = main(["export", FACTORY, "--input-size", "32x32", "--channels", "1", "--out", str(out)] + list(extra))
    return code, out, capsys.readouterr().err


def _batch_dim(path):
    return dims(onnx.load(str(path)).graph.input[0])[0]


def _frames(n):
    return np.random.default_rng(3).standard_normal((n, 1, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("backend", ["onnxrt", "openvino"])
def test_a_dynamic_batch_runs_as_one_batch_with_the_values_of_single_frames(tmp_path, capsys, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    code, out, err = _export(tmp_path, capsys, "--batch", "dynamic")
    assert code == 0, err
    assert _batch_dim(Bundle(out).model_path) == "N"
    assert Bundle(out).manifest.provenance["export"]["batch"] == "dynamic"
    x = _frames(3)
    options = {"precision_hint": "f32"} if backend == "openvino" else {}  # exact, as ONNX Runtime
    with open_runner(backend, Bundle(out), batch_size=3, threads=1, **options) as runner:
        together = runner.infer(x)
        alone = np.concatenate([runner.infer(x[i:i + 1]) for i in range(3)])
    assert together.shape == (3, 2, 32, 32)
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_a_fixed_batch_is_exported_as_that_batch(tmp_path, capsys):
    code, out, err = _export(tmp_path, capsys, "--batch", "2")
    assert code == 0, err
    assert _batch_dim(Bundle(out).model_path) == 2
    code, out, err = _export(tmp_path, capsys, name="default")
    assert code == 0, err
    assert _batch_dim(Bundle(out).model_path) == 1


@pytest.mark.parametrize("value", ["0", "-1", "four", "2.5"])
def test_a_bad_batch_is_one_line_and_writes_nothing(tmp_path, capsys, value):
    code, out, err = _export(tmp_path, capsys, "--batch", value)
    assert code != 0 and not out.exists()
    assert err.count("\n") == 1 and "--batch" in err and "dynamic" in err and "Traceback" not in err
    with pytest.raises(ExportError):
        parse_batch(value)


def test_an_onnx_file_keeps_its_own_batch(tmp_path, capsys):
    code, first, err = _export(tmp_path, capsys, "--batch", "dynamic")
    assert code == 0, err
    model = str(Bundle(first).model_path)
    code = main(["export", model, "--input-size", "32x32", "--channels", "1", "--out", str(tmp_path / "b2"),
                 "--batch", "4"])
    err = capsys.readouterr().err
    assert code != 0 and "keeps its own batch" in err and not (tmp_path / "b2").exists()
    # without --batch the dynamic ONNX is accepted as it is
    assert main(["export", model, "--input-size", "32x32", "--channels", "1", "--out", str(tmp_path / "b3")]) == 0
    assert _batch_dim(Bundle(tmp_path / "b3").model_path) == "N"


def test_only_the_batch_may_be_dynamic(tmp_path):
    spec = Spec.from_dict({"name": "t", "input": {"size": [32, 32], "channels": 1, "color_order": "gray"},
                           "classes": ["background", "lesion"]})
    from tests.fixtures import torch_models

    path = tmp_path / "hw.onnx"
    torch.onnx.export(torch_models.build().eval(), (torch.zeros(1, 1, 32, 32),), str(path), opset_version=17,
                      input_names=["input"], output_names=["logits"], dynamo=False,
                      dynamic_axes={"input": {0: "n", 2: "h"}})
    with pytest.raises(ExportError, match="only the batch"):
        check_onnx(path, spec)


def test_calibration_keeps_a_dynamic_batch(tmp_path, capsys):
    code, fp32, err = _export(tmp_path, capsys, "--batch", "dynamic")
    assert code == 0, err
    scans = write_png_scans(tmp_path / "scans", 12, False)
    out = tmp_path / "int8"
    code = main(["calibrate", str(fp32), "--scans", str(scans), "--out", str(out), "--count", "8", "--holdout", "4",
                 "--gate-dice", "0.2"])
    assert code == 0, capsys.readouterr().err
    int8 = Bundle(out)
    assert _batch_dim(int8.model_path) == "N"
    x = _frames(3)
    with open_runner("onnxrt", int8, batch_size=3, threads=1) as runner:
        together = runner.infer(x)
        alone = np.concatenate([runner.infer(x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=1e-4)
