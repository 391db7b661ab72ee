"""The model contract (``spec.yaml``) and the one implementation of pre- and post-processing.

Calibration, the runtime and the benchmarks all turn frames into model input with
:meth:`Spec.preprocess` and model output into masks with :meth:`Spec.decode`. A mismatch between
calibration-time and run-time preprocessing is the classic silent INT8 failure, so there is no second
implementation anywhere.

Frames are numpy arrays as OpenCV delivers them: ``HxW`` (grey) or ``HxWx3`` (BGR), ``uint8`` or
``uint16`` (or float32 already in [0, 1]). Model input is ``NCHW float32``. Masks are ``HxW uint8``
class indices (0 is background).

Example ``spec.yaml``::

    name: ultrasound-unet
    task: segmentation
    input: {name: input, size: [128, 128], channels: 1, color_order: gray,
            mean: [0.0], std: [1.0], roi: {relative: [0.125, 0.083, 0.75, 0.833]}}
    output: {name: logits, kind: softmax}
    classes: [background, lesion]
    colors: [[0, 0, 0], [255, 64, 64]]
    pixel_spacing_mm: [0.2, 0.2]

The task (segmentation, the default; enhancement; registration) and its section: :mod:`jetseg.tasks`.
"""
from __future__ import annotations

import copy
import functools
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from jetseg import tasks
from jetseg.errors import SpecError
from jetseg.roibox import RELATIVE_RULE, is_relative, relative_box

log = logging.getLogger("jetseg.spec")

OUTPUT_KINDS = ("softmax", "sigmoid")
ACTIVATIONS = ("logits", "probabilities")
COLOR_ORDERS = {1: ("gray",), 3: ("rgb", "bgr")}
LAYOUTS = ("NCHW",)
INTERPOLATIONS = ("linear", "area", "nearest")

_cv2 = None


def _opencv():
    global _cv2
    if _cv2 is None:
        from jetseg.optional import require

        _cv2 = require("cv2", "image preprocessing")
    return _cv2


@dataclass
class InputSpec:
    """How a frame becomes the model's input tensor (NCHW float32)."""

    name: str = "input"
    size: Tuple[int, int] = (128, 128)  # (height, width) of the model input
    channels: int = 1
    color_order: str = "gray"  # what the model expects: gray, rgb or bgr
    layout: str = "NCHW"
    mean: List[float] = field(default_factory=lambda: [0.0])
    std: List[float] = field(default_factory=lambda: [1.0])
    # Crop applied before resizing: [x, y, width, height] in frame pixels, or {relative: [x, y, w, h]} as
    # fractions (0..1) of the frame's width and height; None = whole frame.
    roi: Optional[Union[List[int], Dict[str, List[float]]]] = None
    interpolation: str = "linear"


@dataclass
class OutputSpec:
    """How the model's output becomes a mask."""

    name: str = "logits"
    kind: str = "softmax"  # softmax: one channel per class, argmax; sigmoid: one channel per foreground class
    threshold: float = 0.5  # sigmoid only, on the probability
    # What the model's last layer gives: logits (the decoder applies the activation) or probabilities (the
    # model ends in Sigmoid/Softmax; applying it again would mark every pixel). Old bundles: logits.
    activation: str = "logits"


@dataclass
class Spec:
    """A model's contract: task (and its section, :mod:`jetseg.tasks`), input, output, classes, colours."""

    name: str = "model"
    task: str = "segmentation"
    input: InputSpec = field(default_factory=InputSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    classes: List[str] = field(default_factory=lambda: ["background", "target"])
    colors: Optional[List[List[int]]] = None  # RGB per class; None = defaults
    overlay_alpha: float = 0.45
    pixel_spacing_mm: Optional[List[float]] = None  # [row, column] spacing of the *frame*, in mm
    description: str = ""
    enhancement: Optional[tasks.EnhancementSpec] = None
    registration: Optional[tasks.RegistrationSpec] = None

    # ------------------------------------------------------------------ construction and validation
    def __post_init__(self) -> None:
        if isinstance(self.input, dict):
            self.input = tasks.build_section(InputSpec, self.input, "input")
        if isinstance(self.output, dict):
            self.output = tasks.build_section(OutputSpec, self.output, "output")
        tasks.expect_field(isinstance(self.input, InputSpec), "input", self.input, "a mapping (name, size, channels, ...)")
        tasks.expect_field(isinstance(self.output, OutputSpec), "output", self.output, "a mapping (name, kind, ...)")
        self.validate()

    @classmethod
    def from_dict(cls, data: Any) -> Spec:
        if not isinstance(data, dict):
            raise SpecError("spec must be a mapping of fields, got %s" % type(data).__name__)
        return tasks.build_section(cls, copy.deepcopy(data), "")

    @classmethod
    def load(cls, path: Union[str, Path]) -> Spec:
        from jetseg.yamlfile import read_yaml

        data = read_yaml(path, SpecError, "spec")
        try:
            return cls.from_dict(data)
        except SpecError as exc:
            raise SpecError("%s: %s" % (path, exc)) from None

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["input"]["size"] = list(self.input.size)
        for section in ("enhancement", "registration"):  # a segmentation spec reads and writes as before
            if data[section] is None:
                del data[section]
        return data

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    def validate(self) -> None:
        """Check every field; raise SpecError naming the field and what was expected."""
        inp, out = self.input, self.output
        tasks.expect_field(self.task in tasks.TASKS, "task", self.task, "one of %s" % ", ".join(tasks.TASKS))
        self.enhancement, self.registration = tasks.validate_task(self.task, self.enhancement, self.registration,
                                                            self.input.name, self.output.name)
        size = inp.size
        tasks.expect_field(isinstance(size, (list, tuple)) and len(size) == 2
                and all(isinstance(v, int) and v > 0 for v in size),
                "input.size", size, "[height, width] with two positive integers")
        inp.size = (int(size[0]), int(size[1]))
        tasks.expect_field(inp.channels in COLOR_ORDERS, "input.channels", inp.channels, "1 or 3")
        tasks.expect_field(inp.color_order in COLOR_ORDERS[inp.channels], "input.color_order", inp.color_order,
                " or ".join(COLOR_ORDERS[inp.channels]) + " for %d channel(s)" % inp.channels)
        tasks.expect_field(inp.layout in LAYOUTS, "input.layout", inp.layout, "NCHW")
        tasks.expect_field(inp.interpolation in INTERPOLATIONS, "input.interpolation", inp.interpolation,
                "one of %s" % ", ".join(INTERPOLATIONS))
        for key in ("mean", "std"):
            value = getattr(inp, key)
            if isinstance(value, (int, float)):
                value = [float(value)] * inp.channels
            tasks.expect_field(isinstance(value, (list, tuple)) and len(value) in (1, inp.channels)
                    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value),
                    "input." + key, value, "a finite number or a list of %d finite numbers" % inp.channels)
            setattr(inp, key, [float(v) for v in value])
        tasks.expect_field(all(v > 0 for v in inp.std), "input.std", inp.std, "positive numbers")
        if isinstance(inp.roi, dict):
            rel: Any = inp.roi.get("relative")
            tasks.expect_field(set(inp.roi) == {"relative"} and is_relative(rel),
                               "input.roi", inp.roi, "{relative: [x, y, width, height]} as %s" % RELATIVE_RULE)
            inp.roi = {"relative": [float(v) for v in rel]}
        elif inp.roi is not None:
            tasks.expect_field(isinstance(inp.roi, (list, tuple)) and len(inp.roi) == 4
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in inp.roi)
                    and inp.roi[0] >= 0 and inp.roi[1] >= 0 and inp.roi[2] > 0 and inp.roi[3] > 0,
                    "input.roi", inp.roi, "[x, y, width, height] in frame pixels, {relative: [x, y, width, "
                    "height]} as fractions of the frame, or null")
            inp.roi = [int(v) for v in inp.roi]
        tasks.expect_field(out.kind in OUTPUT_KINDS, "output.kind", out.kind, "one of %s" % ", ".join(OUTPUT_KINDS))
        tasks.expect_field(out.activation in ACTIVATIONS, "output.activation", out.activation,
                "one of %s" % ", ".join(ACTIVATIONS))
        tasks.expect_field(isinstance(out.threshold, (int, float)) and 0.0 < out.threshold < 1.0,
                "output.threshold", out.threshold, "a probability between 0 and 1")
        tasks.expect_field(isinstance(self.classes, list) and len(self.classes) >= 2
                and all(isinstance(c, str) and c for c in self.classes)
                and len(set(self.classes)) == len(self.classes),
                "classes", self.classes, "a list of at least two distinct names, background first")
        if self.colors is None:
            self.colors = default_colors(len(self.classes))
        tasks.expect_field(isinstance(self.colors, list) and len(self.colors) == len(self.classes)
                and all(isinstance(c, (list, tuple)) and len(c) == 3
                        and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in self.colors),
                "colors", self.colors, "one [r, g, b] (0-255) per class, %d in all" % len(self.classes))
        tasks.expect_field(isinstance(self.overlay_alpha, (int, float)) and 0.0 <= self.overlay_alpha <= 1.0,
                "overlay_alpha", self.overlay_alpha, "a number between 0 and 1")
        if self.pixel_spacing_mm is not None:
            tasks.expect_field(isinstance(self.pixel_spacing_mm, (list, tuple)) and len(self.pixel_spacing_mm) == 2
                    and all(isinstance(v, (int, float)) and v > 0 for v in self.pixel_spacing_mm),
                    "pixel_spacing_mm", self.pixel_spacing_mm, "[row_mm, column_mm], positive, or null")

    def require_task(self, what: str, *names: str) -> None:
        """Raise SpecError when this spec's task is not one of ``names`` (``what``: the command or step)."""
        tasks.require(self.task, what, *names)

    # ------------------------------------------------------------------ derived facts
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        """The model's input shape, NCHW with batch 1."""
        return (1, self.input.channels, self.input.size[0], self.input.size[1])

    @property
    def output_channels(self) -> int:
        """softmax: one channel per class; sigmoid: one per foreground class (multi-label when several);
        enhancement: the image's channels; registration: the field's two (x, y)."""
        if self.enhancement is not None:
            return self.enhancement.channels
        if self.registration is not None:
            return 2
        return self.num_classes - 1 if self.output.kind == "sigmoid" else self.num_classes

    @property
    def multilabel(self) -> bool:
        """Sigmoid outputs with several foreground classes: each pixel may belong to several classes."""
        return self.output.kind == "sigmoid" and self.num_classes > 2

    @property
    def output_shape(self) -> Tuple[int, int, int, int]:
        return (1, self.output_channels, self.input.size[0], self.input.size[1])

    def roi_for(self, frame_shape: Sequence[int]) -> Tuple[int, int, int, int]:
        """The crop ``(x, y, w, h)`` for a frame of this shape: a relative ROI scaled to the frame, a pixel
        ROI clipped to it (with one warning per frame size when clipping changes it)."""
        height, width = int(frame_shape[0]), int(frame_shape[1])
        roi = self.input.roi
        if roi is None:
            return 0, 0, width, height
        if isinstance(roi, dict):
            return relative_box(roi["relative"], frame_shape)
        x, y, w, h = roi
        if x >= width or y >= height:
            raise SpecError("input.roi %s lies outside the %dx%d frame; fix the ROI in spec.yaml or the "
                            "config, or give it relative to the frame ({relative: [x, y, w, h]})"
                            % (roi, width, height))
        clipped = (x, y, min(w, width - x), min(h, height - y))
        if clipped[2:] != (w, h):
            warn_clipped("input.roi", list(roi), clipped, width, height)
        return clipped

    # ------------------------------------------------------------------ preprocessing
    def preprocess(self, frame: np.ndarray, roi: Optional[Sequence[int]] = None) -> np.ndarray:
        """Turn one frame into the model input: ``(1, C, H, W) float32``.

        Steps, in order: ROI crop, colour conversion to the model's channels, resize to ``input.size``,
        scaling to [0, 1] (uint8 / 255, uint16 / 65535, float taken as is), ``(x - mean) / std``, HWC to CHW.
        Work is done where it is cheapest without changing a value: grey conversion before the resize (it
        rounds), channel order and alpha after it, on the model-size planes (per-channel steps commute with
        the resize), and integer pixels are normalised by table look-up (the same float32 arithmetic).

        Args:
            frame: ``HxW`` grey or ``HxWx3`` BGR (``HxWx4`` BGRA is accepted), uint8, uint16 or float.
            roi: ``(x, y, w, h)`` crop overriding ``input.roi`` (the daemon's detected ROI).
        """
        cv2 = _opencv()
        frame = _check_frame(frame)
        x, y, w, h = self.roi_for(frame.shape) if roi is None else [int(v) for v in roi]
        crop = frame[y:y + h, x:x + w]
        if crop.size == 0:
            raise SpecError("ROI %s is empty for a frame of shape %s" % ((x, y, w, h), frame.shape))
        if self.input.channels == 1 and crop.ndim == 3:
            if crop.shape[2] == 4:
                crop = cv2.cvtColor(crop, cv2.COLOR_BGRA2BGR)
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        height, width = self.input.size
        if crop.shape[:2] != (height, width):
            interp = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA,
                      "nearest": cv2.INTER_NEAREST}[self.input.interpolation]
            crop = cv2.resize(crop, (width, height), interpolation=interp)
        out = np.empty((1, self.input.channels, height, width), dtype=np.float32)
        for c, plane in enumerate(self._planes(cv2, crop)):
            self._normalise(cv2, plane, c, out[0, c])
        return out

    def _planes(self, cv2: Any, image: np.ndarray) -> List[np.ndarray]:
        """The model's channels, in its order, from a grey, BGR or BGRA image."""
        if image.ndim == 2:
            return [image] * self.input.channels
        blue, green, red = cv2.split(image)[:3]
        return [red, green, blue] if self.input.color_order == "rgb" else [blue, green, red]

    def _normalise(self, cv2: Any, plane: np.ndarray, channel: int, dst: np.ndarray) -> None:
        """``(plane * scale - mean) / std`` of one channel into ``dst`` (float32)."""
        kind = plane.dtype.name
        if kind in _SCALES:  # integer pixels: one table look-up per pixel (the same float32 values)
            table = _normalisation_tables(kind, tuple(self.input.mean), tuple(self.input.std))[channel]
            if kind == "uint8":
                cv2.LUT(plane, table, dst=dst)  # OpenCV's LUT: several times faster than numpy indexing
            else:
                np.take(table, plane, out=dst)
            return
        mean, std = np.float32(self.input.mean[channel]), np.float32(self.input.std[channel])
        np.divide(plane.astype(np.float32) - mean, std, out=dst)

    def preprocess_batch(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Several frames at once: ``(N, C, H, W) float32``."""
        return np.concatenate([self.preprocess(f) for f in frames], axis=0)

    def preprocess_mask(self, mask: np.ndarray, roi: Optional[Sequence[int]] = None) -> np.ndarray:
        """A full-frame label mask ``HxW`` cropped and resized (nearest) like its frame: ``(h, w) uint8``."""
        cv2 = _opencv()
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise SpecError("a mask must be HxW class indices, got shape %s" % (mask.shape,))
        x, y, w, h = self.roi_for(mask.shape) if roi is None else [int(v) for v in roi]
        crop = np.ascontiguousarray(mask[y:y + h, x:x + w]).astype(np.uint8)
        height, width = self.input.size
        if crop.shape != (height, width):
            crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_NEAREST)
        return crop

    def mask_to_frame(self, mask: np.ndarray, frame_shape: Sequence[int],
                      roi: Optional[Sequence[int]] = None) -> np.ndarray:
        """Map a model-size mask ``(h, w)`` back onto the full frame (nearest); 0 outside the ROI."""
        cv2 = _opencv()
        x, y, w, h = self.roi_for(frame_shape) if roi is None else [int(v) for v in roi]
        full = np.zeros((int(frame_shape[0]), int(frame_shape[1])), dtype=np.uint8)
        full[y:y + h, x:x + w] = cv2.resize(np.ascontiguousarray(mask, dtype=np.uint8), (w, h),
                                            interpolation=cv2.INTER_NEAREST)
        return full

    # ------------------------------------------------------------------ decoding
    def decode(self, output: np.ndarray) -> np.ndarray:
        """Model output ``(N, K, H, W)`` (or ``(K, H, W)``) to masks ``(N, H, W) uint8`` of class indices.

        Multi-label sigmoid outputs give, per pixel, the last class (in ``classes`` order) above the threshold,
        so a lesion listed after its organ shows inside it (the mask that overlays, sinks and scores share);
        :meth:`decode_labels` gives every class's own, overlapping mask.
        """
        self.require_task("decoding to masks", "segmentation")
        output = np.asarray(output)
        if output.ndim == 3:
            output = output[None]
        if output.ndim != 4 or output.shape[1] != self.output_channels:
            raise SpecError("model output has shape %s; spec expects (N, %d, H, W) for output.kind %s with "
                            "%d classes" % (tuple(output.shape), self.output_channels, self.output.kind,
                                            self.num_classes))
        if self.output.kind == "sigmoid":
            t = self._threshold()
            if output.shape[1] == 1:
                return (output[:, 0] > t).astype(np.uint8)
            above = output > t  # painter's order: a later class is drawn over an earlier one it lies in
            last = output.shape[1] - np.argmax(above[:, ::-1], axis=1)
            return np.where(above.any(axis=1), last, 0).astype(np.uint8)
        if output.shape[1] == 2:  # the same as argmax (a tie gives 0), ~50x faster: the runtime's per-frame path
            return (output[:, 1] > output[:, 0]).astype(np.uint8)
        return np.argmax(output, axis=1).astype(np.uint8)

    def decode_labels(self, output: np.ndarray) -> np.ndarray:
        """Per-class masks ``(N, K-1, H, W) bool`` of the foreground classes (overlapping for multi-label)."""
        self.require_task("decoding to masks", "segmentation")
        output = np.asarray(output)
        if output.ndim == 3:
            output = output[None]
        if self.output.kind == "sigmoid":
            return output > self._threshold()
        masks = self.decode(output)
        return np.stack([masks == k for k in range(1, self.num_classes)], axis=1)

    def _threshold(self) -> float:
        """The sigmoid threshold on the output's own scale (a logit, or the probability itself)."""
        p = float(self.output.threshold)
        return p if self.output.activation == "probabilities" else float(np.log(p / (1.0 - p)))

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        """Per-class probabilities ``(N, K, H, W) float32``; sigmoid outputs give background first
        (``1 - max`` over the foreground channels), then each foreground class's own probability."""
        self.require_task("class probabilities", "segmentation")
        output = np.asarray(output, dtype=np.float32)
        if output.ndim == 3:
            output = output[None]
        given = self.output.activation == "probabilities"
        if self.output.kind == "sigmoid":
            p = output if given else 1.0 / (1.0 + np.exp(-output))
            return np.concatenate([1.0 - p.max(axis=1, keepdims=True), p], axis=1)
        if given:
            return output
        e = np.exp(output - output.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


_SCALES = {"uint8": 255.0, "uint16": 65535.0}


@functools.lru_cache(maxsize=16)
def _normalisation_tables(dtype: str, mean: Tuple[float, ...], std: Tuple[float, ...]) -> List[np.ndarray]:
    """Per channel, every integer pixel value's model input: ``(float32(v) - mean * scale) / (std * scale)``,
    computed with the same float32 operations as the float path, so a table look-up gives the same values
    (uint8: 256 entries, uint16: 65536 entries = 256 KB per channel)."""
    scale, values = np.float32(_SCALES[dtype]), np.arange(256 if dtype == "uint8" else 65536, dtype=np.float32)
    tables = [(values - np.float32(m) * scale) / (np.float32(s) * scale) for m, s in zip(mean, std)]
    for table in tables:
        table.setflags(write=False)
    return tables


def default_colors(n: int) -> List[List[int]]:
    """Background black, then distinct saturated colours."""
    palette = [[255, 64, 64], [64, 200, 255], [80, 255, 80], [255, 200, 0], [200, 80, 255],
               [255, 128, 192], [0, 255, 200], [160, 160, 255]]
    return [[0, 0, 0]] + [palette[i % len(palette)] for i in range(n - 1)]


def _check_frame(frame: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise SpecError("a frame must be a numpy array, got %s" % type(frame).__name__)
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))):
        raise SpecError("a frame must be HxW (grey) or HxWx3 (BGR), got shape %s" % (frame.shape,))
    if frame.dtype.name not in ("uint8", "uint16", "float32", "float64"):
        raise SpecError("a frame must be uint8, uint16 or float, got %s" % frame.dtype)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.dtype == np.float64:
        frame = frame.astype(np.float32)
    return frame


_clip_warned: set = set()  # (what, roi, width, height) already warned about: one warning per frame size


def warn_clipped(what: str, roi: Sequence[int], clipped: Sequence[int], width: int, height: int) -> None:
    """Log once per ROI and frame size that a pixel ROI did not fit the frame and was clipped."""
    key = (what, tuple(roi), width, height)
    if key in _clip_warned:
        return
    _clip_warned.add(key)
    log.warning("%s %s does not fit the %dx%d frame; clipped to %s (written for another frame size? give it "
                "relative to the frame: {relative: [x, y, w, h]})", what, list(roi), width, height, list(clipped))
