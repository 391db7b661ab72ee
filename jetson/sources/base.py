"""The source interface: ``read(timeout)`` returns the next :class:`Frame`, or ``None`` on timeout.

A finite source (file, folder, DICOM, synthetic with a frame count) sets ``ended`` once every frame has
been delivered. A live source (camera, capture card, network stream) never queues stale frames: the
newest frame wins and ``dropped`` counts the ones that were overwritten before anyone read them.
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Type

from jetseg.component import Component, split_uri
from jetseg.errors import SourceError
from jetseg.jetson.frames.frame import Frame
from jetseg.registry import Registry


class Source(Component):
    """Base of all frame sources. Subclasses implement ``_open``, ``_read`` and ``_close``.

    A subclass reads its options in ``__init__`` with ``opts = self.read_options(options)`` ... ``opts.done()``
    (unknown or malformed options raise a SourceError naming the option).

    Class attributes:
        kind: how messages name the source (``video``, ``image folder``, ``v4l2``).
        live: True for cameras and network streams (drops allowed, reconnects), False for files.
    """

    kind = ""
    live = False
    #: the local device the source reads (``/dev/video0``), checked by :meth:`preflight`; None: none
    local_device: Optional[str] = None
    #: the local file or folder the source reads (a cine, a volume, a video), checked by :meth:`preflight`
    local_file: Optional[str] = None
    family = "source"
    error = SourceError

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__()
        self.uri = uri
        self.ended = False
        self.dropped = 0
        self.delivered = 0
        # Subclasses read their own options and pass none on; whatever reaches here nobody reads.
        self.read_options(options).done()

    @property
    def label(self) -> str:
        return "%s source" % self.kind if self.kind else "source"

    @property
    def is_open(self) -> bool:
        return self.started

    @property
    def fps(self) -> Optional[float]:
        """The native frame rate if known."""
        return None

    def __len__(self) -> int:
        """Number of frames of a finite source; raises TypeError for live ones."""
        raise TypeError("%s has no fixed length" % type(self).__name__)

    def open(self) -> Source:
        self._open_with(self._open)
        return self

    def close(self) -> None:
        self._close_with(self._close)

    def _enter(self) -> None:
        self.open()

    def _exit(self) -> None:
        self.close()

    def read(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next frame, or None if none arrived within ``timeout`` seconds or the source has ended."""
        if not self.is_open:
            self.open()
        if self.ended:
            return None
        frame = self._read(timeout)
        if frame is not None:
            self.delivered += 1
        return frame

    def __iter__(self) -> Iterator[Frame]:
        """Iterate a finite source to its end (live sources: until closed)."""
        while True:
            frame = self.read(timeout=1.0)
            if frame is None:
                if self.ended or not self.is_open:
                    return
                continue
            yield frame

    def stats(self) -> Dict[str, Any]:
        return {"uri": self.uri, "delivered": self.delivered, "dropped": self.dropped, "live": self.live}

    def preflight(self) -> None:
        """What ``run --check`` verifies beyond the URI and options, without opening the source: raises a
        SourceError when it cannot work as given (its :attr:`local_file` or :attr:`local_device` does not
        exist). A normal start does not call it: a live source waits for its device and reconnects."""
        if self.local_file is not None and not os.path.exists(self.local_file):
            raise SourceError("%s %r: %s does not exist; give an existing file or folder as --source"
                              % (self.label, self.uri, self.local_file))
        device = self.local_device
        if device is None or os.path.exists(device):
            return
        present = sorted(glob.glob(re.sub(r"\d+$", "*", device)))  # /dev/video0 -> the /dev/video* there are
        raise SourceError("%s %r: no such device %s (%s here: %s); plug the device in or give the right --source "
                          "(a normal run waits for it and reconnects)"
                          % (self.label, self.uri, device, re.sub(r"\d+$", "*", device), ", ".join(present) or "none"))

    # hooks
    def _open(self) -> None:
        pass

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        raise NotImplementedError

    def _close(self) -> None:
        pass


#: Source classes by URI scheme (``parse_uri`` maps plain paths and ``file://`` to file, folder, dicom or nifti).
SOURCES: Registry[Type[Source]] = Registry("source", SourceError)
SOURCES.register("synthetic", "jetseg.jetson.sources.synthetic:SyntheticSource", "synthetic scans with labels")
SOURCES.register("file", "jetseg.jetson.sources.video:VideoFileSource", "a video file")
SOURCES.register("folder", "jetseg.jetson.sources.images:ImageFolderSource", "a folder of images (+ masks)")
SOURCES.register("dicom", "jetseg.jetson.sources.dicom:DicomSource", "DICOM file(s), single or multi-frame")
SOURCES.register("nifti", "jetseg.jetson.sources.nifti:NiftiSource", "NIfTI volume, sliced along an axis")
SOURCES.register("itk", "jetseg.jetson.sources.itk:ItkSource",
                 "MHA/MHD, NRRD volume (sliced) or 2-D+t sequence (SimpleITK)")
SOURCES.register("v4l2", "jetseg.jetson.sources.live:V4L2Source", "V4L2 capture card or USB camera")
SOURCES.register("csi", "jetseg.jetson.sources.live:CSISource", "Jetson CSI camera (nvarguscamerasrc)")
SOURCES.register("rtsp", "jetseg.jetson.sources.live:RTSPSource", "RTSP stream")
SOURCES.register("udp", "jetseg.jetson.sources.live:UDPSource", "UDP (MPEG-TS) stream")
SOURCES.register("gst", "jetseg.jetson.sources.live:GstSource", "a GStreamer pipeline ending in appsink")

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
NIFTI_SUFFIXES = {".nii", ".nii.gz"}
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")  # jetson/sources/itk.py reads them (SimpleITK)


def parse_uri(uri: str) -> Tuple[str, str, Dict[str, str]]:
    """Split a source URI into ``(kind, target, options)``.

    ``synthetic://ultrasound?frames=50&seed=3`` -> ``("synthetic", "ultrasound", {"frames": "50", "seed": "3"})``;
    a bare path is a file, a folder, a DICOM or a NIfTI file by what it is. Query options are strings;
    each source converts the ones it knows and rejects the rest.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise SourceError("empty source; give a URI such as synthetic://ultrasound or a video file")
    uri = uri.strip()
    if uri.startswith("gst://"):  # a pipeline is not a URL: keep it verbatim
        return "gst", uri[len("gst://"):], {}
    if "://" in uri:
        kind, target, options = split_uri(uri)
        if kind in ("rtsp", "udp"):  # network URLs are passed on whole
            return kind, uri, {}
        if kind == "file":
            return _path_kind(target), target, options
        SOURCES.check(kind)
        return kind, target, options
    return _path_kind(uri), uri, {}


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` starts like a DICOM Part 10 file: 128 bytes of preamble, then ``DICM``."""
    try:
        with open(str(path), "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def is_dicom_folder(folder: Path, probe: int = 8) -> bool:
    """True when the first files of ``folder`` (by name, at most ``probe``) are DICOM by content, whatever
    their names (scanners export ``IM0001``, ``I0000023`` or ``.dcm``)."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))[:probe]
    except OSError as exc:
        raise SourceError("cannot list folder %s (%s); check that it exists and is readable"
                          % (folder, exc.strerror or exc)) from None
    return bool(files) and sum(is_dicom_file(p) for p in files) * 2 > len(files)


def _path_kind(target: str) -> str:
    path = Path(target)
    if path.is_dir():
        return "dicom" if is_dicom_folder(path) else "folder"
    name = path.name.lower()
    if any(name.endswith(s) for s in NIFTI_SUFFIXES):
        return "nifti"
    if path.suffix.lower() in ITK_SUFFIXES:
        return "itk"
    if path.suffix.lower() in DICOM_SUFFIXES or (path.is_file() and is_dicom_file(path)):
        return "dicom"
    if not path.exists():
        raise SourceError("source %s does not exist (expected a video file, an image folder, a DICOM, NIfTI, "
                          "MHA/MHD or NRRD file, or a URI such as synthetic://ultrasound)" % target)
    return "file"


def open_source(uri: str, **options: Any) -> Source:
    """Construct (not yet open) the source for ``uri``; keyword options override the URI's query."""
    kind, target, query = parse_uri(uri)
    merged: Dict[str, Any] = dict(query)
    merged.update(options)
    return SOURCES.get(kind)(target, **merged)
