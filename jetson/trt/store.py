"""Where engines live in a bundle, and whether one is usable.

::

    BUNDLE/engines/
      xavier-sm72-trt8.5.2.timing.cache         timing cache shared by every build on this device + TensorRT
      xavier-sm72-trt8.5.2-int8-dla0-1a2b3c4d/
        engine.plan                             the serialized engine
        timing.cache                            the timing cache as it was after this build
        build.json                              key, versions, flags, timings, DLA placement, I/O tensors

An engine folder is written atomically. An engine is used only when its folder name is the current key
*and* build.json's recorded key matches field by field *and* the engine file's sha256 matches build.json.
Pure Python: no TensorRT needed to inspect or judge engines.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

from jetseg.bundle import ENGINES_DIR, Bundle, sha256_file
from jetseg.errors import JetsegError
from jetseg.jetson.trt.key import EngineKey, stale_reasons
from jetseg.records import BUILD_FILE, BuildRecord

ENGINE_FILE = "engine.plan"
TIMING_CACHE_FILE = "timing.cache"

OK, MISSING, STALE, DAMAGED = "ok", "missing", "stale", "damaged"


def engines_root(bundle: Bundle) -> Path:
    return bundle.path / ENGINES_DIR


def engine_dir(bundle: Bundle, key: EngineKey) -> Path:
    return engines_root(bundle) / key.name


def shared_timing_cache(bundle: Bundle, key: EngineKey) -> Path:
    """The bundle-wide timing cache for this device and TensorRT version."""
    return engines_root(bundle) / (key.device_part + ".timing.cache")


def read_record(folder: Path) -> Optional[BuildRecord]:
    """build.json of an engine folder, or None if it is missing or damaged (:func:`checked_record` says why)."""
    return checked_record(folder)[0]


def checked_record(folder: Path) -> Tuple[Optional[BuildRecord], str]:
    """``(record, "")`` for the build.json of an engine folder, or ``(None, why it cannot be read)``."""
    if not (folder / BUILD_FILE).is_file():
        return None, "%s is missing" % BUILD_FILE
    try:
        return BuildRecord.read(folder), ""
    except JetsegError as exc:
        return None, str(exc)


def status(bundle: Bundle, key: EngineKey) -> Tuple[str, List[str]]:
    """``(OK | MISSING | STALE | DAMAGED, reasons)`` for the engine of ``key`` in ``bundle``."""
    folder = engine_dir(bundle, key)
    if not folder.is_dir():
        return MISSING, []
    record, problem = checked_record(folder)
    if record is None:
        return DAMAGED, [problem]
    engine = folder / ENGINE_FILE
    if not engine.is_file():
        return DAMAGED, ["%s is missing" % ENGINE_FILE]
    if record.engine_sha256 != sha256_file(engine):
        return DAMAGED, ["%s does not match the sha256 in %s" % (ENGINE_FILE, BUILD_FILE)]
    reasons = stale_reasons(record.key, key)
    return (STALE, reasons) if reasons else (OK, [])


def list_engines(bundle: Bundle) -> List[Tuple[str, Optional[BuildRecord]]]:
    """Every engine folder in the bundle with its build record (None when unreadable)."""
    root = engines_root(bundle)
    if not root.is_dir():
        return []
    return [(p.name, read_record(p)) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def explain_others(bundle: Bundle, key: EngineKey) -> List[str]:
    """One line per other engine in the bundle saying why it cannot be used for ``key``."""
    lines = []
    for name, record in list_engines(bundle):
        if name == key.name:
            continue
        if record is None:
            lines.append("%s: no readable %s" % (name, BUILD_FILE))
            continue
        reasons = stale_reasons(record.key, key)
        lines.append("%s: %s" % (name, "; ".join(reasons) if reasons else "same key, different folder name"))
    return lines


def superseded(bundle: Bundle, key: EngineKey) -> List[Path]:
    """Engine folders for the same device, TensorRT, precision, target and batch as ``key`` but another model or
    calibration: left over from before the bundle changed, never usable again (an engine of another batch is
    kept: ``jetseg build --batch``)."""
    out = []
    for name, record in list_engines(bundle):
        if name == key.name or record is None:
            continue
        try:
            other = EngineKey.from_dict(record.key)
        except Exception:  # an unreadable record is reported by explain_others, not deleted
            continue
        if ((other.device_part, other.precision, other.target, other.batch)
                == (key.device_part, key.precision, key.target, key.batch)):
            out.append(engines_root(bundle) / name)
    return out


def find_for_device(bundle: Bundle, device_part: str, precision: Optional[str] = None,
                    target: Optional[str] = None) -> List[str]:
    """Names of engine folders built for ``device_part`` (``xavier-sm72-trt8.5.2``), optionally filtered."""
    out = []
    for name, record in list_engines(bundle):
        if record is None or not name.startswith(device_part + "-"):
            continue
        rec = record.key
        if precision is not None and rec.get("precision") != precision:
            continue
        rec_target = "gpu" if rec.get("dla_core") is None else "dla%s" % rec.get("dla_core")
        if target is not None and rec_target != target:
            continue
        out.append(name)
    return out
