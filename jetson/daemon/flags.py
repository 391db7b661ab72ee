"""The command line's values for the daemon config: ``--roi``, ``--backend-option`` / ``--source-option``, and
the overrides ``jetseg run`` applies on top of a config file (flags win over YAML)."""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

from jetseg.jetson.daemon.config import ROI_MODES, ConfigError, DaemonConfig, SinkConfig
from jetseg.jetson.frames.roi import RoiMode, as_mode
from jetseg.options import parse_assignments
from jetseg.roibox import RELATIVE_RULE


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
