"""MHA/MHD+raw and NRRD images through SimpleITK: volumes slice by slice, 2-D+t sequences at their frame time.

URI: ``itk://scan.mha?axis=2&labels=seg.mha`` or a ``.mha`` / ``.mhd`` / ``.nrrd`` / ``.nhdr`` path.
NIfTI is read by the ``nifti`` source (nibabel), DICOM by ``dicom``: one reader per format (docs/sources.md).

Options:
    sequence: ``1``: the third axis is time (a 2-D+t cine stored as a 3-D image, as echo datasets such as
        CAMUS ship them); frames are the 2-D images in order, and ``axis`` must stay 2.
    frame_time: milliseconds between frames of a sequence (implies ``sequence=1``); default: the header's
        ``FrameTime`` key when present. The source's ``fps`` is then 1000 / frame_time, which paces a
        ``realtime`` replay.
    axis: for a volume, the image axis to slice along (0 x, 1 y, 2 z in ITK's index order; default 2).
    labels: a label image of the same size; its slices become ``Frame.label`` (``HxW uint8``).
    vmin, vmax: the intensity window mapped to 0..65535; default: the image's own minimum and maximum.

Frames are ``HxW uint16`` in the file's index order (rows along the image's second index axis for ``axis=2``),
with ``meta``: ``pixel_spacing_mm`` ([row, column], from the image spacing), ``orientation`` (the three-letter
code of the direction cosines, e.g. ``LPS``), ``direction``, ``origin``, ``slice``/``axis`` or ``frame_time_ms``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from jetseg.errors import SourceError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.sources.base import ITK_SUFFIXES as SUFFIXES
from jetseg.jetson.sources.base import Source
from jetseg.jetson.sources.volume import class_labels, window_uint16
from jetseg.optional import require

#: every other suffix names its own reader in the error
OTHER_READERS = {".nii": "nifti://PATH (nibabel)", ".nii.gz": "nifti://PATH (nibabel)",
                 ".dcm": "dicom://PATH", ".mp4": "file://PATH (a video)", ".avi": "file://PATH (a video)",
                 ".png": "a folder of images", ".jpg": "a folder of images"}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


class ItkSource(Source):
    """Slices of a 3-D image, or the frames of a 2-D+t sequence, as ``HxW uint16`` frames."""

    kind = "itk"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.frame_time_ms = opts.number("frame_time", None, minimum=0.001)
        self.sequence = opts.flag("sequence", False) or self.frame_time_ms is not None
        self.axis = opts.integer("axis", 2, minimum=0)
        if self.axis not in (0, 1, 2):
            raise opts.fail("axis", self.axis, "0, 1 or 2")
        if self.sequence and self.axis != 2:
            raise opts.fail("axis", self.axis, "2 for a sequence (its third axis is time)")
        labels = opts.text("labels", None)
        self.vmin = opts.number("vmin", None)
        self.vmax = opts.number("vmax", None)
        opts.done()
        self.path = Path(uri)
        self.local_file = str(self.path)  # run --check says when it does not exist (Source.preflight)
        suffix = _suffix(self.path)
        if suffix not in SUFFIXES:
            other = OTHER_READERS.get(suffix)
            use = "; open it as %s" % other if other else ""
            raise SourceError("the itk source reads %s files, not %s%s" % ("/".join(SUFFIXES), self.path.name, use))
        self.labels_path = Path(labels) if labels else None
        self._data: Optional[np.ndarray] = None  # (index along the slicing axis, rows, columns)
        self._labels: Optional[np.ndarray] = None
        self._meta: Dict[str, Any] = {}
        self._pos = 0

    @property
    def fps(self) -> Optional[float]:
        return 1000.0 / self.frame_time_ms if self.sequence and self.frame_time_ms else None

    def _read_image(self, path: Path, what: str) -> Any:
        sitk = require("SimpleITK", "reading MHA/MHD/NRRD images")
        if not path.is_file():
            raise SourceError("%s %s does not exist; expected a %s file" % (what, path, "/".join(SUFFIXES)))
        try:
            return sitk.ReadImage(str(path))
        except RuntimeError as exc:  # SimpleITK raises RuntimeError with ITK's (multi-line) message
            detail = " ".join(str(exc).split())
            detail = detail[detail.find("Description:"):][:160] if "Description:" in detail else detail[-160:]
            raise SourceError("SimpleITK cannot read %s %s (%s); expected MHA/MHD+raw or NRRD (NIfTI: nifti://, "
                              "DICOM: dicom://, video: file://)" % (what, path.name, detail)) from None

    def _array(self, image: Any, what: str) -> np.ndarray:
        """The image as (index along the slicing axis, rows, columns)."""
        sitk = require("SimpleITK", "reading MHA/MHD/NRRD images")
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise SourceError("%s %s has %d components per pixel; expected a scalar (grey) image"
                              % (what, self.path.name, image.GetNumberOfComponentsPerPixel()))
        data = sitk.GetArrayFromImage(image)
        if data.ndim == 2:
            return data[np.newaxis]
        if data.ndim != 3:
            raise SourceError("%s %s has %d dimensions; expected a 2-D image, a 3-D volume or a 2-D+t sequence"
                              % (what, self.path.name, data.ndim))
        return np.moveaxis(data, 2 - self.axis, 0)  # SimpleITK's arrays are (z, y, x): ITK axis a is 2 - a

    def _open(self) -> None:
        sitk = require("SimpleITK", "reading MHA/MHD/NRRD images")
        image = self._read_image(self.path, "image")
        data = self._array(image, "image")
        self._data, self.window = window_uint16(data, self.vmin, self.vmax, "image %s" % self.path.name)
        spacing = [float(s) for s in image.GetSpacing()][:3]  # ITK order: x, y, z
        rest = [s for i, s in enumerate(spacing) if i != self.axis] if len(spacing) == 3 else spacing
        row_col = [rest[1], rest[0]] if len(rest) == 2 and all(s > 0 for s in rest) else None
        if self.sequence and self.frame_time_ms is None and image.HasMetaDataKey("FrameTime"):
            self.frame_time_ms = _positive(image.GetMetaData("FrameTime"))
        orientation = None
        if image.GetDimension() == 3:
            orientation = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())
        self._meta = {"pixel_spacing_mm": row_col, "orientation": orientation,
                      "direction": [float(v) for v in image.GetDirection()],
                      "origin": [float(v) for v in image.GetOrigin()]}
        self._labels = None
        if self.labels_path is not None:
            labels = self._array(self._read_image(self.labels_path, "label image"), "label image")
            self._labels = class_labels(labels, data.shape, "label image %s" % self.labels_path.name,
                                        self.path.name)
        self._pos = 0
        self.ended = False

    def __len__(self) -> int:
        if self._data is None:
            sitk = require("SimpleITK", "reading MHA/MHD/NRRD images")
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(self.path))
            try:
                reader.ReadImageInformation()
            except RuntimeError:
                self._read_image(self.path, "image")  # raises the one error for an unreadable file
            size = list(reader.GetSize())
            return int(size[self.axis]) if len(size) == 3 else 1
        return int(self._data.shape[0])

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        assert self._data is not None
        if self._pos >= self._data.shape[0]:
            self.ended = True
            return None
        index = self._pos
        self._pos += 1
        meta: Dict[str, Any] = dict(self._meta)
        if self.sequence:
            meta.update({"frame": index, "frame_time_ms": self.frame_time_ms})
        else:
            meta.update({"slice": index, "axis": self.axis})
        label = np.ascontiguousarray(self._labels[index]) if self._labels is not None else None
        return Frame(index=self.delivered, image=np.ascontiguousarray(self._data[index]),
                     timestamp=time.monotonic(), label=label, source_id="%s#%d" % (self.path.name, index), meta=meta)

    def _close(self) -> None:
        self._data = self._labels = None

    def stats(self) -> Dict[str, Any]:
        out = super().stats()
        out.update({"frames" if self.sequence else "slices": len(self) if self._data is not None else None,
                    "axis": self.axis, "fps": self.fps})
        return out


def _positive(text: str) -> Optional[float]:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None

