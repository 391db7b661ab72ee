"""On the Jetson: NVIDIA's Polygraphy cross-checks jetseg's DLA INT8 engine independently (never run here).

Polygraphy builds its own engine from the same float ONNX (the INT8 bundle's model.fp32.onnx) and the same
calibration cache (without the tensors jetseg leaves out, jetson/trt/floatlayers.py), with the same FP16
layer precisions, on DLA core 0 with GPU fallback; its outputs are compared with ONNX Runtime FP32 (Polygraphy's
OnnxrtRunner) and with jetseg's own engine, as masks. Polygraphy's Python API as of 0.49 (NVIDIA/TensorRT
tools/Polygraphy: backend/trt loaders CreateConfig, EngineFromNetwork, NetworkFromOnnxPath, SetLayerPrecisions,
Calibrator; backend/onnxrt OnnxrtRunner, SessionFromOnnx). Installed by setup.sh on the Jetson (pinned in
requirements/jetpack5.txt). Not run on a device yet: its first run there is its verification.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from jetseg.bundle import ENGINES_DIR, Bundle
from tests.fixtures.paths import REPO

# Skipped off the Jetson by these markers (tests/conftest.py); on the Jetson a missing polygraphy fails.
pytestmark = [pytest.mark.jetson, pytest.mark.trt, pytest.mark.gpu]

FRAMES = 8
MIN_AGREEMENT = 0.98  # pixel agreement of the two DLA engines' masks
MIN_DICE = 0.95  # mean Dice of Polygraphy's DLA engine against ONNX Runtime FP32, as test_on_device.py


@pytest.fixture(scope="module")
def int8(tmp_path_factory) -> Bundle:
    from jetseg import trtcompat
    from jetseg.calibration.workflow import calibrate

    source = sorted(p for p in (REPO / "models" / "bundles").glob("*") if (p / "spec.yaml").is_file())[0]
    fp32 = tmp_path_factory.mktemp("fp32") / source.name
    shutil.copytree(str(source), str(fp32), ignore=shutil.ignore_patterns(ENGINES_DIR))
    out = tmp_path_factory.mktemp("int8") / (source.name + "-int8")
    kind = "endoscopy" if "endoscopy" in source.name else "ultrasound"
    calibrate(fp32, "synthetic://%s?frames=120&seed=3" % kind, out=out, target="tensorrt",
              trt_version=trtcompat.short_version(trtcompat.installed_version()), progress=False)
    return Bundle(out)


def test_polygraphy_dla_int8_agrees_with_jetseg_and_onnxruntime(int8, tmp_path):
    import onnx
    import tensorrt as trt
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
    from polygraphy.backend.trt import (
        Calibrator,
        CreateConfig,
        EngineFromNetwork,
        NetworkFromOnnxPath,
        SetLayerPrecisions,
        TrtRunner,
    )

    from jetseg.engines.build import build_engine
    from jetseg.jetson.runners import open_runner
    from jetseg.jetson.sources import open_source
    from jetseg.jetson.trt import cache as trtcache
    from jetseg.jetson.trt.floatlayers import float_keep, recorded_float_layers
    from jetseg.scores import mean_dice

    spec, network_path = int8.spec, str(int8.path / "model.fp32.onnx")
    keep = float_keep(onnx.load(network_path), recorded_float_layers(int8))
    cache = tmp_path / "calibration.cache"
    cache.write_bytes(trtcache.without((int8.path / "calibration.cache").read_bytes(), keep.uncached))
    kind = "endoscopy" if "endoscopy" in int8.path.name else "ultrasound"
    with open_source("synthetic://%s?frames=%d&seed=11&start=7000" % (kind, FRAMES)) as src:
        inputs = [spec.preprocess(f.image) for f in src]

    network = NetworkFromOnnxPath(network_path)
    if keep.layers:
        network = SetLayerPrecisions(network, {name: trt.float16 for name in keep.layers})
    config = CreateConfig(fp16=True, int8=True, use_dla=True, allow_gpu_fallback=True,
                          precision_constraints="obey" if keep.layers else None,
                          calibrator=Calibrator(data_loader=[], cache=str(cache)))
    with TrtRunner(EngineFromNetwork(network, config=config)) as runner:
        polygraphy = [runner.infer({spec.input.name: x}) for x in inputs]
    with OnnxrtRunner(SessionFromOnnx(network_path)) as runner:
        reference = [runner.infer({spec.input.name: x}) for x in inputs]
    build_engine(int8, "int8", dla_core=0, force=True)
    with open_runner("trt", int8, precision="int8", dla_core=0) as runner:
        ours = [runner.infer(x) for x in inputs]

    def mask(outputs):
        return np.stack([spec.decode(np.asarray(next(iter(o.values())) if isinstance(o, dict) else o))[0]
                         for o in outputs])

    theirs, ref, mine = mask(polygraphy), mask(reference), mask(ours)
    assert mean_dice(theirs, ref, spec.num_classes) >= MIN_DICE
    assert float(np.mean(theirs == mine)) >= MIN_AGREEMENT
