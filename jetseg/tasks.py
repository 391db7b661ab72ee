"""The tasks a model can do and their own spec sections (``spec.task``; docs/tasks.md).

The task (``segmentation``, the default; ``enhancement``; ``registration``) decides what the output is and
which metric checks it (docs/tasks.md). An enhancement model (image to image) outputs the enhanced image
``(N, enhancement.channels, H, W)`` with values in ``enhancement.range``::

    task: enhancement
    output: {name: enhanced}
    enhancement: {channels: 1, range: [0.0, 1.0]}

A registration model takes two images prepared alike by ``input`` (``input.name`` is the moving image,
``registration.fixed_input`` the fixed one) and outputs the displacement field ``output.name``
``(N, 2, H, W)``, channel 0 along x (columns), channel 1 along y (rows), in ``registration.units``
(``pixels``, or ``normalized``: grid_sample's [-1, 1] coordinates with align_corners=False), and optionally
the warped moving image ``registration.warped_output``::

    task: registration
    input: {name: moving, size: [128, 128], channels: 1, color_order: gray}
    output: {name: flow}
    registration: {fixed_input: fixed, units: pixels, warped_output: warped}
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetseg.errors import SpecError

if TYPE_CHECKING:
    from jetseg.spec import Spec

TASKS = ("segmentation", "enhancement", "registration")
FIELD_UNITS = ("pixels", "normalized")
IMAGE_CHANNELS = (1, 3)


@dataclass
class EnhancementSpec:
    """What an image-to-image model outputs: ``(N, channels, H, W) float32`` in ``range`` ([low, high])."""

    channels: int = 1
    range: List[float] = field(default_factory=lambda: [0.0, 1.0])


@dataclass
class RegistrationSpec:
    """The second input and the field of a registration model (the layout is fixed: ``(N, 2, H, W)``, x then y)."""

    fixed_input: str = "fixed"  # the fixed image's input name; input.name is the moving image
    units: str = "pixels"  # pixels, or normalized (grid_sample's [-1, 1], align_corners=False)
    warped_output: Optional[str] = None  # the model's warped-image output, if it has one


def validate_task(task: str, enhancement: Any, registration: Any,
                  input_name: str, output_name: str) -> Tuple[Optional[EnhancementSpec], Optional[RegistrationSpec]]:
    """Check the task's own section (filled with defaults when absent) and that the others are absent; return
    the ``(enhancement, registration)`` sections to keep. Raises SpecError naming the field."""
    if isinstance(enhancement, dict):
        enhancement = build_section(EnhancementSpec, enhancement, "enhancement")
    if isinstance(registration, dict):
        registration = build_section(RegistrationSpec, registration, "registration")
    sections: Dict[str, Any] = {"enhancement": enhancement, "registration": registration}
    for section in ("enhancement", "registration"):
        if section != task:
            expect_field(sections[section] is None, section, sections[section],
                    "no %s section for task %s (set task: %s, or remove the section)"
                    % (section, task, section))
    if task == "enhancement":
        enh = enhancement or EnhancementSpec()
        expect_field(isinstance(enh, EnhancementSpec), "enhancement", enh, "a mapping (channels, range)")
        expect_field(enh.channels in IMAGE_CHANNELS, "enhancement.channels", enh.channels, "1 or 3")
        rng = enh.range
        expect_field(isinstance(rng, (list, tuple)) and len(rng) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                        for v in rng) and rng[0] < rng[1],
                "enhancement.range", rng, "[low, high], two finite numbers with low < high")
        enh.range = [float(rng[0]), float(rng[1])]
        enhancement = enh
    elif task == "registration":
        reg = registration or RegistrationSpec()
        expect_field(isinstance(reg, RegistrationSpec), "registration", reg,
                "a mapping (fixed_input, units, warped_output)")
        expect_field(isinstance(reg.fixed_input, str) and bool(reg.fixed_input) and reg.fixed_input != input_name,
                "registration.fixed_input", reg.fixed_input,
                "the fixed image's input name, other than input.name (%r, the moving image)" % input_name)
        expect_field(reg.units in FIELD_UNITS, "registration.units", reg.units, " or ".join(FIELD_UNITS))
        expect_field(reg.warped_output is None or (isinstance(reg.warped_output, str) and bool(reg.warped_output)
                                              and reg.warped_output != output_name),
                "registration.warped_output", reg.warped_output,
                "null or the warped image's output name, other than output.name (%r, the field)"
                % output_name)
        registration = reg
    return enhancement, registration


def extra_io(registration: Optional[RegistrationSpec], input_shape: Tuple[int, ...],
             ) -> List[Tuple[str, str, Tuple[int, ...], str]]:
    """The model inputs and outputs a task adds to ``input.name`` and ``output.name``, as ``(kind, name, shape,
    spec field)``: a registration model's fixed image (shaped like the moving one) and its warped image when
    ``warped_output`` names one; none for the other tasks."""
    if registration is None:
        return []
    out = [("input", registration.fixed_input, tuple(input_shape), "registration.fixed_input")]
    if registration.warped_output:
        out.append(("output", registration.warped_output, tuple(input_shape), "registration.warped_output"))
    return out


def require(task: str, what: str, *names: str) -> None:
    """Raise SpecError when ``task`` is not one of ``names`` (``what``: the command or step that needs them)."""
    if task not in names:
        raise SpecError("%s supports task %s; this model's spec.task is %s (see docs/tasks.md for what each "
                        "task supports)" % (what, " and ".join(names), task))


def enhanced_images(output: Any, spec: EnhancementSpec) -> np.ndarray:
    """An enhancement model's output ``(N, C, H, W)`` (or ``(C, H, W)``) as images in [0, 1]: clipped to
    ``spec.range`` and rescaled, ``(N, C, H, W) float32`` (what metrics and sinks read)."""
    output = np.asarray(output, dtype=np.float32)
    if output.ndim == 3:
        output = output[None]
    if output.ndim != 4 or output.shape[1] != spec.channels:
        raise SpecError("model output has shape %s; spec expects (N, %d, H, W) for task enhancement with "
                        "enhancement.channels %d" % (tuple(output.shape), spec.channels, spec.channels))
    low, high = spec.range
    return ((np.clip(output, low, high) - np.float32(low)) / np.float32(high - low)).astype(np.float32)


def clean_target(spec: Spec, clean: np.ndarray, roi: Sequence[int]) -> np.ndarray:
    """A clean target for an enhancement model: the clean full frame ``clean`` (``HxW`` or ``HxWx3`` BGR,
    uint8, uint16 or float in [0, 1]; ``frame.meta["clean"]``) cropped to ``roi`` ``(x, y, w, h)`` as the input
    is, converted to the model's channels and order, area-resized to ``input.size``: ``(C, h, w) float32`` in
    [0, 1] (what :func:`enhanced_images` gives for the model's output). Used by calibrate and bench alike."""
    from jetseg.optional import require

    cv2 = require("cv2", "clean targets")
    height, width = (int(v) for v in spec.input.size)
    x, y, w, h = (int(v) for v in roi)
    crop = np.asarray(clean)[y:y + h, x:x + w]
    scale = 65535.0 if crop.dtype == np.uint16 else 255.0 if crop.dtype == np.uint8 else 1.0
    if spec.input.channels == 1 and crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    crop = cv2.resize(crop.astype(np.float32) / np.float32(scale), (width, height), interpolation=cv2.INTER_AREA)
    image = crop[None] if crop.ndim == 2 else crop.transpose(2, 0, 1)
    if image.shape[0] == 1 and spec.input.channels == 3:
        image = np.repeat(image, 3, axis=0)
    if image.shape[0] == 3 and spec.input.color_order == "rgb":
        image = image[::-1]
    return np.ascontiguousarray(image, dtype=np.float32)


def expect_field(ok: bool, name: str, got: Any, expected: str) -> None:
    """Raise SpecError naming the field, what it is and what was expected, unless ``ok``."""
    if not ok:
        raise SpecError("spec field %r is %r; expected %s" % (name, got, expected))


def build_section(cls: Any, data: Dict[str, Any], prefix: str) -> Any:
    """``cls(**data)`` for a spec section, with one line naming an unknown field (and the closest known one)."""
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        import difflib

        where = prefix + "." if prefix else ""
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = " (did you mean %r?)" % (where + close[0]) if close else ""
        raise SpecError("unknown spec field %r%s; known fields: %s"
                        % (where + unknown[0], hint, ", ".join(where + k for k in sorted(known))))
    try:
        return cls(**data)
    except TypeError as exc:  # wrong type for a nested section, e.g. input: 5
        raise SpecError("spec section %r is malformed: %s" % (prefix or cls.__name__, exc)) from None
