"""The trt runner's checks and engine lookup, without TensorRT (the GPU path runs in test_on_device.py)."""
from __future__ import annotations

import json

import pytest

from jetseg.bundle import sha256_file
from jetseg.errors import DeviceError, RunnerError
from jetseg.jetson.device import info
from jetseg.jetson.runners import open_runner
from jetseg.jetson.trt import store
from jetseg.jetson.trt.key import EngineKey
from jetseg.optional import available


@pytest.mark.skipif(available("tensorrt"), reason="TensorRT is installed here")
def test_constructs_without_tensorrt_and_fails_clearly_on_activate(tiny_bundle):
    runner = open_runner("trt", tiny_bundle, precision="fp16", dla_core="0")
    assert runner.dla == 0 and runner.describe()["target"] == "dla0"
    with pytest.raises(DeviceError, match="TensorRT is not installed on this machine \\(needed for the trt backend\\)"):
        runner.activate()
    assert not runner.is_active


def test_bad_options(tiny_bundle):
    with pytest.raises(RunnerError, match="trt backend option precision='int4': expected one of fp32, fp16, int8"):
        open_runner("trt", tiny_bundle, precision="int4")
    with pytest.raises(RunnerError, match="trt backend option dla_core='x': expected a DLA core number"):
        open_runner("trt", tiny_bundle, dla_core="x")
    assert open_runner("trt", tiny_bundle, dla_core="none").dla is None
    with pytest.raises(RunnerError, match="unknown trt backend option 'dla'; known options: batch, cuda_graph, device, dla_core, precision"):
        open_runner("trt", tiny_bundle, dla=0)  # never silently ignored (it would run on the GPU)


@pytest.fixture
def on_xavier(monkeypatch):
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))


def _engine(bundle, **kw):
    base = dict(soc="xavier", compute_capability="72", trt_version="8.5.2", precision="fp16", dla_core=None,
                model_sha256=bundle.model_sha256)
    base.update(kw)
    base.setdefault("flags", "fp16" + ("+gpu_fallback" if base["dla_core"] is not None else ""))
    key = EngineKey(**base)
    folder = store.engine_dir(bundle, key)
    folder.mkdir(parents=True)
    (folder / store.ENGINE_FILE).write_bytes(b"plan")
    (folder / store.BUILD_FILE).write_text(json.dumps({"key": key.to_dict(),
                                                       "engine_sha256": sha256_file(folder / store.ENGINE_FILE)}))
    return key


def test_engine_lookup_explains_missing_and_stale(tiny_bundle, on_xavier):
    runner = open_runner("trt", tiny_bundle)
    with pytest.raises(RunnerError, match="has no engine for this device \\(xavier-sm72-trt8.5.2\\); build one here "
                                          "with 'jetseg build .* --precision fp16'"):
        runner._engine_key("8.5.2.2")
    orin = _engine(tiny_bundle, soc="orin", compute_capability="87", trt_version="10.3.0")
    runner = open_runner("trt", tiny_bundle, precision="fp16")
    with pytest.raises(RunnerError) as err:
        runner._engine_key("8.5.2.2")
    msg = str(err.value)
    assert "no usable engine xavier-sm72-trt8.5.2-fp16-gpu-" in msg and "(missing: engines present: " in msg
    assert orin.name + ": SoC/GPU: engine orin, here xavier" in msg
    assert msg.endswith("--precision fp16'")


def test_engine_lookup_finds_the_one_engine(tiny_bundle, on_xavier):
    key = _engine(tiny_bundle)
    found, path = open_runner("trt", tiny_bundle)._engine_key("8.5.2.2")
    assert found == key and path == store.engine_dir(tiny_bundle, key) / "engine.plan"
    # a newer TensorRT on the same device does not use it
    with pytest.raises(RunnerError, match="build one here"):
        open_runner("trt", tiny_bundle)._engine_key("8.6.1")
    _engine(tiny_bundle, dla_core=0)
    assert open_runner("trt", tiny_bundle, dla_core=0)._engine_key("8.5.2")[0].dla_core == 0
    (store.engine_dir(tiny_bundle, key) / "engine.plan").write_bytes(b"other")
    with pytest.raises(RunnerError, match="damaged: engine.plan does not match .* --precision fp16 --force'"):
        open_runner("trt", tiny_bundle, precision="fp16")._engine_key("8.5.2")
