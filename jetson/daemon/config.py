"""The daemon's typed configuration: one dataclass per component, loaded from YAML, overridden by CLI flags.

Example ``daemon.yaml`` (every section and field is optional; see ``jetson/service/daemon.example.yaml``)::

    model: {path: /opt/jetseg/bundles/ultrasound-unet}
    backend: {name: onnxrt, options: {provider: cpu}}
    source: {uri: "v4l2:///dev/video0", realtime: false, stall_timeout_s: 5}
    sinks: ["http://127.0.0.1:8080", "masks:///var/lib/jetseg/masks"]
    roi: {mode: auto, roi_only: true}
    postprocess: {smoothing: 0.3, min_area_px: 50}
    logging: {json: true, interval_s: 10}
    web: {token: change-me}

Errors name the field and the expected value, like spec.yaml errors do:
``config field 'postprocess.smoothing' is 1.5; expected a number in [0, 1)``.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from jetseg.jetson.frames.roi import RoiMode, as_mode, expected_mode
from jetseg.jetson.pipeline.settings import (
    ConfigError,
    PipelineConfig,
    check_fields,
    expect,
    is_number,
    positive_or_none,
)
from jetseg.options import parse_assignments
from jetseg.roibox import RELATIVE_RULE

ROI_MODES = ("bundle", "spec", "auto", "none")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass
class ModelConfig:
    """Which bundle to run; ``path: null`` means the bundled ultrasound demo bundle."""

    path: Optional[str] = None

    def validate(self) -> None:
        expect(self.path is None or (isinstance(self.path, str) and self.path.strip() != ""),
                "model.path", self.path, "a bundle directory or null (the bundled ultrasound model)")


@dataclass
class BackendConfig:
    """The runner (``jetseg.jetson.runners``) and its options, passed as keyword arguments."""

    name: str = "auto"
    options: Dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        expect(isinstance(self.name, str) and self.name != "", "backend.name", self.name,
                "a backend name such as auto, onnxrt, openvino, trt or torch")
        expect(isinstance(self.options, dict), "backend.options", self.options, "a mapping of option: value")


@dataclass
class SourceConfig:
    """The capture source and how the pipeline treats it.

    Attributes:
        uri: a source URI (``synthetic://ultrasound``, a video file, ``dicom://cine.dcm``, ``udp://...``).
        options: keyword options for the source (override the URI's query).
        realtime: pace a file or synthetic source at its native frame rate and treat it like a live one
            (newest frame wins) instead of processing every frame as fast as possible.
        fps: pacing rate for ``realtime`` when the source does not know its own (default 30).
        stall_timeout_s: a live source that delivers nothing for this long is reopened.
        reconnect_initial_s, reconnect_max_s: reconnect backoff, doubling from initial to max.
    """

    uri: str = "synthetic://ultrasound"
    options: Dict[str, Any] = field(default_factory=dict)
    realtime: bool = False
    fps: Optional[float] = None
    stall_timeout_s: float = 5.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 10.0

    def validate(self) -> None:
        expect(isinstance(self.uri, str) and self.uri.strip() != "", "source.uri", self.uri,
                "a source URI such as synthetic://ultrasound, a video file or udp://127.0.0.1:5000")
        expect(isinstance(self.options, dict), "source.options", self.options, "a mapping of option: value")
        expect(isinstance(self.realtime, bool), "source.realtime", self.realtime, "true or false")
        self.fps = positive_or_none(self.fps, "source.fps")
        for key in ("stall_timeout_s", "reconnect_initial_s", "reconnect_max_s"):
            value = getattr(self, key)
            expect(is_number(value) and value > 0, "source." + key, value, "a positive number of seconds")
            setattr(self, key, float(value))
        expect(self.reconnect_max_s >= self.reconnect_initial_s, "source.reconnect_max_s",
                self.reconnect_max_s, "at least source.reconnect_initial_s (%g)" % self.reconnect_initial_s)


@dataclass
class SinkConfig:
    """One output: a sink URI and keyword options for it. In YAML a plain string is the URI."""

    uri: str = "null://"
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class RoiConfig:
    """Where the model looks.

    Attributes:
        mode: ``bundle`` (the default: the mode the bundle was calibrated with, calibration.json ``roi.mode``,
            else ``spec``), ``spec`` (the bundle's ``input.roi``, or the whole frame), ``auto`` (detect the ultrasound
            sector / endoscope field of view from the first frames), ``none`` (the whole frame),
            ``[x, y, w, h]`` in frame pixels, or ``{relative: [x, y, w, h]}`` in fractions of the frame.
        auto_frames: how many first frames ``auto`` looks at.
        roi_only: sinks record and serve only the ROI, so burned-in patient text is not stored.
    """

    mode: Union[str, List[int], Dict[str, List[float]]] = "bundle"
    auto_frames: int = 3
    roi_only: bool = False

    def validate(self) -> None:
        normal = as_mode(self.mode, ROI_MODES)
        expect(normal is not None, "roi.mode", self.mode, expected_mode(self.mode, ROI_MODES))
        assert normal is not None
        self.mode = normal
        expect(isinstance(self.auto_frames, int) and not isinstance(self.auto_frames, bool)
                and 1 <= self.auto_frames <= 100, "roi.auto_frames", self.auto_frames, "an integer 1..100")
        expect(isinstance(self.roi_only, bool), "roi.roi_only", self.roi_only, "true or false")


@dataclass
class PostprocessConfig:
    """Mask clean-up: ``smoothing`` is the EMA weight of the previous frames' probabilities (0 = off);
    ``min_area_px`` removes connected components smaller than this many frame pixels (0 = off)."""

    smoothing: float = 0.0
    min_area_px: int = 0

    def validate(self) -> None:
        expect(is_number(self.smoothing) and 0.0 <= self.smoothing < 1.0, "postprocess.smoothing",
                self.smoothing, "a number in [0, 1) (0 = no temporal smoothing)")
        self.smoothing = float(self.smoothing)
        expect(isinstance(self.min_area_px, int) and not isinstance(self.min_area_px, bool)
                and self.min_area_px >= 0, "postprocess.min_area_px", self.min_area_px,
                "a non-negative integer number of frame pixels (0 = keep every component)")


@dataclass
class LoggingConfig:
    """``json``: one JSON object per log line (journald, log shippers); ``interval_s``: status line period
    (0 = none)."""

    level: str = "info"
    json: bool = False
    interval_s: float = 10.0

    def validate(self) -> None:
        expect(self.level in LOG_LEVELS, "logging.level", self.level, "one of %s" % ", ".join(LOG_LEVELS))
        expect(isinstance(self.json, bool), "logging.json", self.json, "true or false")
        expect(is_number(self.interval_s) and self.interval_s >= 0, "logging.interval_s", self.interval_s,
                "a number of seconds >= 0 (0 = no periodic status line)")
        self.interval_s = float(self.interval_s)


@dataclass
class WebConfig:
    """``token``: required by the web viewer (``http://`` sinks) when set."""

    token: Optional[str] = None

    def validate(self) -> None:
        expect(self.token is None or (isinstance(self.token, str) and self.token != ""), "web.token",
                self.token, "a non-empty string or null")


@dataclass
class DeviceConfig:
    """``telemetry``: where device numbers (power per rail, temperatures, GPU load) come from, exported as
    ``jetseg_device_*`` gauges and in ``/health``: ``auto`` (tegrastats / jtop on a Jetson, nothing
    elsewhere), ``off``, or ``"package.module:function"`` returning ``{name: number}``."""

    telemetry: Optional[str] = "auto"

    def validate(self) -> None:
        value = self.telemetry
        expect(value is None or value in ("auto", "off") or (isinstance(value, str) and ":" in value),
                "device.telemetry", value, "auto, off, or \"package.module:function\"")


@dataclass
class DaemonConfig:
    """Everything ``jetseg run`` needs, one section per component."""

    model: ModelConfig = field(default_factory=ModelConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    sinks: List[SinkConfig] = field(default_factory=lambda: [SinkConfig("null://")])
    roi: RoiConfig = field(default_factory=RoiConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    web: WebConfig = field(default_factory=WebConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)

    def validate(self) -> DaemonConfig:
        for name in ("model", "backend", "source", "roi", "postprocess", "pipeline", "logging", "web", "device"):
            getattr(self, name).validate()
        expect(isinstance(self.sinks, list) and len(self.sinks) > 0, "sinks", self.sinks,
                "a list of at least one sink URI (null:// to discard)")
        for i, sink in enumerate(self.sinks):
            expect(isinstance(sink.uri, str) and "://" in sink.uri, "sinks[%d].uri" % i, sink.uri,
                    "a sink URI such as http://127.0.0.1:8080, masks://DIR, file://out.mp4 or null://")
            expect(isinstance(sink.options, dict), "sinks[%d].options" % i, sink.options,
                    "a mapping of option: value")
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DaemonConfig:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("a daemon config must be a mapping of sections (model, source, sinks, ...), got %s"
                              % type(data).__name__)
        data = copy.deepcopy(data)
        check_fields(cls, data, "")
        kwargs: Dict[str, Any] = {}
        for name, section in data.items():
            if name == "sinks":
                kwargs[name] = _sinks(section)
            else:
                kwargs[name] = _section(cls.__dataclass_fields__[name].default_factory, section, name)
        return cls(**kwargs).validate()

    @classmethod
    def load(cls, path: Union[str, Path]) -> DaemonConfig:
        from jetseg.yamlfile import read_yaml

        data = read_yaml(path, ConfigError, "config", "; pass an existing YAML file to --config")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError("%s: %s" % (path, exc)) from None


def _section(factory: Any, data: Any, name: str) -> Any:
    default = factory()
    if data is None:
        return default
    if name == "roi" and (isinstance(data, (str, list)) or (isinstance(data, dict) and set(data) == {"relative"})):
        # shorthand: roi: auto, roi: [x, y, w, h], roi: {relative: [x, y, w, h]}
        data = {"mode": data}
    if name == "model" and isinstance(data, str):  # shorthand: model: path/to/bundle
        data = {"path": data}
    if name == "source" and isinstance(data, str):  # shorthand: source: URI
        data = {"uri": data}
    if not isinstance(data, dict):
        raise ConfigError("config section %r is %r; expected a mapping of fields (%s)"
                          % (name, data, ", ".join(sorted(type(default).__dataclass_fields__))))
    check_fields(type(default), data, name)
    return dataclasses.replace(default, **data)


def _sinks(data: Any) -> List[SinkConfig]:
    if isinstance(data, str):
        data = [data]
    expect(isinstance(data, list), "sinks", data, "a list of sink URIs or {uri, options} mappings")
    out = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            out.append(SinkConfig(uri=item))
            continue
        expect(isinstance(item, dict), "sinks[%d]" % i, item, "a sink URI or a mapping {uri, options}")
        check_fields(SinkConfig, item, "sinks[%d]" % i)
        out.append(SinkConfig(**item))
    return out


def parse_roi(text: str) -> RoiMode:
    """A ``--roi`` value (``run`` and ``calibrate`` alike): ``bundle``, ``auto``, ``spec``, ``none``, ``x,y,w,h``
    in frame pixels, or ``relative:x,y,w,h`` in fractions of the frame (``{"relative": [x, y, w, h]}``, the
    form spec.yaml's ``input.roi`` takes, so that one box fits frames of every size)."""
    value = text.strip().lower()
    if value in ROI_MODES:
        return value
    relative = value.startswith("relative:")
    parts = [p.strip() for p in value[len("relative:"):].split(",")] if relative else value.split(",")
    numbers: List[Any] = []
    try:
        numbers = [float(p) if relative else int(p) for p in parts]
    except ValueError:
        pass
    mode = as_mode({"relative": numbers} if relative else numbers)
    if mode is None and relative:
        raise ConfigError("--roi %r: expected relative:x,y,w,h as %s (e.g. relative:0.1,0.05,0.8,0.9)"
                          % (text, RELATIVE_RULE))
    if mode is None:
        raise ConfigError("--roi %r: expected auto, spec, none or x,y,w,h in frame pixels (e.g. 80,40,480,400), "
                          "relative:x,y,w,h in fractions of the frame (e.g. relative:0.1,0.05,0.8,0.9), or bundle "
                          "(as the bundle was calibrated)" % text)
    return mode


def parse_options(items: Optional[List[str]], flag: str) -> Dict[str, Any]:
    """``--backend-option`` / ``--source-option`` items -> keyword options (:func:`jetseg.options.parse_assignments`,
    raising ConfigError): ``["provider=cpu", "threads=2"]`` -> ``{"provider": "cpu", "threads": 2}``."""
    return parse_assignments(items, flag, ConfigError)


def apply_overrides(config: DaemonConfig, overrides: Dict[str, Any]) -> DaemonConfig:
    """A copy of ``config`` with command-line values applied, validated.

    Keys are dotted field names (``"source.uri"``, ``"roi.mode"``); mappings (``"backend.options"``) are
    merged into the file's; ``"sinks"`` (a list of URIs) replaces the file's sinks. None values are skipped.
    """
    config = copy.deepcopy(config)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "sinks":
            config.sinks = [item if isinstance(item, SinkConfig) else SinkConfig(uri=item) for item in value]
            continue
        section_name, _, name = key.partition(".")
        section = getattr(config, section_name)
        current = getattr(section, name)
        if isinstance(current, dict) and isinstance(value, dict):
            value = dict(current, **value)
        setattr(section, name, value)
    return config.validate()
