"""Helpers for the runtime tests: a tiny real ONNX bundle, in-memory sources and test sinks."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, List, Optional

import numpy as np

from jetseg.bundle import save_bundle
from jetseg.jetson.sinks.base import Sink
from jetseg.jetson.sources.base import Frame, Source
from jetseg.spec import Spec


def tiny_onnx(size: int = 32, threshold: float = 0.5, kind: str = "softmax") -> bytes:
    """A 1x1 convolution: class 1 where the (0..1 scaled) grey pixel is brighter than ``threshold``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if kind == "softmax":
        w = np.array([[[[0.0]]], [[[10.0]]]], dtype=np.float32)
        b = np.array([0.0, -10.0 * threshold], dtype=np.float32)
    else:
        w = np.array([[[[10.0]]]], dtype=np.float32)
        b = np.array([-10.0 * threshold], dtype=np.float32)
    out_ch = w.shape[0]
    node = helper.make_node("Conv", ["input", "w", "b"], ["logits"], kernel_shape=[1, 1])
    graph = helper.make_graph(
        [node], "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, out_ch, size, size])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_spec(size: int = 32, roi: Optional[List[int]] = None, spacing: Optional[List[float]] = None,
              kind: str = "softmax") -> Spec:
    return Spec.from_dict({"name": "tiny", "input": {"name": "input", "size": [size, size], "channels": 1,
                                                     "color_order": "gray", "mean": [0.0], "std": [1.0],
                                                     "roi": roi},
                           "output": {"name": "logits", "kind": kind}, "classes": ["background", "lesion"],
                           "pixel_spacing_mm": spacing})


def make_bundle(path: Path, size: int = 32, **spec_args: Any) -> Path:
    kind = spec_args.get("kind", "softmax")
    save_bundle(path, tiny_onnx(size, kind=kind), tiny_spec(size, **spec_args))
    return path


def disc_frame(index: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Grey frame, dark background, a bright disc whose centre moves with the index."""
    yy, xx = np.mgrid[0:height, 0:width]
    cx = 10 + (index * 3) % (width - 20)
    disc = (yy - height // 2) ** 2 + (xx - cx) ** 2 < 64
    return np.where(disc, 220, 20).astype(np.uint8)


class ListSource(Source):
    """A finite source over in-memory frames (``live=True`` turns it into a fast 'camera' that drops)."""

    def __init__(self, images: List[np.ndarray], live: bool = False, fps: Optional[float] = None) -> None:
        super().__init__("list://%d" % len(images))
        self.images = images
        self.live = live
        self._fps = fps
        self._next = 0

    @property
    def fps(self) -> Optional[float]:
        return self._fps

    def __len__(self) -> int:
        return len(self.images)

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        if self._next >= len(self.images):
            self.ended = True
            return None
        i = self._next
        self._next += 1
        return Frame(index=i, image=self.images[i], timestamp=time.monotonic(), source_id=self.uri)


class RecordingSink(Sink):
    """Remembers the frame indices (and a few facts) it received."""

    def __init__(self, blocking_ok: bool = True, delay: float = 0.0) -> None:
        super().__init__("record://")
        self.blocking_ok = blocking_ok
        self.delay = delay
        self.indices: List[int] = []
        self.areas: List[Any] = []
        self.stamps: List[Any] = []
        self.opened = self.closed = False
        self.context: Any = None
        self.event = threading.Event()

    def open(self, context: Any) -> None:
        super().open(context)
        self.opened = True

    def write(self, result: Any) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.indices.append(result.index)
        self.areas.append((result.areas_px, result.areas_mm2))
        self.stamps.append(dict(result.stamps))
        self.written += 1
        self.event.set()

    def close(self) -> None:
        self.closed = True


class GateSink(RecordingSink):
    """A sink stuck in its first write until ``release`` is set (the slowest possible sink)."""

    def __init__(self) -> None:
        super().__init__(blocking_ok=False)
        self.release = threading.Event()

    def write(self, result: Any) -> None:
        self.release.wait(30)
        super().write(result)


def scanner_frame(seed: int = 0, height: int = 480, width: int = 640, circle: bool = False):
    """A scanner screen: an ultrasound fan sector (or an endoscope's circle) of speckle with a dark lesion,
    on black, with burned-in patient text and a depth ruler around it. Returns ``(BGR image, true roi)``."""
    import cv2

    rng = np.random.default_rng(seed)
    area = np.zeros((height, width), np.uint8)
    if circle:
        cv2.circle(area, (width // 2, height // 2 + 10), 190, 1, -1)
    else:  # a fan: apex at the top centre, 60 degrees either side, depth 380 px
        cv2.ellipse(area, (width // 2, 60), (380, 380), 90, -40, 40, 1, -1)
    speckle = np.clip(rng.rayleigh(55.0, (height, width)), 0, 255)
    yy, xx = np.mgrid[0:height, 0:width]
    lesion = (yy - 260) ** 2 / 40.0 ** 2 + (xx - width // 2 - 30) ** 2 / 55.0 ** 2 < 1
    speckle[lesion] *= 0.15
    grey = (speckle * area).astype(np.uint8)
    ys, xs = np.nonzero(area)
    roi = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    image = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    white = (235, 235, 235)
    cv2.putText(image, "DOE^JANE  ID 0012345  1970-01-01", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, white, 1)
    cv2.putText(image, "ST MARY HOSP  L12-5  MI 0.9 TIS 0.4", (8, 44), cv2.FONT_HERSHEY_SIMPLEX, 0.5, white, 1)
    cv2.putText(image, "G 55  D 12cm  FR 31Hz", (width - 230, height - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                white, 2)
    for i in range(8):  # depth ruler ticks right of the image area
        y = 70 + i * 48
        cv2.line(image, (width - 22, y), (width - 12, y), white, 1)
    return image, roi


def write_cine(path: Path, frames: np.ndarray, spacing_mm: Optional[List[float]] = None) -> Path:
    """A multi-frame ultrasound DICOM (uncompressed, MONOCHROME2 uint8) written with pydicom."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "US", "Test^Cine", "RT-0001"
    ds.NumberOfFrames = int(frames.shape[0])
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime = 40.0
    if spacing_mm is not None:
        ds.PixelSpacing = [float(v) for v in spacing_mm]
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    if "enforce_file_format" in pydicom.dcmwrite.__code__.co_varnames:
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    else:  # pydicom 2
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(path), write_like_original=False)
    return path


def free_port(kind: int = 1) -> int:
    """A free 127.0.0.1 port (kind 1: TCP, 2: UDP)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == 1 else socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0):
    """``(status, body bytes)``; HTTP errors are returned, not raised."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(every)


def count_lines(path: Path) -> int:
    try:
        with open(str(path), "rb") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0
