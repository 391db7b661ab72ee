"""Helpers for the calibration tests (imported as calhelpers; conftest.py holds the fixtures): tiny U-Net-like ONNX bundles built in code, and scans written to disk.

The model is hand-built with onnx.helper (no torch, fast, deterministic): Conv/ReLU, MaxPool, ConvTranspose,
Concat, a 1x1 head. Channel 0 of every layer carries the input through, so the FP32 mask is "pixel brighter
than 0.5" and matches the drawn labels; the other channels are small random weights. With ``outlier=True``
the first layer gets one extra channel with a huge constant activation (bias 400) that no later layer uses:
FP32 is unchanged, but per-tensor INT8 of that activation wipes out the useful channels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np

SIZE = 32


def _conv_weights(rng: Any, cout: int, cin: int, k: int, identity: bool = True) -> np.ndarray:
    w = rng.normal(0.0, 0.05, size=(cout, cin, k, k)).astype(np.float32)
    if identity:
        w[0, :, :, :] = 0.0
        w[0, 0, k // 2, k // 2] = 1.0
    return w


def build_model(outlier: bool = False, opset: int = 17, seed: int = 0) -> Any:
    """A U-Net-like ModelProto: input ``(1, 1, 32, 32)`` -> logits ``(1, 2, 32, 32)``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    c1 = 4 + (1 if outlier else 0)
    w1 = _conv_weights(rng, c1, 1, 3)
    b1 = np.zeros(c1, np.float32)
    if outlier:
        w1[-1] = 0.0
        b1[-1] = 400.0  # a huge, constant activation
    w2 = _conv_weights(rng, 8, c1, 3)
    if outlier:
        w2[:, -1] = 0.0  # nobody uses the outlier channel
    wt = rng.normal(0.0, 0.05, size=(8, 4, 2, 2)).astype(np.float32)  # ConvTranspose: (cin, cout, k, k)
    wt[0, :, :, :] = 0.0
    wt[0, 0, :, :] = 1.0
    w3 = _conv_weights(rng, 4, 4 + c1, 3)
    w3[0, :, :, :] = 0.0
    w3[0, 4, 1, 1] = 1.0  # the skip connection's channel 0 (full resolution input)
    if outlier:
        w3[:, -1] = 0.0
    wh = np.zeros((2, 4, 1, 1), np.float32)
    wh[1, 0, 0, 0] = 8.0  # logit(target) - logit(background) = 8 * (x - 0.5)
    bh = np.array([0.0, -4.0], np.float32)
    nodes = [
        helper.make_node("Conv", ["input", const("w1", w1), const("b1", b1)], ["c1"], name="enc_conv",
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="enc_relu"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", const("w2", w2), const("b2", np.zeros(8))], ["c2"], name="mid_conv",
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="mid_relu"),
        helper.make_node("ConvTranspose", ["r2", const("wt", wt), const("bt", np.zeros(4))], ["u1"],
                         name="up", strides=[2, 2], kernel_shape=[2, 2]),
        helper.make_node("Concat", ["u1", "r1"], ["cat"], name="concat", axis=1),
        helper.make_node("Conv", ["cat", const("w3", w3), const("b3", np.zeros(4))], ["c3"], name="dec_conv",
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c3"], ["r3"], name="dec_relu"),
        helper.make_node("Conv", ["r3", const("wh", wh), const("bh", bh)], ["logits"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_unet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, SIZE, SIZE])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


SPEC: Dict[str, Any] = {"name": "tiny", "input": {"name": "input", "size": [SIZE, SIZE], "channels": 1,
                                                  "color_order": "gray", "mean": [0.0], "std": [1.0]},
                        "output": {"name": "logits", "kind": "softmax"}, "classes": ["background", "target"]}


def scene(index: int, size: int = 48) -> Any:
    """A grey frame with one bright disk (varying position/radius) on a textured background, and its mask."""
    rng = np.random.default_rng(1000 + index)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.integers(12, size - 12, size=2)
    r = rng.integers(5, 11)
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)
    image = rng.integers(0, 70, size=(size, size)).astype(np.float32) + 15.0 * (index % 3)
    image[mask == 1] = 200 + rng.integers(0, 50, size=int(mask.sum()))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dicom_cine(path: Path, frames: np.ndarray) -> Path:
    """An uncompressed multi-frame MONOCHROME2 8-bit DICOM (ultrasound multi-frame storage)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns = frames.shape[1:3]
    ds.NumberOfFrames = frames.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    if "enforce_file_format" in pydicom.dcmwrite.__code__.co_varnames:
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    else:  # pydicom 2
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(path), write_like_original=False)
    return path
