"""The trt runner end to end against the TensorRT double (fake_tensorrt.py) and the CUDA runtime double
(fake_cudart.py): engine lookup,
buffers and addresses, copies, batching, clean-up. The real thing runs in test_on_device.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jetseg.engines.build import build_engine
from jetseg.errors import DeviceError
from jetseg.jetson.device import info
from jetseg.jetson.runners import open_runner
from tests.fixtures import fake_cudart, fake_tensorrt


@pytest.fixture
def device(monkeypatch):
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))
    return fake_tensorrt.install(monkeypatch, "8.5.2.2", cuda=True)


def test_runner_matches_onnxruntime_and_frees_its_buffers(tiny_bundle, device):
    build_engine(tiny_bundle, "fp16")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, size=(48, 64), dtype=np.uint8) for _ in range(3)]
    batch = tiny_bundle.spec.preprocess_batch(frames)
    with open_runner("onnxrt", tiny_bundle) as ref:
        expected = np.concatenate([ref.infer(batch[i:i + 1]) for i in range(3)])
    runner = open_runner("trt", tiny_bundle, batch_size=3)
    with runner:
        assert fake_cudart.live() == 5  # per I/O tensor a device and a pinned host buffer, and one stream
        got = runner.infer(batch)  # an engine of batch 1 runs the three frames one by one
        info_ = runner.describe()
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.float32 and got.shape == (3, 2, 32, 32)
    assert device.executions == 3
    assert info_["engine"].startswith("xavier-sm72-trt8.5.2-fp16-gpu-") and info_["precision"] == "fp16"
    assert fake_cudart.live() == 0  # buffers freed and the stream destroyed on deactivate


def test_failed_activation_frees_everything(tiny_bundle, device):
    build_engine(tiny_bundle, "fp16")
    runner = open_runner("trt", tiny_bundle, cuda_graph="1")
    with pytest.raises(RuntimeError, match="cannot run under CUDA graph capture"):  # fails inside the capture
        runner.activate()
    assert not runner.is_active
    assert fake_cudart.live() == 0  # capture ended, its graph, the buffers and the stream freed


def test_a_failed_cuda_call_fails_activation_with_its_error_and_frees_the_rest(tiny_bundle, device):
    build_engine(tiny_bundle, "fp16")
    runner = open_runner("trt", tiny_bundle)
    fake_cudart.fail_next("cudaMalloc", 2)  # the first device buffer: cudaErrorMemoryAllocation
    with pytest.raises(DeviceError, match=r"cudaMalloc failed: cudaErrorMemoryAllocation \(2\): out of memory"):
        runner.activate()
    assert not runner.is_active and fake_cudart.live() == 0


def test_on_device_calibration_then_the_runner_finds_the_engine(tiny_bundle, device, capsys):
    from jetseg.cli import main

    assert main(["build", str(tiny_bundle.path), "--precision", "int8", "--dla", "0",
                 "--calib-scans", "synthetic://ultrasound?frames=7", "--calib-count", "5"]) == 0
    folder = Path(capsys.readouterr().out.strip()).parent
    call = device.calls[-1]
    assert call["calibration_batches"] == 5 and call["calibrator"] == "IInt8EntropyCalibrator2"
    assert (folder / "calibration.cache").read_bytes().startswith(b"TRT-8502-EntropyCalibration2\n")
    record = json.loads((folder / "build.json").read_text())
    assert record["flags"]["int8"] == "device" and record["flags"]["calib_scans"] == "synthetic://ultrasound?frames=7"
    assert fake_cudart.live() == 0  # the calibration buffer was freed
    with open_runner("trt", tiny_bundle, dla_core=0) as runner:
        assert runner.key.name == folder.name
        out = runner.infer(tiny_bundle.spec.preprocess(np.zeros((32, 32), np.uint8)))
    assert out.shape == (1, 2, 32, 32)
