"""Representative scans for calibration: read through the one source layer, preprocess with the bundle's spec.

Frames come from :func:`jetseg.jetson.sources.open_source` (any URI: an image folder, a video, DICOM,
NIfTI, ``synthetic://``) and go through :meth:`jetseg.spec.Spec.preprocess` exactly as at run time, cropped
to the ROI that ``run --roi`` would use (:class:`jetseg.jetson.frames.roi.RoiPolicy`, decided once per file
from its first frames, as the pipeline does at the start of a stream). For
each frame we keep a small thumbnail (for curation), its label when the source has one, and its
preprocessed tensor while the total stays under a memory budget; past the budget the tensors are dropped
and :meth:`ScanSet.tensors` reads the chosen frames again in a second pass (finite sources only).

Enhancement models: a frame that carries a clean target (``frame.meta["clean"]``: ``synthetic://...?noise=``,
an image folder with ``images/`` and ``clean/``) also gives its target, cropped and resized like the input
(:func:`jetseg.tasks.clean_target`), kept and re-read like the tensors (:meth:`ScanSet.targets`).

Provenance: the sha256 of every source file (a folder: each file in it; one file: that file; synthetic:
the URI and the generator's parameters).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from jetseg.bundle import sha256_file
from jetseg.calibration.curate import group_of
from jetseg.errors import JetsegError, SourceError
from jetseg.jetson.frames.roi import RoiError, RoiMode, RoiPolicy, rois_per_file
from jetseg.optional import require
from jetseg.spec import Spec
from jetseg.tasks import clean_target

log = logging.getLogger("jetseg.calibration")

THUMB = 16  # thumbnails are THUMB x THUMB per channel


class ScanError(JetsegError):
    """The scans give no usable frame, or fewer than calibration needs."""


def thumbnail(tensor: np.ndarray, size: int = THUMB) -> np.ndarray:
    """A ``(1, C, H, W)`` or ``(C, H, W)`` model input reduced to ``C * size * size`` float32 (area average)."""
    cv2 = require("cv2", "scan curation")
    chw = tensor[0] if tensor.ndim == 4 else tensor
    small = [cv2.resize(np.ascontiguousarray(c, dtype=np.float32), (size, size), interpolation=cv2.INTER_AREA)
             for c in chw]
    return np.concatenate([s.ravel() for s in small]).astype(np.float32)


@dataclass
class ScanSet:
    """What was read: one entry per usable frame, in stream order.

    Attributes:
        ids: ``{"index": position in the stream, "source": the source's frame id}`` per frame.
        thumbs: ``(N, D)`` float32 thumbnails.
        labels: the preprocessed ground-truth mask ``(H, W) uint8`` per frame, or None.
        skipped: files the source could not use (unreadable, corrupt), as the source counted them.
        files: provenance records (``{"path", "sha256"}`` per file, or the synthetic parameters).
        rois: the ROI used per file or sequence: ``{"roi": [x, y, w, h], "frame": [w, h], "how": ...}``.
        cleans: how many frames carried a clean target (enhancement models; 0 otherwise).
    """

    uri: str
    spec: Spec
    ids: List[Dict[str, Any]] = field(default_factory=list)
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    labels: List[Optional[np.ndarray]] = field(default_factory=list)
    skipped: int = 0
    files: List[Dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    rois: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    cleans: int = 0
    _tensors: Optional[List[np.ndarray]] = None
    _targets: Optional[List[Optional[np.ndarray]]] = None
    _options: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def in_memory(self) -> bool:
        return self._tensors is not None

    @property
    def with_targets(self) -> bool:
        """Every frame carried a clean target (an enhancement model's PSNR drop can be measured)."""
        return bool(self.ids) and self.cleans == len(self.ids)

    def tensors(self, indices: Sequence[int], progress: bool = False) -> List[np.ndarray]:
        """The preprocessed ``(1, C, H, W) float32`` inputs of the frames at ``indices`` (positions in this set)."""
        if self._tensors is not None:
            return [self._tensors[i] for i in indices]
        return [pair[0] for pair in self._reread(indices, progress)]

    def targets(self, indices: Sequence[int], progress: bool = False) -> List[Optional[np.ndarray]]:
        """The clean targets ``(C, H, W) float32`` in [0, 1] of the frames at ``indices``; None per frame unless
        every frame carried one (:attr:`with_targets`)."""
        if not self.with_targets:
            return [None] * len(indices)
        if self._targets is not None:
            return [self._targets[i] for i in indices]
        return [pair[1] for pair in self._reread(indices, progress)]

    def _reread(self, indices: Sequence[int], progress: bool) -> List[Tuple[np.ndarray, Optional[np.ndarray]]]:
        """A second pass over the source: ``(tensor, target)`` of the frames at ``indices``."""
        wanted = {int(self.ids[i]["index"]): i for i in indices}
        found: Dict[int, Tuple[np.ndarray, Optional[np.ndarray]]] = {}
        last = max(wanted) if wanted else -1
        for position, frame in _frames(self.uri, self._options, limit=last + 1, progress=progress,
                                       desc="re-reading"):
            if position in wanted:
                roi = self.rois[group_of(str(frame.source_id or position))]["roi"]
                tensor = self.spec.preprocess(frame.image, roi=roi)
                i = wanted[position]
                if not np.allclose(thumbnail(tensor), self.thumbs[i], atol=1e-4):
                    raise ScanError("source %s delivered a different frame %d on the second pass; calibrate from "
                                    "files (not a live stream) or raise --memory-mb" % (self.uri, position))
                found[position] = (tensor, _target(self.spec, frame, roi))
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise ScanError("source %s ended before frame %d on the second pass" % (self.uri, missing[0]))
        return [found[int(self.ids[i]["index"])] for i in indices]


def _target(spec: Spec, frame: Any, roi: Sequence[int]) -> Optional[np.ndarray]:
    """The frame's clean target for an enhancement model (:func:`jetseg.tasks.clean_target`), else None."""
    clean = (frame.meta or {}).get("clean")
    if spec.task != "enhancement" or clean is None:
        return None
    return clean_target(spec, clean, roi)


def _frames(uri: str, options: Dict[str, Any], limit: Optional[int], progress: bool, desc: str,
            info: Optional[Dict[str, Any]] = None) -> Iterator[Tuple[int, Any]]:
    """``(position, Frame)`` of a finite source, up to ``limit``; fills ``info`` with skipped/truncated."""
    from jetseg.jetson.sources import open_source

    tqdm = require("tqdm", "progress bars").tqdm
    source = open_source(uri, **options)
    if getattr(source, "live", False):
        raise ScanError("%s is a live source; calibrate from recorded scans (a video file, an image folder, "
                        "DICOM, NIfTI or synthetic://)" % uri)
    with source, tqdm(total=limit, desc=desc, unit="frame", disable=None if progress else True,
                      leave=False) as bar:
        position = 0
        for frame in source:
            if limit is not None and position >= limit:
                break
            yield position, frame
            position += 1
            bar.update(1)
        if info is not None:
            info["skipped"] = int(getattr(source, "skipped", 0) or source.stats().get("skipped", 0) or 0)
            info["truncated"] = limit is not None and position >= limit and not source.ended


def with_rois(frames: Iterator[Tuple[int, Any]], spec: Spec, roi: Union[RoiMode, Sequence[int]], auto_frames: int,
              rois: Dict[str, Dict[str, Any]]) -> Iterator[Tuple[int, Any, Tuple[int, int, int, int]]]:
    """``(position, Frame, roi)``: the ROI of each file (or sequence) decided by a :class:`RoiPolicy` of mode
    ``roi`` from its first ``auto_frames`` frames (``auto``; other modes from its first frame), recorded in
    ``rois`` under the file's name: :func:`jetseg.jetson.frames.roi.rois_per_file`, as ``bench`` decides it.

    Raises:
        ScanError: ``auto`` is not sure on a file (the run-time pipeline would feed it the whole frame).
    """
    policy = RoiPolicy(spec, roi, auto_frames)
    try:
        yield from rois_per_file(frames, policy, rois)
    except RoiError as exc:
        raise ScanError("%s; the run-time pipeline would use the whole frame, so give --roi x,y,w,h, --roi spec "
                        "or --roi none" % exc) from None


def read_scans(uri: str, spec: Spec, max_frames: int = 500, memory_mb: float = 1024.0,
               progress: bool = True, roi: Union[RoiMode, Sequence[int]] = "spec", auto_frames: int = 3,
               **options: Any) -> ScanSet:
    """Read up to ``max_frames`` frames of ``uri`` and preprocess them with ``spec``, each cropped to its
    file's ROI (``roi``: ``auto``, ``spec``, ``none`` or ``[x, y, w, h]``, as ``run --roi``; see
    :func:`with_rois`).

    Raises:
        ScanError: no usable frame at all (every file was skipped, or the source is empty).
        SourceError: the source cannot be opened (from the source layer).
    """
    if not isinstance(max_frames, int) or max_frames < 1:
        raise ScanError("--max-frames %r is invalid; expected a positive integer" % (max_frames,))
    out = ScanSet(uri=uri, spec=spec, _options=dict(options))
    tensors: Optional[List[np.ndarray]] = []
    targets: List[Optional[np.ndarray]] = []
    thumbs: List[np.ndarray] = []
    used = 0.0
    budget = float(memory_mb) * 1024 * 1024
    info: Dict[str, Any] = {"skipped": 0, "truncated": False}
    try:
        frames = _frames(uri, options, limit=max_frames, progress=progress, desc="reading scans", info=info)
        for position, frame, box in with_rois(frames, spec, roi, auto_frames, out.rois):
            tensor = spec.preprocess(frame.image, roi=box)
            label = spec.preprocess_mask(frame.label, roi=box) if frame.label is not None else None
            target = _target(spec, frame, box)
            out.cleans += target is not None
            out.ids.append({"index": position, "source": str(frame.source_id or position)})
            out.labels.append(label)
            thumbs.append(thumbnail(tensor))
            if tensors is not None:
                used += tensor.nbytes + (target.nbytes if target is not None else 0)
                if used > budget:
                    log.info("scans exceed --memory-mb %.0f; keeping thumbnails only, the chosen frames are read "
                             "again", memory_mb)
                    tensors = None
                    targets = []
                else:
                    tensors.append(tensor)
                    targets.append(target)
    except SourceError as exc:
        if "no usable" in str(exc):
            raise ScanError("%s; nothing to calibrate with" % exc) from None
        raise
    out.skipped = int(info["skipped"])
    out.truncated = bool(info["truncated"])
    if out.skipped:
        log.warning("%d file(s) of %s could not be read and were skipped", out.skipped, uri)
    if not out.ids:
        raise ScanError("no usable frame in %s (%d file(s) skipped as unreadable); give scans the bundle's "
                        "model can take" % (uri, out.skipped))
    out.thumbs = np.stack(thumbs)
    out._tensors = tensors
    out._targets = targets if tensors is not None else None
    out.files = provenance(uri, options)
    return out


def provenance(uri: str, options: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """sha256 of every file behind ``uri`` (a folder: every file under it), or the synthetic parameters."""
    from jetseg.jetson.sources import parse_uri

    kind, target, query = parse_uri(uri)
    params = dict(query)
    params.update(options or {})
    if kind == "synthetic":
        return [{"uri": uri, "generator": "jetseg.models.synthetic", "kind": target.strip("/"),
                 "params": {k: str(v) for k, v in sorted(params.items())}}]
    path = Path(target)
    if path.is_dir():
        return [{"path": p.relative_to(path).as_posix(), "sha256": sha256_file(p)}
                for p in sorted(path.rglob("*")) if p.is_file()]
    if path.is_file():
        return [{"path": path.name, "sha256": sha256_file(path)}]
    return [{"uri": uri}]
