"""NIfTI volumes through nibabel, delivered slice by slice along one axis.

URI: ``nifti://vol.nii.gz?axis=2&labels=seg.nii.gz`` or a ``.nii`` / ``.nii.gz`` path.

Options:
    axis: the axis to slice along (0, 1 or 2; default 2).
    labels: a label volume of the same shape; its slices become ``Frame.label`` (``HxW uint8``).
    vmin, vmax: the intensity window mapped to 0..65535 (values outside are clipped); default: the volume's
        own minimum and maximum.
    volume: for a 4-D file, which volume (index along the 4th axis) to slice; default 0.

A slice ``data[..., k, ...]`` is transposed so that the first remaining array axis runs along the image
columns (the usual on-screen orientation of nibabel arrays). Frames are ``HxW uint16``. The whole volume
is loaded into memory once.
"""
from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from jetseg.errors import SourceError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.sources.base import Source
from jetseg.jetson.sources.limits import check_volume_size
from jetseg.jetson.sources.volume import class_labels, window_uint16
from jetseg.optional import require


def _slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.ascontiguousarray(np.take(volume, index, axis=axis).T)


class NiftiSource(Source):
    """Slices of a 3-D (or one volume of a 4-D) NIfTI image as ``HxW uint16`` frames."""

    kind = "nifti"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.axis = opts.integer("axis", 2, minimum=0)
        if self.axis not in (0, 1, 2):
            raise opts.fail("axis", self.axis, "0, 1 or 2")
        labels = opts.text("labels", None)
        self.vmin = opts.number("vmin", None)
        self.vmax = opts.number("vmax", None)
        self.volume_index = opts.integer("volume", 0, minimum=0)
        opts.done()
        if self.vmin is not None and self.vmax is not None and not self.vmax > self.vmin:
            raise SourceError("%s options vmin=%g, vmax=%g: expected vmin < vmax" % (self.label, self.vmin, self.vmax))
        self.path = Path(uri)
        self.local_file = str(self.path)  # run --check says when it does not exist (Source.preflight)
        self.labels_path = Path(labels) if labels else None
        self._data: Optional[np.ndarray] = None
        self._labels: Optional[np.ndarray] = None
        self._spacing: Optional[List[float]] = None
        self._count = 0
        self._pos = 0

    def _load_volume(self, path: Path, what: str) -> Any:
        nibabel = require("nibabel", "reading NIfTI volumes")
        if not path.is_file():
            raise SourceError("NIfTI %s %s does not exist; expected a .nii or .nii.gz file" % (what, path))
        try:
            return nibabel.load(str(path))
        except (nibabel.filebasedimages.ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
            raise SourceError("cannot read NIfTI %s %s: %s" % (what, path.name, " ".join(str(exc).split())))\
                from None

    def _volume(self, image: Any, what: str) -> np.ndarray:
        try:
            check_volume_size(image.shape, "NIfTI %s %s" % (what, self.path.name))
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        try:
            data = np.asanyarray(image.dataobj)
        except (OSError, EOFError, ValueError, zlib.error) as exc:  # truncated or corrupt data
            raise SourceError("cannot read NIfTI %s data (%s); the file is truncated or corrupt"
                              % (what, " ".join(str(exc).split()))) from None
        if data.ndim == 4:
            if self.volume_index >= data.shape[3]:
                raise SourceError("nifti source option volume=%d: the file holds %d volumes"
                                  % (self.volume_index, data.shape[3]))
            data = data[..., self.volume_index]
        elif data.ndim == 2:
            data = data[:, :, np.newaxis]
        if data.ndim != 3:
            raise SourceError("NIfTI %s has %d dimensions; expected a 3-D volume (or 4-D with volume=N)"
                              % (what, data.ndim))
        return data

    def _open(self) -> None:
        image = self._load_volume(self.path, "volume")
        data = self._volume(image, "volume")
        self._data, self.window = window_uint16(data, self.vmin, self.vmax, "NIfTI volume %s" % self.path.name)
        zooms = [float(z) for z in image.header.get_zooms()[:3]]
        rest = [z for i, z in enumerate(zooms) if i != self.axis]
        self._spacing = [rest[1], rest[0]] if len(rest) == 2 and all(z > 0 for z in rest) else None
        self._labels = None
        if self.labels_path is not None:
            labels = self._volume(self._load_volume(self.labels_path, "label volume"), "label volume")
            self._labels = class_labels(labels, data.shape, "NIfTI label volume %s" % self.labels_path.name,
                                        self.path.name)
        self._count = self._data.shape[self.axis]
        self._pos = 0
        self.ended = False

    def __len__(self) -> int:
        if self._data is None:
            image = self._load_volume(self.path, "volume")
            shape = image.shape
            if len(shape) < 3:
                return 1
            return int(shape[self.axis])
        return self._count

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        if self._pos >= self._count:
            self.ended = True
            return None
        assert self._data is not None
        index = self._pos
        self._pos += 1
        label = _slice(self._labels, self.axis, index) if self._labels is not None else None
        meta: Dict[str, Any] = {"slice": index, "axis": self.axis, "pixel_spacing_mm": self._spacing}
        return Frame(index=self.delivered, image=_slice(self._data, self.axis, index), timestamp=time.monotonic(),
                     label=label, source_id="%s#%d" % (self.path.name, index), meta=meta)

    def _close(self) -> None:
        self._data = self._labels = None

    def stats(self) -> Dict[str, Any]:
        out = super().stats()
        out.update({"slices": self._count, "axis": self.axis})
        return out
