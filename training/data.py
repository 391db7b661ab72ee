"""Frames for training and distillation: read from any source, preprocessed as they arrive, hashed.

Frames come through :func:`jetseg.jetson.sources.open_source` and become model input through
:meth:`Spec.preprocess` / :meth:`Spec.preprocess_mask`, exactly as at run time; the frames themselves are
not kept. Held-out data for synthetic sources comes from other seeds (other "patients").
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from jetseg.errors import JetsegError
from jetseg.spec import Spec


class TrainError(JetsegError):
    """Training data or options are unusable."""


@dataclass
class Dataset:
    """Preprocessed frames.

    Attributes:
        x: ``(N, C, H, W)`` model input: float16 (training) or float32 (held out).
        y: ``(N, H, W) uint8`` masks at model resolution, or None when the frames have no labels.
    """

    x: np.ndarray
    y: Optional[np.ndarray]
    uri: str
    sha256: str
    read: int


def synthetic_kind(uri: str) -> Optional[str]:
    """``ultrasound`` for ``synthetic://ultrasound?...``; None for any other source."""
    from jetseg.jetson.sources import parse_uri

    kind, target, _ = parse_uri(uri)
    return target.strip("/") if kind == "synthetic" else None


def held_out_uri(uri: str, frames: int, every: int, offset: int = 1000) -> Optional[str]:
    """Synthetic data: the same kind from seed + ``offset`` (other "patients"); otherwise None (split)."""
    kind = synthetic_kind(uri)
    if kind is None:
        return None
    from jetseg.jetson.sources import parse_uri

    _, _, query = parse_uri(uri)
    seed = int(query.get("seed", 0)) + offset
    extra = "".join("&%s=%s" % (k, query[k]) for k in ("width", "height") if k in query)
    return "synthetic://%s?seed=%d&frames=%d%s" % (kind, seed, frames * every, extra)


def every_kth(uri: str, limit: Optional[int], every: int, counts: Dict[str, int]) -> Iterator[Tuple[Any, bool]]:
    """``(frame, keep)`` for each frame read from ``uri`` with a progress bar: ``keep`` for every ``every``-th, up
    to ``limit`` kept frames (a finite source without ``limit``: all of it); ``counts["read"]`` counts the frames.

    Raises:
        TrainError: an endless source without ``limit``.
    """
    from jetseg.jetson.sources import open_source
    from jetseg.training.progress import bar

    source = open_source(uri)
    try:
        finite: Optional[int] = len(source)
    except TypeError:
        finite = None
    if limit is None:
        if finite is None:
            raise TrainError("source %s is endless; add frames=N to the URI" % uri)
        total = finite
    else:
        total = limit * every if finite is None else min(finite, limit * every)
    kept = 0
    counts["read"] = 0
    with source, bar(total=total, desc="read " + uri[:40], unit="frame") as progress:
        for frame in source:
            keep = counts["read"] % every == 0
            yield frame, keep
            kept += keep
            counts["read"] += 1
            progress.update(1)
            if limit is not None and kept >= limit:
                break


def read_frames(uri: str, limit: Optional[int], every: int, spec: Optional[Spec],
                make: Optional[Callable[[Any], Spec]] = None, dtype: Any = np.float16,
                labels: str = "required") -> Tuple[Dataset, Spec]:
    """Frames from ``uri`` (every ``every``-th, up to ``limit``), preprocessed as they arrive.

    Args:
        spec: the spec whose preprocessing is used, or None to make it with ``make(first_frame)``.
        labels: ``required`` (a frame without a mask is an error), ``optional`` (masks are kept only if
            every frame has one; ``y`` is None otherwise) or ``ignore``.
    """
    digest = hashlib.sha256()
    xs: List[np.ndarray] = []
    ys: Optional[List[np.ndarray]] = [] if labels != "ignore" else None
    counts = {"read": 0}
    for frame, keep in every_kth(uri, limit, every, counts):
        if frame.label is None and labels == "required":
            raise TrainError("frame %s of %s has no label; training needs masks (a folder with images/ and "
                             "masks/, or synthetic://...)" % (frame.source_id or frame.index, uri))
        if keep:
            if spec is None:
                spec = make(frame)  # type: ignore[misc]
            digest.update(np.ascontiguousarray(frame.image).tobytes())
            xs.append(spec.preprocess(frame.image).astype(dtype))
            if ys is not None and frame.label is None:
                ys = None
            elif ys is not None and frame.label is not None:
                digest.update(np.ascontiguousarray(frame.label).tobytes())
                ys.append(spec.preprocess_mask(frame.label))
    read = counts["read"]
    if not xs or spec is None:
        raise TrainError("source %s delivered no frames" % uri)
    y = np.stack(ys) if ys else None
    if y is not None and int(y.max()) >= spec.num_classes:
        raise TrainError("labels of %s contain class %d but the model has %d classes (%s); pass --classes"
                         % (uri, int(y.max()), spec.num_classes, ",".join(spec.classes)))
    return Dataset(x=np.concatenate(xs), y=y, uri=uri, sha256=digest.hexdigest(), read=read), spec


def split_tail(data: Dataset, fraction: float, what: str = "held out", minimum: int = 5) -> Tuple[Dataset, Dataset]:
    """Split off the last ``fraction`` of a finite source's frames (later files / later in the sequence)."""
    total = len(data.x)
    if total < minimum:
        raise TrainError("%s has %d frames; at least %d are needed to hold some out" % (data.uri, total, minimum))
    n = max(1, int(round(total * fraction)))
    tail = Dataset(x=data.x[-n:], y=None if data.y is None else data.y[-n:],
                   uri="%s (last %d frames %s)" % (data.uri, n, what), sha256=data.sha256, read=n)
    head = Dataset(x=data.x[:-n], y=None if data.y is None else data.y[:-n], uri=data.uri, sha256=data.sha256,
                   read=data.read)
    return head, tail


def input_section(size: Any, channels: int, roi: Any, name: str = "input") -> Dict[str, Any]:
    """The ``input`` section of a trained model's spec (every task): the image as it is in [0, 1] (mean 0, std 1),
    grey for one channel, the ROI (a synthetic source's field of view) when the frames have one."""
    return {"name": name, "size": list(size), "channels": channels, "color_order": "gray" if channels == 1 else "rgb",
            "mean": [0.0] * channels, "std": [1.0] * channels,
            "roi": [int(v) for v in roi] if roi is not None else None}
