"""`jetseg export --triton`: config.pbtxt checked against Triton's own ModelConfig schema (tritonclient)."""
from __future__ import annotations

import pytest

from jetseg.bundle import CALIBRATION_CACHE_FILE, Bundle
from jetseg.cli import main
from jetseg.errors import JetsegError
from jetseg.models.triton import model_config, write_repository
from tests.fixtures.bundles import conv_bundle, threshold_bundle
from tests.fixtures.models import batch_conv

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")


def parse(path):
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_onnx_repository_fixed_batch_lists_the_batch_dim(tmp_path):
    bundle = Bundle(threshold_bundle(tmp_path / "tb"))
    folder = write_repository(tmp_path / "repo", bundle, "onnxruntime_onnx", name="seg")
    config = parse(folder / "config.pbtxt")
    assert (folder / "1" / "model.onnx").read_bytes() == bundle.model_path.read_bytes()
    assert config.name == "seg" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 0
    assert config.input[0].name == "input" and list(config.input[0].dims) == [1, 1, 32, 32]
    assert config.output[0].name == "logits" and list(config.output[0].dims) == [1, 2, 32, 32]
    assert config.input[0].data_type == model_config_pb2.TYPE_FP32
    assert not config.HasField("dynamic_batching")
    trt = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == "FP32"


def test_dynamic_batch_drops_n_and_batches(tmp_path):
    bundle = conv_bundle(tmp_path / "b", model=batch_conv(batch="N", size=32))
    config = parse(write_repository(tmp_path / "repo", bundle, "onnxruntime_onnx", max_batch_size=8,
                                    queue_delay_us=500) / "config.pbtxt")
    assert config.max_batch_size == 8 and list(config.input[0].dims) == [1, 32, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500


def test_fixed_batch_cannot_batch(tmp_path):
    bundle = Bundle(threshold_bundle(tmp_path / "tb"))
    with pytest.raises(JetsegError, match="fixed batch of 1; use --max-batch 0"):
        write_repository(tmp_path / "repo", bundle, "onnxruntime_onnx", max_batch_size=4)


def test_int8_uses_the_native_calibration_cache(tmp_path):
    bundle = conv_bundle(tmp_path / "b", precision="int8", extra={CALIBRATION_CACHE_FILE: b"TRT-8502-EntropyCalibration2\n"})
    folder = write_repository(tmp_path / "repo", bundle, "onnxruntime_onnx")
    params = parse(folder / "config.pbtxt").optimization.execution_accelerators.gpu_execution_accelerator[0].parameters
    assert params["precision_mode"] == "INT8" and params["int8_use_native_calibration_table"] == "1"
    assert params["int8_calibration_table_name"] == CALIBRATION_CACHE_FILE
    assert (folder / "1" / CALIBRATION_CACHE_FILE).is_file()


def test_plan_repository_and_its_missing_engine(tmp_path):
    bundle = Bundle(threshold_bundle(tmp_path / "tb"))
    with pytest.raises(JetsegError, match="tensorrt_plan needs --engine FILE"):
        write_repository(tmp_path / "repo", bundle, "tensorrt_plan")
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan")
    folder = write_repository(tmp_path / "repo", bundle, "tensorrt_plan", engine=plan)
    assert parse(folder / "config.pbtxt").platform == "tensorrt_plan"
    assert (folder / "1" / "model.plan").read_bytes() == b"plan"


def test_python_backend_parameters_parse():
    from jetseg.spec import Spec

    text = model_config(Spec(), "m", backend="python", max_batch_size=4, kind="KIND_CPU",
                        parameters={"bundle": '/a "b"', "backend_options": '{"threads": 1}'})
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.parameters["bundle"].string_value == '/a "b"'
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU


def test_cli_export_triton(tmp_path, capsys):
    bundle = threshold_bundle(tmp_path / "tb")
    assert main(["export", "--triton", str(tmp_path / "repo"), str(bundle)]) == 0
    assert parse(tmp_path / "repo" / "tiny" / "config.pbtxt").name == "tiny"
    assert main(["export", "--triton", str(tmp_path / "repo"), str(bundle)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "exists; remove it or give another --triton-name" in err


def _engine(folder, batch, profile):
    from jetseg.records import BuildRecord

    folder.mkdir(parents=True)
    (folder / "engine.plan").write_bytes(b"plan")
    BuildRecord(key={"batch": batch}, batch=batch, profile=profile).write(folder)
    return folder / "engine.plan"


def test_plan_max_batch_comes_from_build_json(tmp_path):
    bundle = Bundle(conv_bundle(tmp_path / "b", model=batch_conv(batch="N", size=32)).path)
    four = _engine(tmp_path / "e4", 4, {"input": "input", "batch": 4, "min": [1, 1, 32, 32], "max": [4, 1, 32, 32]})
    config = parse(write_repository(tmp_path / "repo", bundle, "tensorrt_plan", engine=four,
                                    max_batch_size=None) / "config.pbtxt")
    assert config.max_batch_size == 4 and list(config.input[0].dims) == [1, 32, 32]
    assert config.HasField("dynamic_batching")
    with pytest.raises(JetsegError, match="--max-batch 8: engine .* runs batches up to 4"):
        write_repository(tmp_path / "repo2", bundle, "tensorrt_plan", engine=four, max_batch_size=8)
    old = _engine(tmp_path / "e1", 1, {})  # a build.json from before batches: batch 1, a fixed shape
    assert parse(write_repository(tmp_path / "repo3", bundle, "tensorrt_plan", engine=old,
                                  max_batch_size=None) / "config.pbtxt").max_batch_size == 0
    dla = _engine(tmp_path / "e2", 2, {"input": "input", "batch": 2, "min": [2, 1, 32, 32], "max": [2, 1, 32, 32],
                                      "dla": "fixed"})
    with pytest.raises(JetsegError, match="runs a fixed batch of 2 \\(the DLA\\)"):
        write_repository(tmp_path / "repo4", bundle, "tensorrt_plan", engine=dla, max_batch_size=None)
