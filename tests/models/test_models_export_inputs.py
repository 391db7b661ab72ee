"""Models as users have them: a TorchScript file kept as the PyTorch reference, a factory outside PYTHONPATH."""
from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402
from jetseg.errors import RunnerError  # noqa: E402
from jetseg.jetson.runners import open_runner  # noqa: E402
from tests.fixtures import torch_models  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx legacy exporter


def test_torchscript_is_kept_and_is_the_torch_reference(tmp_path, capsys) -> None:
    torch.manual_seed(3)
    ts = tmp_path / "user_model.ts"
    model = torch_models.build().eval()
    torch.jit.save(torch.jit.script(model), str(ts))
    out = tmp_path / "bundle"
    assert main(["export", str(ts), "--input-size", "16x16", "--channels", "1", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    bundle = Bundle(out)
    assert bundle.torchscript_path == out / "model.ts" and "model.ts" in bundle.manifest.files
    assert bundle.weights_path is None
    assert bundle.manifest.provenance["architecture"] == {"torchscript": "model.ts"}
    x = np.random.default_rng(0).standard_normal((1, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    with open_runner("torch", bundle) as runner:
        assert np.max(np.abs(runner.infer(x) - expected)) < 1e-6
        assert runner.describe()["architecture"] == "model.ts"


def test_torchscript_with_weights_keeps_the_loaded_weights(tmp_path, capsys) -> None:
    torch.manual_seed(4)
    trained = torch_models.build().eval()
    weights = tmp_path / "w.pt"
    torch.save(trained.state_dict(), str(weights))
    ts = tmp_path / "fresh.ts"
    torch.jit.save(torch.jit.script(torch_models.build().eval()), str(ts))  # another init
    out = tmp_path / "bundle"
    assert main(["export", str(ts), "--weights", str(weights), "--input-size", "16x16", "--channels", "1",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    x = np.ones((1, 1, 16, 16), np.float32)
    with torch.no_grad():
        expected = trained(torch.from_numpy(x)).numpy()
    with open_runner("torch", Bundle(out)) as runner:
        assert np.max(np.abs(runner.infer(x) - expected)) < 1e-6


def test_factory_from_module_path_without_pythonpath(tmp_path, capsys) -> None:
    package = tmp_path / "src" / "usernet"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(textwrap.dedent('''
        import torch

        def build():
            return torch.nn.Conv2d(1, 2, 3, padding=1)
    '''))
    weights = tmp_path / "w.pt"
    torch.manual_seed(5)
    reference = torch.nn.Conv2d(1, 2, 3, padding=1)
    torch.save(reference.state_dict(), str(weights))
    out = tmp_path / "bundle"
    argv = ["export", "usernet.model:build", "--weights", str(weights), "--input-size", "16x16", "--channels", "1",
            "--out", str(out)]
    assert main(argv) != 0
    assert "cannot import usernet.model for usernet.model:build" in capsys.readouterr().err
    assert main(argv + ["--module-path", str(tmp_path / "src")]) == 0, capsys.readouterr().err
    assert str(tmp_path / "src") not in sys.path and "usernet" in sys.modules
    bundle = Bundle(out)
    assert bundle.manifest.provenance["architecture"] == {"factory": "usernet.model:build",
                                                             "module_path": str((tmp_path / "src").resolve())}
    for name in [m for m in sys.modules if m == "usernet" or m.startswith("usernet.")]:
        del sys.modules[name]  # the runner imports it again from the folder the command line gives
    x = np.ones((1, 1, 16, 16), np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with pytest.raises(RunnerError, match="a bundle never runs code"):  # never from the recorded folder
        open_runner("torch", bundle)
    assert "usernet" not in sys.modules
    with open_runner("torch", bundle, module="usernet.model:build", module_path=str(tmp_path / "src")) as runner:
        assert np.max(np.abs(runner.infer(x) - expected)) < 1e-6


def test_module_path_that_is_not_a_folder(tmp_path, capsys) -> None:
    code = main(["export", "usernet.model:build", "--input-size", "16x16", "--channels", "1", "--module-path",
                 str(tmp_path / "nope"), "--out", str(tmp_path / "b")])
    assert code != 0
    assert "--module-path %s is not a folder" % (tmp_path / "nope") in capsys.readouterr().err
