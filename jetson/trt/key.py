"""Device keys: which engine belongs to which device, and why an engine is stale.

A TensorRT engine is valid only for the SoC/GPU, compute capability and TensorRT version it was built with,
and only for the precision, DLA core, model and calibration cache it was built from. The key puts all of
that in one readable, filesystem-safe name, used as the folder ``engines/<key>/`` inside a bundle::

    xavier-sm72-trt8.5.2-int8-dla0-1a2b3c4d
    orin-sm87-trt10.3.0-fp16-gpu-5e6f7a8b

The trailing hash covers the model's and the calibration cache's sha256. ``build.json`` records every
field in full, and :func:`stale_reasons` compares a recorded build with the current situation field by
field, so a stale engine is explained, never used. Pure Python: no TensorRT, no GPU.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional

from jetseg.errors import JetsegError
from jetseg.trtcompat import PRECISIONS

_SAFE = re.compile(r"[^a-z0-9.]+")


def slug(text: str) -> str:
    """Lower-case ``[a-z0-9.]`` words joined by single dashes: ``"Jetson AGX Xavier"`` -> ``"jetson-agx-xavier"``."""
    out = _SAFE.sub("-", str(text).lower()).strip("-")
    return out or "unknown"


def normalise_cc(value: Any) -> str:
    """Compute capability as two digits: ``(7, 2)``, ``"7.2"``, ``"72"``, ``"sm72"`` -> ``"72"``."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return "%d%d" % (int(value[0]), int(value[1]))
    text = str(value).lower().replace("sm_", "").replace("sm", "").strip()
    if re.fullmatch(r"\d+\.\d+", text):
        major, minor = text.split(".")
        return "%d%d" % (int(major), int(minor))
    if re.fullmatch(r"\d{2,3}", text):
        return text
    raise JetsegError("compute capability %r is not understood; expected e.g. 7.2, (7, 2) or sm72" % (value,))


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on.

    Attributes:
        soc: SoC or GPU name (``xavier``, ``orin``, or a discrete GPU's name).
        compute_capability: two or three digits (``72`` for Xavier, ``87`` for Orin).
        trt_version: TensorRT major.minor.patch (``8.5.2``).
        precision: ``fp32``, ``fp16`` or ``int8``.
        dla_core: the DLA core, or None for the GPU.
        model_sha256: sha256 of the ONNX model the engine was built from.
        calibration_sha256: sha256 of the TensorRT calibration cache used (DLA INT8), else None.
        module: the module (``jetson-agx-xavier-developer-kit``; AGX Xavier and Xavier NX share sm_72 but not
            the SM count), see :func:`jetseg.jetson.device.info.module_name`.
        via: the build route (``onnx`` or ``torch2trt``).
        flags: the builder flags and INT8 path (``fp16``, ``fp16+int8:qdq``, ``fp16+int8:cache+gpu_fallback``).
        batch: the largest batch of the engine's profile (``jetseg build --batch N``); 1 in keys recorded before
            batches existed. Covered by the hash when it is not 1 (so batch-1 folder names did not change).
    """

    soc: str
    compute_capability: str
    trt_version: str
    precision: str
    dla_core: Optional[int]
    model_sha256: str
    calibration_sha256: Optional[str] = None
    module: str = "unknown"
    via: str = "onnx"
    flags: str = ""
    batch: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise JetsegError("precision %r is unknown; expected one of %s" % (self.precision, ", ".join(PRECISIONS)))
        if self.dla_core is not None and (not isinstance(self.dla_core, int) or self.dla_core < 0):
            raise JetsegError("DLA core %r is invalid; expected 0 or 1 (or none for the GPU)" % (self.dla_core,))
        if self.dla_core is not None and self.precision == "fp32":
            raise JetsegError("the DLA runs FP16 and INT8 only; got --precision fp32 with --dla %d "
                              "(use --precision fp16 or int8, or drop --dla)" % self.dla_core)
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise JetsegError("batch %r is invalid; expected an integer >= 1 (jetseg build --batch N)" % (self.batch,))
        object.__setattr__(self, "compute_capability", normalise_cc(self.compute_capability))

    @property
    def device_part(self) -> str:
        """The part that says which device and TensorRT: ``xavier-sm72-trt8.5.2``."""
        return "%s-sm%s-trt%s" % (slug(self.soc), self.compute_capability, slug(self.trt_version))

    @property
    def target(self) -> str:
        return "gpu" if self.dla_core is None else "dla%d" % self.dla_core

    @property
    def content_hash(self) -> str:
        """8 hex digits over the model's and the calibration cache's sha256, the module, route, flags and a
        batch other than 1."""
        text = "%s:%s:%s:%s:%s" % (self.model_sha256, self.calibration_sha256 or "", self.module, self.via,
                                   self.flags)
        if self.batch != 1:
            text += ":batch%d" % self.batch
        digest = hashlib.sha256(text.encode("utf-8"))
        return digest.hexdigest()[:8]

    @property
    def name(self) -> str:
        """The folder name: ``xavier-sm72-trt8.5.2-int8-dla0-1a2b3c4d``."""
        return "%s-%s-%s-%s" % (self.device_part, self.precision, self.target, self.content_hash)

    def __str__(self) -> str:
        return self.name

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["name"] = self.name
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineKey:
        try:
            return cls(soc=str(data["soc"]), compute_capability=str(data["compute_capability"]),
                       trt_version=str(data["trt_version"]), precision=str(data["precision"]),
                       dla_core=None if data.get("dla_core") is None else int(data["dla_core"]),
                       model_sha256=str(data["model_sha256"]),
                       calibration_sha256=data.get("calibration_sha256"),
                       module=str(data.get("module", "unknown")), via=str(data.get("via", "onnx")),
                       flags=str(data.get("flags", "")), batch=int(data.get("batch", 1)))
        except KeyError as exc:
            raise JetsegError("engine record lacks field %s; rebuild the engine with 'jetseg build --force'"
                              % exc) from None


#: (field, what it means) in the order reasons are reported.
_FIELDS = (
    ("soc", "SoC/GPU"),
    ("compute_capability", "compute capability"),
    ("trt_version", "TensorRT version"),
    ("precision", "precision"),
    ("dla_core", "DLA core"),
    ("model_sha256", "model"),
    ("calibration_sha256", "calibration cache"),
    ("module", "module"),
    ("via", "build route (--via)"),
    ("flags", "builder flags"),
    ("batch", "batch (--batch)"),
)


def _show(field: str, value: Any) -> str:
    if value is None:
        return "none" if field != "dla_core" else "GPU"
    if field.endswith("sha256"):
        return str(value)[:12] + ".."
    if field == "compute_capability":
        return "sm" + str(value)
    return str(value)


def stale_reasons(recorded: Mapping[str, Any], current: EngineKey) -> List[str]:
    """Why an engine recorded as ``recorded`` (build.json's ``key``) is not valid for ``current``.

    Returns an empty list when the engine is up to date; otherwise one reason per differing field, e.g.
    ``"TensorRT version: engine 8.5.2, here 8.6.1"``.
    """
    reasons = []
    now = current.to_dict()
    for field, label in _FIELDS:
        then = recorded.get(field)
        here = now[field]
        if field == "compute_capability" and then is not None:
            then = normalise_cc(then)
        if field == "batch":  # keys recorded before batches existed are batch 1
            then = 1 if then is None else then
        if field == "soc" and then is not None:
            then, here = slug(str(then)), slug(str(here))
        if then != here:
            reasons.append("%s: engine %s, here %s" % (label, _show(field, then), _show(field, here)))
    return reasons
