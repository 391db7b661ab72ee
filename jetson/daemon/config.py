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

import contextlib
import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

from jetseg.jetson.frames.roi import as_mode, expected_mode
from jetseg.jetson.pipeline.settings import (
    ConfigError,
    PipelineConfig,
    check_fields,
    expect,
    is_number,
    positive_or_none,
)

ROI_MODES = ("bundle", "spec", "auto", "none")
STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
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
        frozen_after_s: a live source that repeats the same picture for this long is frozen: /health says
            degraded, the viewer NOT LIVE (jetson/pipeline/frozen.py); 0 turns the check off.
        reconnect_initial_s, reconnect_max_s: reconnect backoff, doubling from initial to max.
    """

    uri: str = "synthetic://ultrasound"
    options: Dict[str, Any] = field(default_factory=dict)
    realtime: bool = False
    fps: Optional[float] = None
    stall_timeout_s: float = 5.0
    frozen_after_s: float = 1.0
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
        expect(is_number(self.frozen_after_s) and self.frozen_after_s >= 0, "source.frozen_after_s",
               self.frozen_after_s, "a number of seconds >= 0 (0: no frozen-input check)")
        self.frozen_after_s = float(self.frozen_after_s)
        expect(self.reconnect_max_s >= self.reconnect_initial_s, "source.reconnect_max_s",
                self.reconnect_max_s, "at least source.reconnect_initial_s (%g)" % self.reconnect_initial_s)


@dataclass
class StreamConfig(SourceConfig):
    """One stream of a daemon with several sources (``sources:``): a source with a name, and its own ROI,
    post-processing and sinks (null: the top-level section's ``roi`` / ``postprocess``; sinks: ``null://``)::

        sources:
          - {name: left, uri: "v4l2:///dev/video0", sinks: ["masks:///var/lib/jetseg/left"]}
          - {name: right, uri: "v4l2:///dev/video1", roi: auto}
    """

    name: str = ""
    roi: Any = None
    postprocess: Any = None
    sinks: Any = None

    def validate(self) -> None:
        expect(isinstance(self.name, str) and STREAM_NAME.match(self.name) is not None, "sources[].name",
                self.name, "a stream name of letters, digits, '-' or '_' (it labels metrics, files and pages)")
        where = "sources[%s]" % self.name
        with _within(where, "source"):
            super().validate()
        if self.roi is not None and not isinstance(self.roi, RoiConfig):
            self.roi = _section(RoiConfig, self.roi, where + ".roi")
        if self.postprocess is not None and not isinstance(self.postprocess, PostprocessConfig):
            self.postprocess = _section(PostprocessConfig, self.postprocess, where + ".postprocess")
        for name in ("roi", "postprocess"):
            section = getattr(self, name)
            if section is not None:
                with _within(where, name):
                    section.validate()
        self.sinks = _sinks(self.sinks, where + ".sinks") if self.sinks is not None else None


@contextlib.contextmanager
def _within(where: str, section: str) -> Iterator[None]:
    """Field names in a ConfigError raised inside: ``'roi.mode'`` -> ``'sources[left].roi.mode'``."""
    try:
        yield
    except ConfigError as exc:
        target = where + "." if section == "source" else "%s.%s." % (where, section)
        raise ConfigError(str(exc).replace("'%s." % section, "'" + target)) from None


@dataclass
class BatchConfig:
    """How one daemon's streams share the model (with ``sources:``).

    Attributes:
        size: the most frames in one batch (null: the number of streams), the runner's ``batch_size``
            (ONNX Runtime and OpenVINO; TensorRT batch profiles are not built yet).
        max_delay_ms: the longest the oldest waiting frame waits for the other streams' frames (null: a
            quarter of the fastest stream's frame period; 8.3 ms at 30 fps).
    """

    size: Optional[int] = None
    max_delay_ms: Optional[float] = None

    def validate(self) -> None:
        expect(self.size is None or (isinstance(self.size, int) and not isinstance(self.size, bool)
                                     and 1 <= self.size <= 64), "batch.size", self.size,
               "an integer 1..64 or null (the number of streams)")
        if self.max_delay_ms is not None:
            expect(is_number(self.max_delay_ms) and 0 <= self.max_delay_ms <= 1000, "batch.max_delay_ms",
                   self.max_delay_ms, "a number of milliseconds 0..1000 or null (a quarter of the frame period)")
            self.max_delay_ms = float(self.max_delay_ms)


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
    ``min_area_px`` removes connected components smaller than this many frame pixels (0 = off).
    ``reference``: a registration model's fixed image: ``first`` (the first frame after start or reload),
    ``previous`` (each frame against the one before) or an image file (docs/runtime.md, "Registration")."""

    smoothing: float = 0.0
    min_area_px: int = 0
    reference: str = "first"

    def validate(self) -> None:
        expect(is_number(self.smoothing) and 0.0 <= self.smoothing < 1.0, "postprocess.smoothing",
                self.smoothing, "a number in [0, 1) (0 = no temporal smoothing)")
        self.smoothing = float(self.smoothing)
        expect(isinstance(self.min_area_px, int) and not isinstance(self.min_area_px, bool)
                and self.min_area_px >= 0, "postprocess.min_area_px", self.min_area_px,
                "a non-negative integer number of frame pixels (0 = keep every component)")
        expect(isinstance(self.reference, str) and self.reference.strip() != "", "postprocess.reference",
               self.reference, "first, previous or an image file (a registration model's fixed image)")


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
    elsewhere) or ``off``. A config names no code: a Python hook returning ``{name: number}`` is given through the API
    (``Daemon(config, telemetry_hook=fn)``)."""

    telemetry: Optional[str] = "auto"

    def validate(self) -> None:
        value = self.telemetry
        expect(value is None or value in ("auto", "off"), "device.telemetry", value,
               "auto or off (a config names no code; a Python hook is passed to Daemon(config, telemetry_hook=fn))")


@dataclass
class DaemonConfig:
    """Everything ``jetseg run`` needs, one section per component."""

    model: ModelConfig = field(default_factory=ModelConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    sources: List[StreamConfig] = field(default_factory=list)
    batch: BatchConfig = field(default_factory=BatchConfig)
    sinks: List[SinkConfig] = field(default_factory=lambda: [SinkConfig("null://")])
    roi: RoiConfig = field(default_factory=RoiConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    web: WebConfig = field(default_factory=WebConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)

    def validate(self) -> DaemonConfig:
        for name in ("model", "backend", "source", "batch", "roi", "postprocess", "pipeline", "logging", "web",
                     "device"):
            getattr(self, name).validate()
        _check_sinks(self.sinks, "sinks")
        names = []
        for stream in self.sources:
            stream.validate()
            expect(stream.name not in names, "sources[].name", stream.name, "a name no other stream has")
            names.append(stream.name)
            _check_sinks(stream.sinks or [SinkConfig()], "sources[%s].sinks" % stream.name)
        if self.sources:
            expect(self.source == SourceConfig(), "source", self.source.uri,
                   "no 'source:' next to 'sources:' (list every stream under sources)")
            expect(self.sinks == [SinkConfig("null://")], "sinks", [s.uri for s in self.sinks],
                   "no top-level 'sinks:' next to 'sources:' (give each stream its own sinks)")
        return self

    def streams(self) -> List[StreamConfig]:
        """The streams to run: ``sources:`` as given (each stream's ROI and post-processing defaulting to the
        top-level sections, its sinks to ``null://``), or the single ``source:`` as a stream named ``main``
        with the top-level ROI, post-processing and sinks."""
        if not self.sources:
            single = StreamConfig(**dataclasses.asdict(self.source))
            return [dataclasses.replace(single, name="main", roi=self.roi, postprocess=self.postprocess,
                                        sinks=list(self.sinks))]
        return [dataclasses.replace(s, roi=s.roi or self.roi, postprocess=s.postprocess or self.postprocess,
                                    sinks=list(s.sinks) if s.sinks else [SinkConfig()]) for s in self.sources]

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
            elif name == "sources":
                kwargs[name] = _streams(section)
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
    kind = name.rsplit(".", 1)[-1]
    if kind == "roi" and (isinstance(data, (str, list)) or (isinstance(data, dict) and set(data) == {"relative"})):
        # shorthand: roi: auto, roi: [x, y, w, h], roi: {relative: [x, y, w, h]}
        data = {"mode": data}
    if kind == "model" and isinstance(data, str):  # shorthand: model: path/to/bundle
        data = {"path": data}
    if kind == "source" and isinstance(data, str):  # shorthand: source: URI
        data = {"uri": data}
    if not isinstance(data, dict):
        raise ConfigError("config section %r is %r; expected a mapping of fields (%s)"
                          % (name, data, ", ".join(sorted(type(default).__dataclass_fields__))))
    check_fields(type(default), data, name)
    return dataclasses.replace(default, **data)


def _sinks(data: Any, where: str = "sinks") -> List[SinkConfig]:
    if isinstance(data, str):
        data = [data]
    expect(isinstance(data, list), where, data, "a list of sink URIs or {uri, options} mappings")
    out = []
    for i, item in enumerate(data):
        if isinstance(item, SinkConfig):
            out.append(item)
            continue
        if isinstance(item, str):
            out.append(SinkConfig(uri=item))
            continue
        expect(isinstance(item, dict), "%s[%d]" % (where, i), item, "a sink URI or a mapping {uri, options}")
        check_fields(SinkConfig, item, "%s[%d]" % (where, i))
        out.append(SinkConfig(**item))
    return out


def _check_sinks(sinks: Any, where: str) -> None:
    expect(isinstance(sinks, list) and len(sinks) > 0, where, sinks,
           "a list of at least one sink URI (null:// to discard)")
    for i, sink in enumerate(sinks):
        expect(isinstance(sink.uri, str) and "://" in sink.uri, "%s[%d].uri" % (where, i), sink.uri,
               "a sink URI such as http://127.0.0.1:8080, masks://DIR, file://out.mp4 or null://")
        expect(isinstance(sink.options, dict), "%s[%d].options" % (where, i), sink.options,
               "a mapping of option: value")


def _streams(data: Any) -> List[StreamConfig]:
    """``sources:``: a list of ``{name, uri, ...}`` mappings, or a mapping ``{name: URI or {uri, ...}}``."""
    if isinstance(data, dict):
        data = [dict(item, name=name) if isinstance(item, dict) else {"name": name, "uri": item}
                for name, item in data.items()]
    expect(isinstance(data, list) and len(data) > 0, "sources", data,
           "a list of streams ({name, uri, ...}) or a mapping name: URI")
    out = []
    for i, item in enumerate(data):
        expect(isinstance(item, dict) and "name" in item, "sources[%d]" % i, item,
               "a mapping with a name and a uri, e.g. {name: left, uri: \"v4l2:///dev/video0\"}")
        check_fields(StreamConfig, item, "sources[%d]" % i)
        out.append(StreamConfig(**item))
    return out
