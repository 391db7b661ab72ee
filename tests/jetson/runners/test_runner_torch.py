"""torch runner: rebuilds the architecture from the manifest, loads weights-only, matches ONNX Runtime."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from jetseg.errors import RunnerError  # noqa: E402
from jetseg.jetson.runners import open_runner  # noqa: E402
from tests.fixtures.bundles import torch_unet_bundle  # noqa: E402


def _bundle(tmp_path, with_weights=True, architecture=True):
    return torch_unet_bundle(tmp_path / "b", weights=with_weights, architecture=architecture)


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
