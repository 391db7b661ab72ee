"""DICOM images and cine loops through pydicom: single-frame and multi-frame, one file or a folder.

URI: ``dicom://cine.dcm``, a ``.dcm`` path, or ``dicom://DIR`` (every DICOM file in the folder, ordered by
InstanceNumber when all files have one, else by name; files that are not DICOM are skipped and counted).

Options:
    loop: ``1`` starts again at the first frame of the first file after the last one (for review: the
        source then never ends). Frame indices keep counting; ``meta["file_frame"]`` starts again.

Pixels (see docs/sources.md):
    MONOCHROME2 as stored, MONOCHROME1 inverted (so that bright means high signal in both); RGB,
    YBR_FULL and YBR_FULL_422 converted to BGR; PALETTE COLOR through its lookup table.
    BitsStored <= 8 gives uint8; more gives uint16 scaled by ``2**(16 - BitsStored)`` (a 12-bit 0..4095
    becomes 0..65520, so full scale stays full scale); signed data is offset by ``2**(BitsStored-1)`` first.

Frame ``meta``: ``pixel_spacing_mm`` ([row, column], from PixelSpacing, or from the valid ultrasound
regions' PhysicalDeltaY/X in cm), ``roi`` (the imaging area from SequenceOfUltrasoundRegions, validated and
scaled to the pixels by :mod:`usregions`; ``roi_source`` is then ``"dicom-regions"``), ``fps`` (FrameTime,
CineRate or RecommendedDisplayFrameRate), ``file_frame``, and ``dicom``: the references a DICOM SEG of the frame
needs (``study_uid``, ``series_uid``, ``sop_class_uid``, ``sop_instance_uid``, ``frame_number`` (1-based, for
multi-frame files), ``frames`` (the file's NumberOfFrames) and ``path``), read from the header already loaded.
Patient tags are never logged or copied.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.errors import SourceError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.sources.base import Source
from jetseg.jetson.sources.images import natural_key
from jetseg.jetson.sources.limits import check_image_size, check_volume_size
from jetseg.jetson.sources.usregions import Regions, read_regions
from jetseg.optional import require

log = logging.getLogger("jetseg.sources.dicom")

_YBR = ("YBR_FULL", "YBR_FULL_422")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
_PIP_NAMES = {"gdcm": "python-gdcm"}


def _number(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def frame_rate(ds: Any) -> Optional[float]:
    """Frames per second from FrameTime (ms), CineRate or RecommendedDisplayFrameRate, else None."""
    frame_time = _number(ds.get("FrameTime"))
    if frame_time:
        return 1000.0 / frame_time
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = _number(ds.get(keyword))
        if rate:
            return rate
    return None


def pixel_spacing(ds: Any, regions: Optional[Regions] = None) -> Optional[List[float]]:
    """``[row_mm, column_mm]`` from PixelSpacing, else from the valid ultrasound regions measured in cm."""
    spacing = ds.get("PixelSpacing")
    if spacing is not None and len(spacing) == 2:
        values = [_number(v) for v in spacing]
        if all(values):
            return [float(v) for v in values]  # type: ignore[arg-type]
    regions = read_regions(ds) if regions is None else regions
    return regions.spacing_mm


def _pixels_api() -> Any:
    """pydicom >= 3's ``pydicom.pixels`` (per-frame decoding), or None on pydicom 2."""
    try:
        import pydicom.pixels as pixels
    except ImportError:
        return None
    return pixels if hasattr(pixels, "pixel_array") and hasattr(pixels, "get_decoder") else None


def missing_plugin(ds: Any) -> Optional[str]:
    """Why pydicom cannot decode this dataset's transfer syntax here, or None when it can (or cannot tell)."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    pixels = _pixels_api()
    if syntax is None or pixels is None or not syntax.is_compressed:
        return None
    try:
        decoder = pixels.get_decoder(syntax)
    except NotImplementedError:
        return "pydicom has no decoder for transfer syntax %s" % syntax.name
    if decoder.is_available:
        return None
    needs = list(decoder.missing_dependencies)
    installs = [_pip_install(need) for need in needs]
    hint = " (%s)" % ", or ".join(i for i in installs if i) if any(installs) else ""
    return ("transfer syntax %s needs a pydicom pixel-data plugin; install one of: %s%s"
            % (syntax.name, "; ".join(needs), hint))


def _pip_install(need: str) -> str:
    """``'pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1'`` -> ``'pip install pylibjpeg ...'``."""
    _, _, requires = need.partition("requires")
    names = [re.split(r"[<>=!~ ]", part.strip())[0] for part in requires.split(" and ")]
    names = [_PIP_NAMES.get(name, name) for name in names if name and name != "numpy"]
    return "pip install " + " ".join(names) if names else ""


def to_frame_pixels(array: np.ndarray, ds: Any) -> np.ndarray:
    """A decoded frame (grey, or RGB after pydicom's colour conversion) as jetseg's uint8/uint16 grey/BGR."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        pixels = _pixels_api()
        if pixels is not None:
            rgb = pixels.apply_color_lut(array, ds)
        else:
            from pydicom.pixel_data_handlers.util import apply_color_lut
            rgb = apply_color_lut(array, ds)
        return np.ascontiguousarray(rgb[..., ::-1])
    allocated = int(ds.get("BitsAllocated", 8))
    stored = int(ds.get("BitsStored", allocated) or allocated)
    if stored > 16:
        raise SourceError("DICOM with %d bits per sample: expected at most 16 (8-bit -> uint8, 9 to 16-bit -> "
                          "uint16)" % stored)
    values = array.astype(np.int64)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        values = values + (1 << (stored - 1))
    values = np.clip(values, 0, (1 << stored) - 1)
    if photometric == "MONOCHROME1":
        values = ((1 << stored) - 1) - values
    if stored <= 8:
        out = values.astype(np.uint8)
    else:
        out = (values << (16 - stored)).astype(np.uint16)
    if out.ndim == 3:
        if photometric not in _COLOUR:
            raise SourceError("DICOM photometric interpretation %s is not supported; expected MONOCHROME1/2, "
                              "RGB, YBR_FULL, YBR_FULL_422 or PALETTE COLOR" % photometric)
        out = out[..., ::-1]  # RGB -> BGR
    return np.ascontiguousarray(out)


class _Item:
    """One DICOM file of the source (header only until its frames are read)."""

    def __init__(self, path: Path, frames: int, instance: Optional[int]) -> None:
        self.path = path
        self.frames = frames
        self.instance = instance


class DicomSource(Source):
    """Frames of one DICOM file or of a folder of DICOM files.

    Attributes:
        skipped: files of a folder that are not DICOM images (not DICOM, or no pixel data).
    """

    kind = "dicom"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.loop = opts.flag("loop", False)
        opts.done()
        self.path = Path(uri)
        self.local_file = str(self.path)  # run --check says when it does not exist (Source.preflight)
        self.items: List[_Item] = []
        self.skipped = 0
        self._fps: Optional[float] = None
        self._ds: Any = None
        self._ds_item: Optional[_Item] = None
        self._whole: Optional[np.ndarray] = None
        self._pos: Tuple[int, int] = (0, 0)
        self._regions = Regions([])
        self._file_meta: Dict[str, Any] = {}
        self._references: Dict[str, Any] = {}
        self._warned_regions = self._noted_scale = False

    # ------------------------------------------------------------------ discovery
    def _header(self, path: Path, strict: bool) -> Optional[_Item]:
        pydicom = require("pydicom", "reading DICOM")
        from pydicom.errors import InvalidDicomError

        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            if strict:
                raise SourceError("cannot read %s as DICOM (%s); expected a DICOM Part 10 file"
                                  % (path.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) \
                    from None
            self._skip(path, "not a DICOM file")
            return None
        if "Rows" not in ds or "Columns" not in ds:
            if strict:
                raise SourceError("DICOM file %s holds no image (no Rows/Columns); expected an image or cine "
                                  "loop" % path.name)
            self._skip(path, "DICOM without an image")
            return None
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        try:  # before any pixel is decoded
            check_image_size(int(ds.Columns), int(ds.Rows), "DICOM %s" % path.name)
            check_volume_size([frames, int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel", 1) or 1)],
                              "DICOM %s (frames x rows x columns x samples)" % path.name)
        except ValueError as exc:
            if strict:
                raise SourceError(str(exc)) from None
            self._skip(path, str(exc))
            return None
        instance = ds.get("InstanceNumber")
        if self._fps is None:
            self._fps = frame_rate(ds)
        return _Item(path, frames, int(instance) if instance is not None else None)

    def _skip(self, path: Path, why: str) -> None:
        self.skipped += 1
        log.warning("skipping %s: %s", path.name, why)

    def _scan(self) -> None:
        self.skipped = 0
        self._fps = None
        if self.path.is_dir():
            files = sorted((p for p in self.path.iterdir() if p.is_file() and not p.name.startswith(".")),
                           key=lambda p: natural_key(p.name))
            items = [item for item in (self._header(p, strict=False) for p in files) if item is not None]
            if not items:
                raise SourceError("no DICOM image in %s (%d files, none a readable DICOM image); expected .dcm "
                                  "files" % (self.path, len(files)))
            if all(item.instance is not None for item in items):
                items.sort(key=lambda item: item.instance or 0)  # stable: name order within equal numbers
        elif self.path.is_file():
            items = [self._header(self.path, strict=True)]  # type: ignore[list-item]
        else:
            raise SourceError("DICOM source %s does not exist; expected a .dcm file or a folder of DICOM files"
                              % self.path)
        self.items = items

    @property
    def fps(self) -> Optional[float]:
        if not self.items:
            self._scan()
        return self._fps

    def __len__(self) -> int:
        if not self.items:
            self._scan()
        return sum(item.frames for item in self.items)

    # ------------------------------------------------------------------ reading
    def _load(self, item: _Item) -> Any:
        pydicom = require("pydicom", "reading DICOM")
        ds = pydicom.dcmread(str(item.path))
        problem = missing_plugin(ds)
        if problem:
            raise SourceError("cannot decode %s: %s" % (item.path.name, problem))
        if int(ds.get("SamplesPerPixel", 1) or 1) > 1 and "PlanarConfiguration" not in ds:
            # Required for colour (type 1C) but left out by some exports; uncompressed colour is almost always
            # interleaved (R1G1B1 R2G2B2 ...), and compressed pixel data ignores the tag.
            log.warning("%s: colour pixels without PlanarConfiguration; reading them as interleaved (0)",
                        item.path.name)
            ds.PlanarConfiguration = 0
        self._ds, self._ds_item, self._whole = ds, item, None
        self._regions = self._check_regions(item, ds)
        # what every frame of this file shares, read from the tags once per file
        self._file_meta = {"fps": frame_rate(ds), "pixel_spacing_mm": pixel_spacing(ds, self._regions),
                           "photometric": str(ds.get("PhotometricInterpretation", ""))}
        self._references = {"study_uid": str(ds.get("StudyInstanceUID", "")),
                            "series_uid": str(ds.get("SeriesInstanceUID", "")),
                            "sop_class_uid": str(ds.get("SOPClassUID", "")),
                            "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
                            "frames": item.frames, "path": str(item.path.resolve())}
        roi = self._regions.roi
        if roi is not None:  # the imaging area as the scanner tagged it (RoiPolicy "auto" prefers it)
            self._file_meta.update(roi=roi, roi_source="dicom-regions")
        return ds

    def _check_regions(self, item: _Item, ds: Any) -> Regions:
        """The file's ultrasound regions; says once per source when they were scaled or ignored."""
        regions = read_regions(ds)
        if regions.problem and not self._warned_regions:
            self._warned_regions = True
            log.warning("%s: ignoring SequenceOfUltrasoundRegions (%s); no ROI or pixel spacing from them",
                        item.path.name, regions.problem)
        elif regions.tagged_size and not self._noted_scale:
            self._noted_scale = True
            log.info("%s: ultrasound regions were tagged for a %dx%d frame; scaled by %.3g to the %dx%d pixels",
                     item.path.name, regions.tagged_size[0], regions.tagged_size[1], regions.scale,
                     int(ds.Columns), int(ds.Rows))
        return regions

    def _decode(self, item: _Item, index: int) -> np.ndarray:
        ds = self._ds if self._ds_item is item else self._load(item)
        pixels = _pixels_api()
        try:
            if pixels is not None:  # pydicom >= 3: one frame at a time, YBR converted to RGB
                return pixels.pixel_array(ds, index=index)
            if self._whole is None:  # pydicom 2: the whole file at once, colour converted here
                whole = ds.pixel_array
                photometric = str(ds.get("PhotometricInterpretation", "")).upper()
                if photometric in _YBR:
                    from pydicom.pixel_data_handlers.util import convert_color_space
                    whole = convert_color_space(whole, "YBR_FULL", "RGB")
                self._whole = whole
            return self._whole[index] if item.frames > 1 else self._whole
        except (RuntimeError, NotImplementedError, ValueError, AttributeError, KeyError) as exc:
            # pydicom says what is wrong with the file (a missing or inconsistent element) in its message
            detail = " ".join(str(exc).split())
            raise SourceError("cannot decode %s: %s" % (item.path.name, detail)) from None

    def _open(self) -> None:
        self._scan()
        self._pos = (0, 0)
        self.ended = False
        self._ds = self._ds_item = self._whole = None
        self._decode(self.items[0], 0)  # fail now, not mid-stream, on a missing decoder

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        file_index, frame_index = self._pos
        while file_index < len(self.items) and frame_index >= self.items[file_index].frames:
            file_index, frame_index = file_index + 1, 0
        if file_index >= len(self.items) and self.loop:  # _scan found at least one file with frames
            file_index, frame_index = 0, 0
        if file_index >= len(self.items):
            self.ended = True
            self._ds = self._ds_item = self._whole = None
            return None
        item = self.items[file_index]
        image = to_frame_pixels(self._decode(item, frame_index), self._ds)
        self._pos = (file_index, frame_index + 1)
        name = item.path.name if item.frames == 1 else "%s#%d" % (item.path.name, frame_index)
        meta: Dict[str, Any] = dict(self._file_meta, file_frame=frame_index,
                                    dicom=dict(self._references, frame_number=frame_index + 1))
        return Frame(index=self.delivered, image=image, timestamp=time.monotonic(), source_id=name, meta=meta)

    def _close(self) -> None:
        self._ds = self._ds_item = self._whole = None

    def stats(self) -> Dict[str, Any]:
        out = super().stats()
        out.update({"files": len(self.items), "skipped": self.skipped, "fps": self._fps})
        return out
