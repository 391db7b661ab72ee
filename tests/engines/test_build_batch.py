"""`jetseg build --batch N` against the TensorRT double (fake_tensorrt.py: profiles as TensorRT 8.5's sources
describe them) and the trt runner on the engine it builds."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jetseg.engines.build import build_engine
from jetseg.errors import JetsegError
from jetseg.jetson.device import info
from jetseg.jetson.runners import open_runner
from tests.fixtures import fake_cudart, fake_tensorrt
from tests.fixtures.bundles import conv_bundle
from tests.fixtures.models import batch_conv


@pytest.fixture
def device(monkeypatch):
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))
    return fake_tensorrt.install(monkeypatch, "8.5.2.2", cuda=True)


@pytest.fixture
def dyn_bundle(tmp_path):
    return conv_bundle(tmp_path / "dyn", model=batch_conv(batch="N", size=32))


def _frames(bundle, n):
    rng = np.random.default_rng(n)
    return bundle.spec.preprocess_batch([rng.integers(0, 255, size=(32, 32), dtype=np.uint8) for _ in range(n)])


def test_batch_four_gets_a_profile_a_key_and_a_record(dyn_bundle, device):
    one = build_engine(dyn_bundle, "fp16")
    four = build_engine(dyn_bundle, "fp16", batch=4)
    assert one.key.batch == 1 and four.key.batch == 4 and one.folder != four.folder
    assert one.folder.is_dir()  # another batch is not "superseded": both stay
    call = device.calls[-1]
    assert call["profiles"] == [{"input": [[1, 1, 32, 32], [4, 1, 32, 32], [4, 1, 32, 32]]}]
    record = json.loads((four.folder / "build.json").read_text())
    assert record["batch"] == 4 and record["key"]["batch"] == 4
    assert record["profile"] == {"input": "input", "batch": 4, "min": [1, 1, 32, 32], "opt": [4, 1, 32, 32],
                                 "max": [4, 1, 32, 32]}
    assert build_engine(dyn_bundle, "fp16", batch=4).reused


def test_the_double_refuses_a_dynamic_network_without_a_profile(dyn_bundle, device):
    from jetseg import trtcompat
    from jetseg.engines import build

    feats = trtcompat.features(device.__version__)
    parsed = build.parse_network(device, feats, dyn_bundle.model_path.read_bytes())
    config, _ = build.make_config(device, feats, parsed, "fp16", qdq=False, workspace_mb=64)
    assert parsed.builder.build_serialized_network(parsed.network, config) is None
    assert "no optimization profile has been defined" in device.calls[-1]["error"]


def test_runner_takes_its_batch_from_the_profile_and_sets_shapes_per_call(dyn_bundle, device):
    build_engine(dyn_bundle, "fp16", batch=4)
    batch = _frames(dyn_bundle, 6)
    with open_runner("onnxrt", dyn_bundle, batch_size=6) as ref:
        expected = ref.infer(batch)
    with open_runner("trt", dyn_bundle) as runner:  # batch_size 1 asked; the engine's profile says 4
        assert runner.batch_size == 4 and runner.engine_batch == 4
        before = getattr(device, "executions", 0)
        np.testing.assert_array_equal(runner.infer(batch[:3]), expected[:3])  # one call at batch 3
        assert device.executions - before == 1
        np.testing.assert_array_equal(runner.infer(batch[:1]), expected[:1])
        assert runner.describe()["engine_batch"] == 4
    with open_runner("trt", dyn_bundle, batch_size=6) as runner:  # more than the engine: chunks of 4 and 2
        before = getattr(device, "executions", 0)
        np.testing.assert_array_equal(runner.infer(batch), expected)
        assert device.executions - before == 2
    assert fake_cudart.live() == 0


def test_runner_asks_which_batch_when_several_are_built(dyn_bundle, device):
    build_engine(dyn_bundle, "fp16")
    build_engine(dyn_bundle, "fp16", batch=2)
    with pytest.raises(Exception, match=r"several batches \(1, 2\).*backend option batch="):
        open_runner("trt", dyn_bundle).activate()
    with open_runner("trt", dyn_bundle, batch=2) as runner:
        assert runner.key.batch == 2 and runner.batch_size == 2


def test_dla_engine_has_a_fixed_batch_and_the_runner_pads(dyn_bundle, device):
    out = build_engine(dyn_bundle, "fp16", dla_core=0, batch=2)
    assert device.calls[-1]["profiles"] == [{"input": [[2, 1, 32, 32]] * 3}]
    assert "no runtime dimensions" in out.record["profile"]["dla"]
    batch = _frames(dyn_bundle, 1)
    with open_runner("onnxrt", dyn_bundle) as ref:
        expected = ref.infer(batch)
    with open_runner("trt", dyn_bundle, dla_core=0) as runner:
        np.testing.assert_array_equal(runner.infer(batch), expected)  # run at batch 2, one row padding


def test_int8_calibration_with_a_dynamic_batch_sets_a_calibration_profile(dyn_bundle, device):
    out = build_engine(dyn_bundle, "int8", batch=4, calib_scans="synthetic://ultrasound?frames=4", calib_count=3)
    call = device.calls[-1]
    assert call["calibration_batches"] == 3 and call["calibration_profile"] == {"input": [[1, 1, 32, 32]] * 3}
    assert out.record["profile"]["calibration"] == [1, 1, 32, 32]


def test_fixed_batch_onnx_refuses_another_batch(tiny_bundle, device):
    with pytest.raises(JetsegError, match="--batch 4: input has a fixed batch of 1; build with --batch 1"):
        build_engine(tiny_bundle, "fp16", batch=4)
    assert not (tiny_bundle.path / "engines").exists()


def test_cli_batch_error_is_one_line(tiny_bundle):
    done = subprocess.run([sys.executable, "-m", "jetseg", "build", str(tiny_bundle.path), "--batch", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_dla_int8_from_the_cache_with_a_batch(tmp_path, device):
    """The Xavier's DLA INT8 path (the bundle's calibration cache) with --batch 2: a fixed DLA profile and a
    calibration profile of its own at the calibrator's batch."""
    from tests.fixtures.bundles import conv_bundle as make

    cache = b"TRT-8502-EntropyCalibration2\ninput: 3c010204\nlogits: 3d000000\n"
    bundle = make(tmp_path / "int8", model=batch_conv(batch="N", size=32), precision="int8",
                  extra={"calibration.cache": cache})
    out = build_engine(bundle, "int8", dla_core=0, batch=2)
    call = device.calls[-1]
    assert call["profiles"] == [{"input": [[2, 1, 32, 32]] * 3}]
    assert call["calibration_profile"] == {"input": [[1, 1, 32, 32]] * 3} and call["calibration_batches"] == 0
    assert out.key.batch == 2 and out.record["profile"]["calibration"] == [1, 1, 32, 32]


def test_a_daemon_with_three_streams_runs_the_batch_engine_in_shared_batches(dyn_bundle, device):
    """Three streams in one daemon on the trt backend: the runner's batch comes from the engine (4), the batcher
    forms batches of up to 3 (the streams), each batch one TensorRT execution."""
    from jetseg.jetson.daemon.config import DaemonConfig
    from jetseg.jetson.daemon.streams import run_streams

    build_engine(dyn_bundle, "fp16", batch=4)
    sources = [{"name": "s%d" % i, "uri": "synthetic://ultrasound?frames=10"} for i in range(3)]
    config = DaemonConfig.from_dict({"model": str(dyn_bundle.path), "backend": {"name": "trt"}, "sources": sources,
                                     "batch": {"max_delay_ms": 200}, "device": {"telemetry": "off"}})
    summary = run_streams(config, dyn_bundle)
    batcher = summary["batcher"]
    assert summary["frames"] == 30 and summary["backend"]["engine_batch"] == 4
    assert max(int(n) for n in batcher["sizes"]) > 1, batcher
    assert device.executions == batcher["batches"]  # one execution per batch, not per frame
