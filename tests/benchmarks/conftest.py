"""Tiny real bundles (a 1x1 convolution thresholding brightness) and labelled frames for benchmark tests."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.bundle import save_bundle
from jetseg.jetson.sources import Frame
from jetseg.spec import Spec

SIZE = 16


def tiny_onnx(threshold: float) -> bytes:
    """logits[1] = 10 * (x - threshold), logits[0] = 0: class 1 where the pixel is brighter than threshold."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.array([[[[0.0]]], [[[10.0]]]], dtype=np.float32), "w")
    bias = numpy_helper.from_array(np.array([0.0, -10.0 * threshold], dtype=np.float32), "b")
    node = helper.make_node("Conv", ["input", "w", "b"], ["logits"], kernel_shape=[1, 1])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                             [1, 1, SIZE, SIZE])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, SIZE, SIZE])],
                              initializer=[weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_spec(name: str) -> Spec:
    return Spec.from_dict({"name": name, "input": {"name": "input", "size": [SIZE, SIZE], "channels": 1,
                                                   "color_order": "gray", "mean": [0.0], "std": [1.0]},
                           "output": {"name": "logits", "kind": "softmax"}, "classes": ["background", "blob"]})


@pytest.fixture
def make_bundle(tmp_path):
    """make_bundle(name, threshold, precision="fp32") -> path of a tiny thresholding bundle in tmp_path."""
    def make(name, threshold, precision="fp32"):
        save_bundle(tmp_path / name, tiny_onnx(threshold), tiny_spec("tiny"), precision=precision)
        return tmp_path / name
    return make


@pytest.fixture
def tiny_bundles(tmp_path):
    """(fp32 reference, 'int8' candidate with a slightly different threshold) bundle paths."""
    ref = tmp_path / "tiny-fp32"
    cand = tmp_path / "tiny-int8"
    save_bundle(ref, tiny_onnx(0.5), tiny_spec("tiny"), precision="fp32")
    save_bundle(cand, tiny_onnx(0.56), tiny_spec("tiny"), precision="int8")
    return ref, cand


def make_frames(count: int = 4):
    """Grey 32x24 frames with a bright disc (brightness varying) and its label."""
    frames = []
    yy, xx = np.mgrid[0:24, 0:32]
    for i in range(count):
        disc = (yy - 12) ** 2 + (xx - 10 - 3 * i) ** 2 < 36
        image = np.where(disc, 150 + 10 * i, 40).astype(np.uint8)
        image[disc & (xx % 4 == 0)] = 140  # a few pixels near the threshold so thresholds 0.5/0.56 disagree
        frames.append(Frame(index=i, image=image, timestamp=0.0, label=disc.astype(np.uint8)))
    return frames


@pytest.fixture
def frames():
    return make_frames()


@pytest.fixture(scope="session")
def unet_bundle(tmp_path_factory):
    """A tiny untrained U-Net bundle with weights.pt and its architecture record (for torch and naive-loop rows)."""
    import io

    torch = pytest.importorskip("torch")
    from jetseg.models.archs import build_model, describe
    from jetseg.models.export import torch_to_onnx

    torch.manual_seed(0)
    kwargs = {"input_size": [32, 32], "in_channels": 1, "num_classes": 2}
    model = build_model("unet-tiny", **kwargs).eval()
    spec = Spec.from_dict({"name": "unet-tiny", "input": {"name": "input", "size": [32, 32], "channels": 1,
                                                           "color_order": "gray"},
                           "output": {"name": "logits", "kind": "softmax"}, "classes": ["background", "lesion"]})
    buffer = io.BytesIO()
    torch.save({k: v.detach().contiguous() for k, v in model.state_dict().items()}, buffer)
    out = tmp_path_factory.mktemp("unet") / "unet-fp32"
    save_bundle(out, torch_to_onnx(model, spec), spec, extra_files={"weights.pt": buffer.getvalue()},
                provenance={"architecture": describe("unet-tiny", kwargs)})
    return out
