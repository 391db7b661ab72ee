"""torch runner: rebuilds the architecture from the manifest, loads weights-only, matches ONNX Runtime."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from jetseg.bundle import save_bundle  # noqa: E402
from jetseg.errors import RunnerError  # noqa: E402
from jetseg.jetson.runners import open_runner  # noqa: E402
from jetseg.models.archs import build_model, describe  # noqa: E402
from jetseg.models.export import torch_to_onnx  # noqa: E402
from jetseg.spec import Spec  # noqa: E402


def _spec():
    return Spec.from_dict({"name": "t", "input": {"size": [32, 32], "channels": 1},
                           "classes": ["background", "lesion"]})


def _bundle(tmp_path, with_weights=True, architecture=True):
    spec = _spec()
    kwargs = {"input_size": [32, 32], "in_channels": 1, "num_classes": 2}
    torch.manual_seed(0)
    model = build_model("unet-tiny", **kwargs).eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    prov = {"architecture": describe("unet-tiny", kwargs)} if architecture else {}
    extra = {"weights.pt": buf.getvalue()} if with_weights else {}
    return save_bundle(tmp_path / "b", torch_to_onnx(model, spec), spec, extra_files=extra, provenance=prov)


def test_torch_matches_onnxrt(tmp_path):
    bundle = _bundle(tmp_path)
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    with open_runner("torch", bundle, threads=1) as runner:
        got = runner.infer(x)
        assert runner.describe()["architecture"] == "unet-tiny"
    with open_runner("onnxrt", bundle) as ref:
        expected = ref.infer(x)
    assert got.shape == (1, 2, 32, 32) and got.dtype == np.float32
    assert np.max(np.abs(got - expected)) < 1e-4


def test_checks_input_like_every_runner(tmp_path):
    with open_runner("torch", _bundle(tmp_path)) as runner:
        with pytest.raises(RunnerError, match=r"received shape \(1, 3, 32, 32\); expected \(1, 1, 32, 32\)"):
            runner.infer(np.zeros((1, 3, 32, 32), np.float32))


def test_bundle_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(RunnerError, match="has no weights.pt; the torch backend needs the PyTorch weights"):
        open_runner("torch", _bundle(tmp_path, with_weights=False))


def test_bundle_without_architecture_is_a_clear_error(tmp_path):
    with pytest.raises(RunnerError, match="does not record its architecture"):
        open_runner("torch", _bundle(tmp_path, architecture=False))


def test_weights_are_loaded_without_pickle_code(tmp_path):
    bundle = _bundle(tmp_path)
    path = bundle.path / "weights.pt"
    torch.save({"evil": _Evil()}, str(path))  # a pickle that would run code if unpickled fully
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    from jetseg.bundle import sha256_file

    manifest["files"]["weights.pt"] = sha256_file(path)
    (bundle.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunnerError, match="cannot load .*weights.pt as weights only"):
        open_runner("torch", bundle.path).activate()
    assert not (tmp_path / "pwned").exists()


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))
