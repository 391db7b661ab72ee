"""Two-input models (registration: moving + fixed -> field): every runner takes the fixed image in
``extra_inputs``, the base class checks it like the main input, and a bundle whose model lacks the spec's
``registration.fixed_input`` or ``warped_output`` is refused when opened (docs/tasks.md, "Bundle checks")."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.bundle import Bundle, save_bundle
from jetseg.errors import BundleError, RunnerError
from jetseg.jetson.runners import open_runner
from tests.fixtures.bundles import conv_bundle, registration_bundle
from tests.fixtures.models import tiny_registration
from tests.fixtures.specs import registration_spec


def _pair(n: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 32, 32), dtype=np.float32), rng.random((n, 1, 32, 32), dtype=np.float32)


def _expected(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """The tiny model by hand: Conv 3x3 (pads 1) over the concatenated pair."""
    w = np.random.default_rng(0).normal(0.0, 0.05, size=(2, 2, 3, 3)).astype(np.float32)
    pair = np.pad(np.concatenate([moving, fixed], axis=1), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((moving.shape[0], 2) + moving.shape[2:], np.float64)
    for dy in range(3):
        for dx in range(3):
            window = pair[:, :, dy:dy + 32, dx:dx + 32]
            out += np.einsum("oc,nchw->nohw", w[:, :, dy, dx], window)
    return out.astype(np.float32)


@pytest.mark.parametrize("backend", ["onnxrt", "openvino"])
def test_runner_feeds_the_fixed_image(tmp_path, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    bundle = registration_bundle(tmp_path / "b")
    moving, fixed = _pair(3)
    with open_runner(backend, bundle, threads=1, batch_size=3) as runner:
        assert runner.input_names() == ("moving", "fixed")
        flow = runner.infer(moving, {"fixed": fixed})  # a batch-1 model: run frame by frame
        swapped = runner.infer(fixed, {"fixed": moving})
    assert flow.shape == (3, 2, 32, 32) and flow.dtype == np.float32
    np.testing.assert_allclose(flow, _expected(moving, fixed), atol=1e-4)
    assert np.abs(flow - swapped).max() > 1e-3  # the two inputs are not interchangeable


@pytest.mark.parametrize("extra, message", [
    (None, "input 'fixed': missing; this model (task registration) takes 'moving', 'fixed', so pass "
           "extra_inputs={'fixed': array} shaped like input 'moving'"),
    ({"fixed": np.zeros((1, 1, 32, 32), np.float64)}, "input 'fixed': received dtype float64; expected float32"),
    ({"fixed": np.zeros((1, 1, 16, 32), np.float32)},
     "input 'fixed': received shape (1, 1, 16, 32); expected (1, 1, 32, 32), the shape of input 'moving'"),
    ({"fixed": [[0.0]]}, "input 'fixed': received list; expected a numpy array of shape (1, 1, 32, 32)"),
    ({"fixed": np.zeros((1, 1, 32, 32), np.float32), "reference": np.zeros((1, 1, 32, 32), np.float32)},
     "input 'reference': received it, but this model's inputs are 'moving', 'fixed' (spec.yaml)"),
])
def test_runner_checks_the_fixed_image(tmp_path, extra, message):
    bundle = registration_bundle(tmp_path / "b")
    with open_runner("onnxrt", bundle, threads=1) as runner:
        with pytest.raises(RunnerError) as err:
            runner.infer(_pair()[0], extra)
    assert message in str(err.value)


def test_one_input_model_refuses_extra_inputs(tmp_path):
    with open_runner("onnxrt", conv_bundle(tmp_path / "b"), threads=1) as runner:
        x = np.zeros((1, 1, 32, 32), np.float32)
        assert runner.infer(x).shape == (1, 2, 32, 32) and runner.infer(x, {}).shape == (1, 2, 32, 32)
        with pytest.raises(RunnerError, match="input 'fixed': received it, but this model's inputs are 'input'"):
            runner.infer(x, {"fixed": x})


@pytest.mark.parametrize("registration, message", [
    ({"fixed_input": "reference"}, "spec.yaml names input 'reference' but model.onnx has inputs ['fixed', 'moving']; "
                                   "fix registration.fixed_input in spec.yaml"),
    ({"warped_output": "warped"}, "spec.yaml names output 'warped' but model.onnx has outputs ['flow']; "
                                  "fix registration.warped_output in spec.yaml"),
])
def test_bundle_checks_the_registration_inputs_and_outputs(tmp_path, registration, message):
    spec = registration_spec(warped=None)
    for key, value in registration.items():
        setattr(spec.registration, key, value)
    with pytest.raises(BundleError) as err:  # save_bundle opens what it wrote before it takes the name
        save_bundle(tmp_path / "b", tiny_registration().SerializeToString(), spec)
    assert message in str(err.value)
    assert not (tmp_path / "b").exists()  # a bundle that does not open is never left behind


def test_trt_runner_feeds_the_fixed_image_through_the_double(tmp_path, monkeypatch):
    from jetseg.engines.build import build_engine
    from jetseg.jetson.device import info
    from tests.fixtures import fake_tensorrt

    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))
    fake_tensorrt.install(monkeypatch, "8.5.2.2", cuda=True)
    bundle = Bundle(registration_bundle(tmp_path / "b"))
    build_engine(bundle, "fp16")
    moving, fixed = _pair(2)
    with open_runner("trt", bundle, batch_size=2) as runner:
        flow = runner.infer(moving, {"fixed": fixed})
    np.testing.assert_allclose(flow, _expected(moving, fixed), atol=1e-4)
