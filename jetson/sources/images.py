"""A folder of images (PNG, JPEG, TIFF, BMP), optionally with ground-truth masks.

URI: a folder path, or ``folder://DIR`` / ``file://DIR`` with options. Files are read in natural order
(``img2`` before ``img10``), one frame each.

Layouts:
    ``DIR/*.png``                       plain images
    ``DIR/images/*`` + ``DIR/masks/*``  labelled: a mask has its image's stem (``masks/case01.png`` for
                                        ``images/case01.jpg``) and holds class indices; binary masks saved
                                        as 0/255 are read as 0/1.
    ``DIR/images/*`` + ``DIR/clean/*``  noisy/clean pairs for enhancement models: the clean image has its
                                        noisy image's stem and size; it is ``Frame.meta["clean"]`` (what
                                        calibrate and bench score against). ``masks/`` may be there too.

Options:
    masks: a folder of masks to use instead of ``DIR/masks``.
    clean: a folder of clean targets to use instead of ``DIR/clean``.
    loop: ``1`` starts again after the last image (the source then never ends).

Frames are ``HxW`` (grey) or ``HxWx3`` BGR, uint8 or uint16 as stored (alpha is dropped). A file that
cannot be decoded, or whose header declares more pixels than :data:`~.limits.MAX_IMAGE_PIXELS`, is skipped
with a warning and counted in ``skipped``; a folder without any usable image is an error.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

import numpy as np

from jetseg.errors import SourceError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.sources.base import Source
from jetseg.jetson.sources.limits import check_image_size, declared_image_size
from jetseg.optional import require

log = logging.getLogger("jetseg.sources.images")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def natural_key(name: str) -> List[Any]:
    """Sort key that orders embedded numbers by value: ``a2 < a10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", name) if part]


def list_images(folder: Path) -> List[Path]:
    """Image files directly in ``folder`` (by suffix, case-insensitive), in natural order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image(path: Path) -> np.ndarray:
    """Decode one image as ``HxW`` or ``HxWx3`` BGR uint8/uint16; raises ValueError when unusable."""
    cv2 = require("cv2", "reading image folders")
    data = np.fromfile(str(path), dtype=np.uint8)
    size = declared_image_size(data[:1 << 16].tobytes())
    if size is not None:
        check_image_size(size[0], size[1])
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:  # e.g. a TIFF over OpenCV's own pixel limit
        raise ValueError("not decodable (%s)" % " ".join(str(exc).split())[-200:]) from None
    if image is None:
        raise ValueError("not a decodable image")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError("pixel type %s (expected 8- or 16-bit integers)" % image.dtype)
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 1:
            image = image[:, :, 0]
        elif channels == 2:  # grey + alpha
            image = image[:, :, 0]
        elif channels == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        elif channels != 3:
            raise ValueError("%d channels (expected grey, BGR or BGRA)" % channels)
    elif image.ndim != 2:
        raise ValueError("%d dimensions (expected a 2-D image)" % image.ndim)
    return np.ascontiguousarray(image)


def read_mask(path: Path) -> np.ndarray:
    """Decode a class-index mask as ``HxW uint8``; 0/255 binary masks become 0/1."""
    mask = read_image(path)
    if mask.ndim == 3:
        if not (np.array_equal(mask[:, :, 0], mask[:, :, 1]) and np.array_equal(mask[:, :, 0], mask[:, :, 2])):
            raise ValueError("a colour mask (expected class indices in a grey image)")
        mask = mask[:, :, 0]
    peak = int(mask.max()) if mask.size else 0
    if peak > 255:
        raise ValueError("class index %d (expected at most 255)" % peak)
    mask = mask.astype(np.uint8)
    if peak == 255 and np.isin(mask, (0, 255)).all():
        mask = (mask // 255).astype(np.uint8)
    return mask


def _by_stem(folder: Optional[Path]) -> Dict[str, Path]:
    """The images of ``folder`` by file stem (a PNG wins over a lossy format when both exist); {} for None."""
    found: Dict[str, Path] = {}
    for path in list_images(folder) if folder is not None else []:
        if path.stem not in found or path.suffix.lower() == ".png":
            found[path.stem] = path
    return found


class ImageFolderSource(Source):
    """Images of a folder, one frame each, with ``Frame.label`` in the labelled layout.

    Attributes:
        skipped: files that could not be used (undecodable image or mask, mask of the wrong size).
        unlabelled: images of a labelled folder that have no mask (delivered with ``label=None``).
    """

    kind = "image folder"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        masks = opts.text("masks", None)
        clean = opts.text("clean", None)
        self.loop = opts.flag("loop", False)
        opts.done()
        self.folder = Path(uri)
        self.mask_folder: Optional[Path] = Path(masks) if masks else None
        self.clean_folder: Optional[Path] = Path(clean) if clean else None
        self.image_folder = self.folder
        self.files: List[Path] = []
        self._masks: Dict[str, Path] = {}
        self._cleans: Dict[str, Path] = {}
        self._pos = 0
        self.skipped = 0
        self.unlabelled = 0
        self._bad: Set[Path] = set()

    def _scan(self) -> None:
        if not self.folder.is_dir():
            raise SourceError("image folder %s does not exist; expected a folder of PNG/JPEG/TIFF/BMP images"
                              % self.folder)
        images, masks = self.folder / "images", self.folder / "masks"
        if images.is_dir():
            self.image_folder = images
            if self.mask_folder is None and masks.is_dir():
                self.mask_folder = masks
            if self.clean_folder is None and (self.folder / "clean").is_dir():
                self.clean_folder = self.folder / "clean"
        if self.mask_folder is not None and not self.mask_folder.is_dir():
            raise SourceError("mask folder %s does not exist; expected a folder of class-index PNGs named like "
                              "the images" % self.mask_folder)
        if self.clean_folder is not None and not self.clean_folder.is_dir():
            raise SourceError("clean folder %s does not exist; expected a folder of clean images named like the "
                              "noisy images" % self.clean_folder)
        self.files = list_images(self.image_folder)
        if not self.files:
            raise SourceError("no images in %s: expected PNG, JPEG, TIFF or BMP files (or images/ and masks/ "
                              "folders); for other files name the reader: dicom://%s (DICOM), nifti://FILE.nii.gz "
                              "(NIfTI), or a video file" % (self.image_folder, self.folder))
        self._masks = _by_stem(self.mask_folder)
        self._cleans = _by_stem(self.clean_folder)

    @property
    def labelled(self) -> bool:
        return self.mask_folder is not None

    def __len__(self) -> int:
        """Image files found (a corrupt file counts here, then is skipped while reading)."""
        if not self.files:
            self._scan()
        return len(self.files)

    def _open(self) -> None:
        self._scan()
        self._pos = 0
        self.ended = False

    def _load(self, path: Path) -> Optional[Frame]:
        try:
            image = read_image(path)
        except (ValueError, OSError) as exc:
            self._skip(path, str(exc))
            return None
        label = None
        if self.labelled:
            mask_path = self._masks.get(path.stem)
            if mask_path is None:
                self.unlabelled += 1
                log.warning("image %s has no mask in %s; delivered without a label", path.name,
                            self.mask_folder)
            else:
                try:
                    label = read_mask(mask_path)
                except (ValueError, OSError) as exc:
                    self._skip(path, "its mask %s: %s" % (mask_path.name, exc))
                    return None
                if label.shape != image.shape[:2]:
                    self._skip(path, "mask %s is %dx%d, image is %dx%d" % (
                        mask_path.name, label.shape[0], label.shape[1], image.shape[0], image.shape[1]))
                    return None
        meta: Dict[str, Any] = {"path": str(path)}
        if self.clean_folder is not None:
            clean_path = self._cleans.get(path.stem)
            if clean_path is None:
                self._skip(path, "no clean image named %s.* in %s" % (path.stem, self.clean_folder))
                return None
            try:
                meta["clean"] = read_image(clean_path)
            except (ValueError, OSError) as exc:
                self._skip(path, "its clean image %s: %s" % (clean_path.name, exc))
                return None
            if meta["clean"].shape[:2] != image.shape[:2]:
                self._skip(path, "clean image %s is %dx%d, image is %dx%d" % (
                    clean_path.name, meta["clean"].shape[0], meta["clean"].shape[1], image.shape[0], image.shape[1]))
                return None
        return Frame(index=self.delivered, image=image, timestamp=time.monotonic(), label=label,
                     source_id=path.name, meta=meta)

    def _skip(self, path: Path, why: str) -> None:
        self._bad.add(path)
        self.skipped += 1
        log.warning("skipping %s: %s", path.name, why)

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        while True:
            if self._pos >= len(self.files):
                if self.delivered == 0:
                    raise SourceError("no usable image in %s: all %d files were skipped (unreadable or corrupt, "
                                      "see the warnings)" % (self.image_folder, self.skipped))
                if not self.loop:
                    self.ended = True
                    return None
                self._pos = 0
            path = self.files[self._pos]
            self._pos += 1
            if path in self._bad:  # already skipped (and counted) on an earlier loop
                continue
            frame = self._load(path)
            if frame is not None:
                return frame

    def stats(self) -> Dict[str, Any]:
        out = super().stats()
        out.update({"files": len(self.files), "skipped": self.skipped, "labelled": self.labelled,
                    "unlabelled": self.unlabelled, "clean_targets": self.clean_folder is not None})
        return out
