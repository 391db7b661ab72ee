"""The openvino runner on tiny real ONNX bundles: FP32 and Q/DQ INT8 agree with ONNX Runtime, options and errors
read like the other runners'. Skips only when the openvino module is missing (the JetPack 5 twin)."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.bundle import Bundle, save_bundle
from jetseg.errors import BundleError, RunnerError
from jetseg.jetson.runners import open_runner
from tests.fixtures.bundles import conv_bundle, mismatched_bundle
from tests.fixtures.models import qdq_model
from tests.fixtures.specs import tiny_spec

pytest.importorskip("openvino")


def _input(seed: int = 0, n: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 32, 32), dtype=np.float32)


@pytest.mark.parametrize("model", [None, qdq_model()], ids=["fp32", "int8-qdq"])
def test_openvino_matches_onnx_runtime(tmp_path, model):
    bundle = conv_bundle(tmp_path / "b", model=model, precision="fp32" if model is None else "int8")
    x = _input()
    with open_runner("onnxrt", bundle, threads=1) as ort, open_runner("openvino", bundle, threads=1) as ov:
        expected, got = ort.infer(x), ov.infer(x)
        assert got.dtype == np.float32 and got.shape == expected.shape == (1, 2, 32, 32)
        # Q/DQ rounding may differ by one step on a few values; FP32 agrees to float precision
        tol = 1e-4 if model is None else 0.05
        assert np.abs(got - expected).max() <= tol * max(1.0, np.abs(expected).max())
        info = ov.describe()
    assert info["backend"] == "openvino" and info["threads"] == 1 and info["device"] == "CPU"
    assert info["inference_precision"] == "f32" and info["threads_used"] == "1"


def test_openvino_output_is_not_overwritten_by_the_next_call(tmp_path):
    bundle = conv_bundle(tmp_path / "b")
    with open_runner("openvino", bundle, threads=1) as ov:
        first = ov.infer(_input(1))
        kept = first.copy()
        ov.infer(_input(2))
    assert np.array_equal(first, kept)


def test_openvino_runs_a_batch_on_a_batch_one_model(tmp_path):
    bundle = conv_bundle(tmp_path / "b")
    x = _input(3, n=3)
    with open_runner("openvino", bundle, batch_size=3) as ov:
        out = ov.infer(x)
        assert out.shape == (3, 2, 32, 32)
        assert np.allclose(out[1:2], ov.infer(x[1:2]))


def test_openvino_options_and_input_errors(tmp_path):
    bundle = conv_bundle(tmp_path / "b")
    with pytest.raises(RunnerError, match=r"unknown openvino backend option 'thread' \(did you mean 'threads'\?\)"):
        open_runner("openvino", bundle, thread=2)
    with pytest.raises(RunnerError, match=r"openvino backend option threads=-1: expected"):
        open_runner("openvino", bundle, threads=-1)
    with pytest.raises(RunnerError, match=r"precision_hint=.fp8.: expected"):
        open_runner("openvino", bundle, precision_hint="fp8")
    with open_runner("openvino", bundle) as ov:
        with pytest.raises(RunnerError, match=r"input 'input': received dtype float64; expected float32"):
            ov.infer(np.zeros((1, 1, 32, 32)))


@pytest.mark.parametrize("model_size, model_input, message", [
    (48, "input", r"model.onnx input 'input' has shape \[1, 1, 48, 48\] but spec.yaml expects \[1, 1, 32, 32\] "
                  r"\(from input.channels and input.size\); re-export the model or fix spec.yaml"),
    (32, "image", r"spec.yaml names input 'input' but model.onnx has inputs \['image'\]; fix input.name in "
                  r"spec.yaml or re-export the model"),
], ids=["shape", "name"])
def test_a_model_that_differs_from_its_spec_reads_the_same_on_every_cpu_runner(tmp_path, monkeypatch, model_size,
                                                                               model_input, message):
    # without onnx the bundle cannot check its model at load; each runner checks what its runtime loaded
    monkeypatch.setattr("jetseg.bundle.available", lambda name: name != "onnx")
    bundle = Bundle(mismatched_bundle(tmp_path / "bad", model_size=model_size, model_input=model_input))
    errors = []
    for backend in ("onnxrt", "openvino"):
        runner = open_runner(backend, bundle)
        with pytest.raises(BundleError, match=message) as err:
            runner.activate()
        assert not runner.is_active
        errors.append(str(err.value))
    assert errors[0] == errors[1]


def test_openvino_names_a_spec_mismatch_and_an_unreadable_model(tmp_path):
    bundle = conv_bundle(tmp_path / "b")
    runner = open_runner("openvino", bundle)
    runner._output_name = "masks"  # a spec naming an output the model does not have
    with pytest.raises(BundleError, match=r"spec.yaml names output 'masks' but model.onnx has outputs \['logits'\]"):
        runner.activate()
    broken = save_bundle(tmp_path / "c", b"not an onnx file", tiny_spec(classes=("background", "target")))
    with pytest.raises(RunnerError, match=r"OpenVINO cannot load .*model.onnx on CPU: ") as caught:
        open_runner("openvino", broken).activate()
    assert "Unable to read the model" in str(caught.value)  # the reason, not the C++ source location
    assert "Exception from" not in str(caught.value)


def test_the_precision_a_compiled_model_ran_in_is_read_from_its_runtime_model():
    from jetseg.jetson.runners.openvino import executed_precision

    class Op:
        def __init__(self, precision):
            self.info = {"runtimePrecision": precision}

        def get_rt_info(self):
            return self.info

    class Compiled:
        def __init__(self, *precisions):
            self.ops = [Op(p) for p in precisions]

        def get_runtime_model(self):
            return self

        def get_ops(self):
            return self.ops

    # OpenVINO's bf16 default on the bundled U-Net: 91 f32 layers (reorders, output), 32 bf16 (the convolutions)
    assert executed_precision(Compiled(*["f32"] * 91 + ["bf16"] * 32 + ["i32"] * 23)) == "bf16"
    assert executed_precision(Compiled(*["f32"] * 4 + ["f16"] * 102)) == "f16"
    assert executed_precision(Compiled(*["f32"] * 50 + ["u8"] * 41 + ["i8"] * 23 + ["bf16"] * 3)) == "int8"
    assert executed_precision(Compiled("f32", "i32")) == "f32"
    assert executed_precision(Compiled()) is None
