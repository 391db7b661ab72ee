"""The JSON records jetseg writes, each declared once: its file name, format version and fields.

Like MONAI's bundle properties (``monai/bundle/properties.py``), the writer and every reader share one
declaration: the writer builds the record and calls :meth:`JsonRecord.write`, readers call
:meth:`JsonRecord.read` (or :meth:`JsonRecord.from_dict`) and get typed attributes, or one line that names the
file and the damaged field.

==========================  ======================  ==============================================
record                      file                    written by
==========================  ======================  ==============================================
:class:`ManifestRecord`     ``manifest.json``       every bundle writer (``jetseg.bundle``)
:class:`CalibrationRecord`  ``calibration.json``    ``jetseg calibrate`` (calibration/workflow.py)
:class:`BuildRecord`        ``engines/*/build.json``  ``jetseg build``
:class:`BenchReport`        ``report.json``         ``jetseg bench`` (benchmarks/report.py)
==========================  ======================  ==============================================

A file written by an earlier version may lack a field (it takes the declared default), and keys no field
declares are ignored; a field of the wrong JSON type, or a format newer than this jetseg reads, is an error.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type, TypeVar, Union

from jetseg.errors import BundleError, JetsegError

MANIFEST_FILE = "manifest.json"
CALIBRATION_REPORT_FILE = "calibration.json"
BUILD_FILE = "build.json"
BENCH_REPORT_FILE = "report.json"

R = TypeVar("R", bound="JsonRecord")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NONE = type(None)
_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
          bool: "true or false", _NONE: "null"}


def _field(*types: type, default: Any = dataclasses.MISSING) -> Any:
    """A record field holding one of the JSON ``types``; required unless it has a default."""
    meta = {"types": types}
    if isinstance(default, (dict, list)):
        empty = type(default)
        return dataclasses.field(default_factory=empty, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _json_type(value: Any) -> str:
    for kind in (bool, _NONE, int, float, str, list, dict):
        if isinstance(value, kind):
            return _NAMES[kind]
    return type(value).__name__


@dataclasses.dataclass(frozen=True)
class JsonRecord:
    """Base of the records: the file name, the format key and version, the error a damaged file raises."""

    FILE: ClassVar[str] = ""
    #: the key that holds the format version, and the newest version this jetseg reads and writes
    FORMAT_KEY: ClassVar[str] = "format"
    FORMAT: ClassVar[Union[int, str]] = 1
    ERROR: ClassVar[Type[JetsegError]] = BundleError
    #: what to do about a damaged file (ends the error message)
    REMEDY: ClassVar[str] = "the file is damaged"

    @classmethod
    def from_dict(cls: Type[R], data: Any, source: Any = None) -> R:
        """The record of a parsed JSON document; ``source`` (the file) names it in errors.

        Raises:
            JetsegError (the record's ``ERROR``): ``data`` is not an object, lacks a required field, holds a
                field of the wrong type, or has a newer format.
        """
        where = str(source) if source is not None else cls.FILE
        if not isinstance(data, dict):
            raise cls.ERROR("%s is %s, not a JSON object; %s" % (where, _json_type(data), cls.REMEDY))
        values = {}
        for f in dataclasses.fields(cls):
            types: Tuple[type, ...] = f.metadata["types"]
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if f.name not in data:
                if required:
                    raise cls.ERROR("%s has no %r field; %s" % (where, f.name, cls.REMEDY))
                continue
            value = data[f.name]
            if not any(_is(value, kind) for kind in types):
                raise cls.ERROR("%s: field %r is %s; expected %s; %s"
                                % (where, f.name, _json_type(value), " or ".join(_NAMES[k] for k in types),
                                   cls.REMEDY))
            values[f.name] = value
        record = cls(**values)
        record._check(where)
        return record

    def _check(self, where: str) -> None:
        """Checks beyond the fields' JSON types (the format version; subclasses add their own)."""
        version = getattr(self, self.FORMAT_KEY)
        newest = self.FORMAT
        if isinstance(newest, int) and isinstance(version, int) and version > newest:
            raise self.ERROR("%s has format %d; this jetseg reads format <= %d: upgrade jetseg"
                             % (where, version, newest))
        if isinstance(newest, str) and version != newest:
            raise self.ERROR("%s has format %r; this jetseg reads %r; %s" % (where, version, newest, self.REMEDY))

    def to_dict(self) -> Dict[str, Any]:
        """The record as a JSON object (a deep copy)."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        """The file's text: indented JSON, one trailing newline. A field that is None by default and None
        now is left out, as its writer leaves it out (``gates`` of a bench run without gates)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not (f.default is None and getattr(self, f.name) is None)}
        return json.dumps(data, indent=2) + "\n"

    def write(self, directory: Union[str, Path]) -> Path:
        """Write the record as ``directory/FILE``; returns the file."""
        path = Path(directory) / self.FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls: Type[R], path: Union[str, Path]) -> R:
        """The record in ``path`` (the file, or the directory holding ``FILE``).

        Raises:
            JetsegError (the record's ``ERROR``): the file is missing, unreadable, not JSON, or damaged.
        """
        path = Path(path)
        if path.is_dir():
            path = path / cls.FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise cls.ERROR("cannot read %s (%s); %s" % (path, exc.strerror or exc, cls.REMEDY)) from None
        except ValueError as exc:
            raise cls.ERROR("%s is not valid JSON (%s); %s" % (path, exc, cls.REMEDY)) from None
        return cls.from_dict(data, path)


@dataclasses.dataclass(frozen=True)
class ManifestRecord(JsonRecord):
    """``manifest.json``: the sha256 of every file of a bundle, and how the bundle was made.

    Attributes:
        files: bundle-relative path -> sha256 of every file but the manifest and ``engines/``.
        precision: ``fp32`` or ``int8`` (calibration sets it).
        created: ISO 8601 UTC time of writing.
        versions: interpreter and package versions (:func:`jetseg.bundle.versions`).
        provenance: how the bundle was made: ``command`` (:func:`jetseg.bundle.command_line`), and what the
            writing command adds (data hashes, architecture, metrics, ...).
    """

    FILE: ClassVar[str] = MANIFEST_FILE
    REMEDY: ClassVar[str] = "the bundle is damaged: re-create it with 'jetseg export'"

    files: Dict[str, str] = _field(dict)
    format: int = _field(int, default=1)
    precision: str = _field(str, default="fp32")
    created: Optional[str] = _field(str, _NONE, default=None)
    versions: Dict[str, str] = _field(dict, default={})
    provenance: Dict[str, Any] = _field(dict, default={})

    def _check(self, where: str) -> None:
        super()._check(where)
        for name, digest in self.files.items():
            if not isinstance(digest, str) or not _SHA256.match(digest):
                shown = _json_type(digest) if not isinstance(digest, str) else "%r" % digest[:80]
                raise self.ERROR("%s: files[%r] is %s; expected a sha256 string (64 hex digits); %s"
                                 % (where, name, shown, self.REMEDY))
            parts = name.split("/")
            if name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in parts):
                raise self.ERROR("%s: files lists %r; expected a path inside the bundle such as 'model.onnx' "
                                 "(no absolute path, no '..'); %s" % (where, name, self.REMEDY))


@dataclasses.dataclass(frozen=True)
class CalibrationRecord(JsonRecord):
    """``calibration.json``: what ``jetseg calibrate`` did (the one reader is :meth:`Bundle.calibration`).

    Every field but ``float_layers`` is optional: bundles calibrated by earlier versions recorded less.

    Attributes:
        method: ``entropy``, ``minmax`` or ``percentile``.
        target: ``tensorrt`` or ``cpu``: the INT8 form of model.onnx (None if not recorded).
        trt_version: the TensorRT version the calibration cache was written for.
        fp32_bundle: ``path`` and ``model_sha256`` of the FP32 bundle calibrated.
        scans: the scan source, frames read, skipped files and the files used.
        curation: how calibration, hold-out and bench frames were chosen.
        roi: the ROI the frames were cropped to: ``mode`` (``auto``, ``spec``, ``none`` or ``[x, y, w, h]``,
            as ``--roi``) and ``files``: per file or sequence ``{"roi": [x, y, w, h], "frame": [w, h],
            "how": ...}``. ``run``'s default ROI follows ``mode`` (empty: calibrated before it was recorded).
        gate: the accuracy gate: threshold, verdict, attempts, sensitivity.
        float_layers: ONNX node names the accuracy gate kept in float.
        model: the INT8 model: opset, Q/DQ summary, sizes, inputs/outputs.
        tensorrt_check: the TensorRT Q/DQ rule check and its violations.
        implicit_int8: the float graph the calibration cache refers to (``model``, ``model_sha256``, ...).
        ranges: tensor name -> [min, max].
        versions: interpreter and package versions.
        openvino: OpenVINO's own INT8 model (``--target cpu``; calibration/nncfquant.py): ``model`` and
            ``weights`` (the IR's files, or None when it was not kept), ``kept`` and ``why``, ``ignored_scope``
            (layers kept in float), its ``gate`` result and attempts, ``speed`` against the Q/DQ model.
    """

    FILE: ClassVar[str] = CALIBRATION_REPORT_FILE
    REMEDY: ClassVar[str] = "the bundle is damaged: calibrate again"

    format: int = _field(int, default=1)
    method: Optional[str] = _field(str, _NONE, default=None)
    target: Optional[str] = _field(str, _NONE, default=None)
    trt_version: Optional[str] = _field(str, _NONE, default=None)
    fp32_bundle: Dict[str, Any] = _field(dict, default={})
    scans: Dict[str, Any] = _field(dict, default={})
    curation: Dict[str, Any] = _field(dict, default={})
    roi: Dict[str, Any] = _field(dict, default={})
    gate: Dict[str, Any] = _field(dict, default={})
    float_layers: List[str] = _field(list, default=[])
    model: Dict[str, Any] = _field(dict, default={})
    tensorrt_check: Dict[str, Any] = _field(dict, default={})
    implicit_int8: Optional[Dict[str, Any]] = _field(dict, _NONE, default=None)
    ranges: Dict[str, List[float]] = _field(dict, default={})
    versions: Dict[str, str] = _field(dict, default={})
    openvino: Optional[Dict[str, Any]] = _field(dict, _NONE, default=None)

    @property
    def fp32_model(self) -> Optional[str]:
        """The float graph the calibration cache refers to, when the bundle ships it (``model.fp32.onnx``; a
        cpu-target bundle does not)."""
        return str(self.implicit_int8["model"]) if self.implicit_int8 and self.implicit_int8.get("model") else None

    @property
    def fp32_model_sha256(self) -> Optional[str]:
        """That graph's sha256 (``unknown`` if the record omits it); None for a bundle calibrated before
        calibration.json recorded it."""
        if self.implicit_int8 is None:
            return None
        return str(self.implicit_int8.get("model_sha256") or "unknown")


@dataclasses.dataclass(frozen=True)
class BuildRecord(JsonRecord):
    """``engines/<device-key>/build.json``: how an engine was built (jetseg.jetson.trt.store judges it).

    Attributes:
        key: the engine's device key (:meth:`EngineKey.to_dict`), compared field by field before use.
        engine_sha256: sha256 of ``engine.plan``.
        created: ISO 8601 UTC time of the build.
        command: the command line that built it.
        via: ``onnx`` or ``torch2trt``.
        versions: TensorRT, CUDA, L4T, JetPack and jetseg versions.
        device: module, SoC, compute capability, power mode and clocks.
        flags: precision, INT8 mode, DLA core, workspace, network file, features, notes.
        timings: seconds per step (``parse_s``, ``build_s``, ``total_s``).
        placement: the DLA placement estimate, before the build.
        placement_actual: what TensorRT decided (engine inspector).
        io: the engine's I/O tensors (name, mode, shape, dtype).
        engine_bytes: the size of ``engine.plan``.
        precision_retry: empty, or why the build with OBEY_PRECISION_CONSTRAINTS failed and that it was built
            again without the flag (``first_error``, ``cleared_flag``, ``constrained_layers``); absent in
            build.json files written before it existed.
        batch: the largest batch the engine runs (``jetseg build --batch N``); 1 when absent (built before
            batches were recorded).
        profile: the input's optimization profile (``input``, ``batch``, ``min``/``opt``/``max`` or the static
            ``shape``, ``calibration``, and on the DLA what it allows: ``dla``); see jetson/trt/profile.py.
    """

    FILE: ClassVar[str] = BUILD_FILE
    REMEDY: ClassVar[str] = "the engine folder is damaged: rebuild it with 'jetseg build --force'"

    key: Dict[str, Any] = _field(dict)
    engine_sha256: Optional[str] = _field(str, _NONE, default=None)
    format: int = _field(int, default=1)
    created: Optional[str] = _field(str, _NONE, default=None)
    command: Optional[str] = _field(str, _NONE, default=None)
    via: str = _field(str, default="onnx")
    versions: Dict[str, Any] = _field(dict, default={})
    device: Dict[str, Any] = _field(dict, default={})
    flags: Dict[str, Any] = _field(dict, default={})
    timings: Dict[str, float] = _field(dict, default={})
    placement: List[Dict[str, Any]] = _field(list, default=[])
    placement_actual: Dict[str, Any] = _field(dict, default={})
    io: List[Dict[str, Any]] = _field(list, default=[])
    engine_bytes: Optional[int] = _field(int, _NONE, default=None)
    precision_retry: Dict[str, Any] = _field(dict, default={})
    batch: int = _field(int, default=1)
    profile: Dict[str, Any] = _field(dict, default={})


@dataclasses.dataclass(frozen=True)
class BenchReport(JsonRecord):
    """``report.json`` of ``jetseg bench`` (schema in docs/benchmarks.md); a later run's baseline.

    Attributes:
        schema: ``jetseg.bench/1``.
        results: one row per bundle, backend, kind and batch.
        conditions: machine, versions, power mode, clocks, load, threads.
        settings: the benchmark settings.
        data: the frame source and how many frames (labelled) it gave.
        roi: the ROI the frames were cropped to: ``asked`` (``--roi``), ``mode`` (``bundle`` resolved), ``how``
            and ``files`` (per file ``{"roi": [x, y, w, h], "frame": [w, h], "how"}``, as calibration.json).
        reference: the FP32 reference row's bundle, path, precision and backend.
        skipped: rows not run, with the reason.
        summary: headline figures.
        cost: the benchmark process's own cost (peak RSS).
        gates: the CI gates' verdicts, when gates were given.
        viewer: ``jetseg bench --viewer``: the web viewer measured in headless chromium (``conditions``, and
            ``runs``: per tab count the pipeline's fps and each tab's capture-to-display latency and shown fps).
        files: the files written next to the report.
    """

    FILE: ClassVar[str] = BENCH_REPORT_FILE
    FORMAT_KEY: ClassVar[str] = "schema"
    FORMAT: ClassVar[Union[int, str]] = "jetseg.bench/1"
    ERROR: ClassVar[Type[JetsegError]] = JetsegError
    REMEDY: ClassVar[str] = "give the report.json of an earlier 'jetseg bench' run"

    schema: str = _field(str)
    results: List[Dict[str, Any]] = _field(list)
    conditions: Dict[str, Any] = _field(dict, default={})
    settings: Dict[str, Any] = _field(dict, default={})
    data: Dict[str, Any] = _field(dict, default={})
    roi: Dict[str, Any] = _field(dict, default={})
    reference: Dict[str, Any] = _field(dict, default={})
    skipped: List[Dict[str, Any]] = _field(list, default=[])
    summary: Dict[str, Any] = _field(dict, default={})
    cost: Dict[str, Any] = _field(dict, default={})
    gates: Optional[List[Dict[str, Any]]] = _field(list, _NONE, default=None)
    viewer: Optional[Dict[str, Any]] = _field(dict, _NONE, default=None)
    files: List[str] = _field(list, default=[])
