"""The TensorRT double behaves like TensorRT 8.5.2 where jetseg depends on it (each rule's source is cited in
tests/fixtures/fake_tensorrt.py and fake_tensorrt_dla.py)."""
from __future__ import annotations

import json

from tests.fixtures import fake_tensorrt
from tests.fixtures.models import qdq_model


def _parse(trt, model):
    network = trt.Builder(trt.Logger()).create_network(1 if int(trt.__version__.split(".")[0]) < 10 else 0)
    parser = trt.OnnxParser(network, trt.Logger())
    return parser.parse(model.SerializeToString()), [parser.get_error(i) for i in range(parser.num_errors)]


def test_int8_weight_initializers_refused_below_10():
    ok, errors = _parse(fake_tensorrt.make("8.5.2.2"), qdq_model(int8_weights=True))
    assert not ok and errors == ["w_q: invalid weights type of Int8"]  # NVIDIA/TensorRT#2163
    assert _parse(fake_tensorrt.make("8.5.2.2"), qdq_model())[0]  # float weights -> Q -> DQ parse on 8.5
    assert _parse(fake_tensorrt.make("10.3.0"), qdq_model(int8_weights=True))[0]


def _calibrator(trt, cache):
    class Calibrator(trt.IInt8EntropyCalibrator2):
        def read_calibration_cache(self):
            return cache

        def get_batch(self, names):
            return None

        def write_calibration_cache(self, data):
            pass

    return Calibrator()


def _parsed_qdq_model():
    """The double of TensorRT 8.5.2 with the Q/DQ test model parsed: ``(trt, builder, network, config)``."""
    trt = fake_tensorrt.make("8.5.2.2")
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(1)
    trt.OnnxParser(network, trt.Logger()).parse(qdq_model().SerializeToString())
    return trt, builder, network, builder.create_builder_config()


def test_calibration_cache_of_another_version_is_not_used():
    trt, builder, network, config = _parsed_qdq_model()
    config.set_flag(trt.BuilderFlag.INT8)
    config.int8_calibrator = _calibrator(trt, b"TRT-8502-EntropyCalibration2\ninput: 3c000000\n")
    assert builder.build_serialized_network(network, config) is not None  # used: no batches asked
    config.int8_calibrator = _calibrator(trt, b"TRT-8401-EntropyCalibration2\ninput: 3c000000\n")
    assert builder.build_serialized_network(network, config) is None  # skipped, and no batches to calibrate
    assert trt.calls[-1] == {"error": "calibration failure: no usable cache and no batches"}


def test_inspector_gives_names_only_unless_detailed():
    trt, builder, network, config = _parsed_qdq_model()
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(builder.build_serialized_network(network, config))
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    assert all(isinstance(layer, str) for layer in info["Layers"]) and "conv" in info["Layers"]
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(builder.build_serialized_network(network, config))
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    assert {"Name", "LayerType", "Inputs", "Outputs"} <= set(info["Layers"][-1])
