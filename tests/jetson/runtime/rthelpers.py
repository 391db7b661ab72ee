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
