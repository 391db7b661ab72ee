"""`jetseg export --deepstream`: nvinfer and deepstream-app configs for segmentation bundles.

Reference configs: NVIDIA-AI-IOT/deepstream_python_apps, apps/deepstream-segmentation/
dstest_segmentation_config_semantic.txt and dstest_segmentation_config_industrial.txt, lines 59-78 (their
[property] groups); the key table below is Gst-nvinfer's documented properties (DeepStream 6.2 plugin manual,
"Gst-nvinfer File Configuration Specifications", [property] group), limited to what jetseg may write.
"""
from __future__ import annotations

import configparser

import numpy as np
import pytest

from jetseg.bundle import CALIBRATION_CACHE_FILE, Bundle
from jetseg.cli import main
from jetseg.errors import JetsegError
from jetseg.models.deepstream import (
    APP_FILE,
    FOLD_NODE,
    LOGIT_FLOOR,
    MODEL_FILE,
    NVINFER_FILE,
    check_expressible,
    write_configs,
)
from tests.fixtures.bundles import conv_bundle, rgb_conv_bundle, threshold_bundle
from tests.fixtures.specs import enhancement_spec, tiny_spec

#: Gst-nvinfer [property] keys documented for DeepStream 6.2 (a subset: the ones an exporter could write).
NVINFER_KEYS = {
    "gpu-id", "net-scale-factor", "offsets", "model-color-format", "onnx-file", "model-engine-file",
    "int8-calib-file", "network-mode", "batch-size", "infer-dims", "output-blob-names", "num-detected-classes",
    "network-type", "segmentation-threshold", "segmentation-output-order", "gie-unique-id", "process-mode",
    "interval", "labelfile-path", "workspace-size", "output-tensor-meta", "scaling-filter", "scaling-compute-hw",
}


def read(path):
    parser = configparser.ConfigParser()
    parser.read(path)
    return parser


def test_grey_bundle_keys(tmp_path):
    out = write_configs(tmp_path / "ds", Bundle(threshold_bundle(tmp_path / "tb", roi=[4, 6, 40, 30])), sources=2)
    prop = read(out / NVINFER_FILE)["property"]
    assert dict(prop) == {
        "gpu-id": "0", "network-type": "2", "onnx-file": MODEL_FILE, "network-mode": "2", "batch-size": "1",
        "infer-dims": "1;32;32", "model-color-format": "2", "net-scale-factor": repr(1 / 255.0), "offsets": "0.0",
        "output-blob-names": "logits", "num-detected-classes": "2", "segmentation-threshold": repr(LOGIT_FLOOR),
        "segmentation-output-order": "0", "gie-unique-id": "1"}
    assert set(prop) <= NVINFER_KEYS
    assert (out / MODEL_FILE).read_bytes() == Bundle(tmp_path / "tb").model_path.read_bytes()
    app = read(out / APP_FILE)
    assert app["source1"]["uri"].startswith("file:///") and "source2" not in app
    assert app["streammux"]["batch-size"] == "2" and app["primary-gie"]["config-file"] == NVINFER_FILE


def test_rgb_bundle_folds_the_std(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    bundle = rgb_conv_bundle(tmp_path / "rgb")
    out = write_configs(tmp_path / "ds", bundle)
    text = (out / NVINFER_FILE).read_text()
    prop = read(out / NVINFER_FILE)["property"]
    assert prop["model-color-format"] == "0" and prop["infer-dims"] == "3;16;16"
    assert prop["net-scale-factor"] == repr(1 / 255.0)
    assert [float(v) for v in prop["offsets"].split(";")] == pytest.approx([127.5, 102.0, 76.5])
    assert FOLD_NODE in text.split("[property]")[0]
    assert set(prop) <= NVINFER_KEYS
    pixels = np.random.default_rng(0).integers(0, 256, size=(1, 3, 16, 16)).astype(np.float32)
    mean = np.array([0.5, 0.4, 0.3], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.2, 0.25, 0.5], np.float32).reshape(1, 3, 1, 1)
    deepstream_input = (pixels - 255 * mean) / 255.0  # y = net-scale-factor * (x - offsets)
    folded = ort.InferenceSession(str(out / MODEL_FILE), providers=["CPUExecutionProvider"])
    original = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    got = folded.run(None, {"input": deepstream_input})[0]
    want = original.run(None, {"input": (pixels / 255.0 - mean) / std})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert [n.name for n in __import__("onnx").load(str(out / MODEL_FILE)).graph.node][0] == FOLD_NODE


def test_uniform_std_is_the_scale_factor(tmp_path):
    out = write_configs(tmp_path / "ds", rgb_conv_bundle(tmp_path / "rgb", std=(0.5, 0.5, 0.5)))
    prop = read(out / NVINFER_FILE)["property"]
    assert float(prop["net-scale-factor"]) == pytest.approx(1 / 127.5)
    assert FOLD_NODE not in (out / NVINFER_FILE).read_text()


def test_single_sigmoid_threshold_and_int8_cache(tmp_path):
    bundle = conv_bundle(tmp_path / "b", precision="int8", extra={CALIBRATION_CACHE_FILE: b"TRT-8502-EntropyCalibration2\n"})
    prop = read(write_configs(tmp_path / "ds", bundle) / NVINFER_FILE)["property"]
    assert prop["network-mode"] == "1" and prop["int8-calib-file"] == CALIBRATION_CACHE_FILE
    sigmoid = Bundle(threshold_bundle(tmp_path / "sb", kind="sigmoid"))
    prop = read(write_configs(tmp_path / "ds2", sigmoid) / NVINFER_FILE)["property"]
    assert prop["num-detected-classes"] == "1" and float(prop["segmentation-threshold"]) == pytest.approx(0.0)


def test_refusals(tmp_path):
    with pytest.raises(JetsegError, match="multi-label sigmoid"):
        check_expressible(tiny_spec(kind="sigmoid", classes=("bg", "a", "b")))
    with pytest.raises(JetsegError, match="exports segmentation bundles; this bundle's task is enhancement"):
        check_expressible(enhancement_spec())
    with pytest.raises(JetsegError, match="--precision int8 needs the bundle's calibration.cache"):
        write_configs(tmp_path / "ds", Bundle(threshold_bundle(tmp_path / "tb")), precision="int8")
    assert not (tmp_path / "ds").exists()


def test_cli_one_line(tmp_path, capsys):
    bundle = threshold_bundle(tmp_path / "tb")
    assert main(["export", "--deepstream", str(tmp_path / "ds"), str(bundle), "--sources", "3"]) == 0
    assert (tmp_path / "ds" / APP_FILE).is_file()
    assert main(["export", "--deepstream", str(tmp_path / "ds"), str(bundle)]) != 0
    assert "exists; remove it" in capsys.readouterr().err
