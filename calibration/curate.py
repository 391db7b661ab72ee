"""Choosing the calibration set and the held-out gate set from all frames, deterministically.

- Held-out set (for the accuracy gate) first, never next to a calibration frame of the same sequence
  (adjacent cine frames are near copies, and a gate on them measures nothing):

  - ``by-file``: the frames come from several files or sequences (``groups``): whole files are held out,
    evenly spaced over the files, until about ``holdout`` frames are held out (at least one file is left
    for calibration);
  - ``block``: one sequence (a cine loop, a video, one stream): the last ``holdout`` frames, and a gap of
    :data:`GAP` frames before them that neither set uses;
  - ``per-frame``: every frame is its own file (an image folder): ``holdout`` frames evenly spaced.
- Calibration set from the rest: ``count`` frames by k-center greedy on the thumbnails (each next frame is
  the one farthest from every frame chosen so far), so that rare views are covered and near-duplicate video
  frames are not chosen twice. The first center is the frame closest to the mean thumbnail; ties go to the
  earliest frame. Same frames in, same choice out.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetseg.errors import JetsegError

log = logging.getLogger("jetseg.calibration")

#: Frames left out between calibration and held-out frames of one sequence (``block`` split).
GAP = 4
SPLIT_METHODS = ("by-file", "block", "per-frame")


def k_center_greedy(features: np.ndarray, k: int, pool: Sequence[int]) -> List[int]:
    """Pick ``k`` indices of ``pool`` (rows of ``features``) by k-center greedy; returns them in pick order."""
    pool = list(pool)
    if k <= 0 or not pool:
        return []
    x = np.asarray(features, dtype=np.float64)[pool]
    centre = x.mean(axis=0)
    first = int(np.argmin(((x - centre) ** 2).sum(axis=1)))
    chosen = [first]
    dist = ((x - x[first]) ** 2).sum(axis=1)
    while len(chosen) < min(k, len(pool)):
        nxt = int(np.argmax(dist))  # the first maximum: ties go to the earliest frame
        if dist[nxt] <= 0.0:
            # every remaining frame duplicates a chosen one: fill in stream order
            rest = [i for i in range(len(pool)) if i not in set(chosen)]
            chosen.extend(rest[:k - len(chosen)])
            break
        chosen.append(nxt)
        dist = np.minimum(dist, ((x - x[nxt]) ** 2).sum(axis=1))
    return [pool[i] for i in chosen]


def evenly_spaced(n: int, k: int) -> List[int]:
    """``k`` distinct indices spread evenly over ``range(n)`` (centred in their strides)."""
    if k <= 0:
        return []
    k = min(k, n)
    return sorted({int((i + 0.5) * n / k) for i in range(k)})


def group_of(source_id: str) -> str:
    """The file or sequence a frame belongs to: its source id without the ``#frame`` suffix."""
    return str(source_id).split("#", 1)[0]


def split(features: np.ndarray, count: int, holdout: int,
          groups: Optional[Sequence[str]] = None) -> Tuple[List[int], List[int], str]:
    """``(calibration, holdout, method)``: index lists, disjoint, both sorted in stream order, and the split
    method (one of :data:`SPLIT_METHODS`, see the module docstring).

    ``groups`` names each frame's file or sequence (default: all frames are one sequence). With fewer frames
    than ``count + holdout`` the held-out set is shrunk first (to a quarter of the frames, at least one), and
    the calibration set takes the rest (up to ``count``), less the gap inside a sequence. Whole files are
    held out only as long as they fit the held-out size and leave the calibration frames; a sequence keeps
    its gap of :data:`GAP` frames however few frames there are (as long as one frame is left to calibrate).
    The split is logged once, with the numbers calibration.json records.

    Raises:
        JetsegError: fewer than two frames, or a non-positive count.
    """
    n = int(len(features))
    if not isinstance(count, int) or count < 1:
        raise JetsegError("--count %r is invalid; expected a positive number of calibration frames" % (count,))
    if not isinstance(holdout, int) or holdout < 1:
        raise JetsegError("--holdout %r is invalid; expected a positive number of held-out frames" % (holdout,))
    if n < 2:
        raise JetsegError("only %d usable frame; calibration needs at least 2 (calibration + held-out for the "
                          "accuracy gate); give more scans" % n)
    names = [str(g) for g in groups] if groups is not None else ["sequence"] * n
    if len(names) != n:
        raise JetsegError("split: %d group names for %d frames" % (len(names), n))
    order: Dict[str, List[int]] = {}
    for i, name in enumerate(names):
        order.setdefault(name, []).append(i)
    wanted = holdout if n >= count + holdout else min(holdout, max(1, n // 4))
    if len(order) == n:
        method, held, gap = "per-frame", evenly_spaced(n, wanted), 0
    elif len(order) >= 2:
        method, held, gap = "by-file", _held_files(list(order.values()), wanted, min(count, n - wanted)), 0
    else:
        method = "block"
        gap = GAP if n - wanted - GAP >= 1 else max(0, n - wanted - 1)
        held = list(range(n - wanted, n))
    unused = set(range(n - len(held) - gap, n - len(held))) if method == "block" else set()
    pool = [i for i in range(n) if i not in set(held) and i not in unused]
    calib = k_center_greedy(features, count, pool)
    detail = {"per-frame": "evenly spaced frames", "by-file": "%d whole file(s) of %d"
              % (len({names[i] for i in held}), len(order)), "block": "one sequence, %d frames left out between "
              "them" % gap}[method]
    used = "using %d for calibration and %d held out (split %s: %s)" % (len(calib), len(held), method, detail)
    if n < count + holdout:
        log.warning("only %d usable frames for --count %d + --holdout %d; %s", n, count, holdout, used)
    else:
        log.info("%d usable frames; %s", n, used)
    return sorted(calib), sorted(held), method


def _spread(n: int) -> List[int]:
    """``range(n)`` in the order evenly spaced picks take them: first the middle, then the quarters, ..."""
    out: List[int] = []
    for k in range(1, n + 1):
        out.extend(i for i in evenly_spaced(n, k) if i not in set(out))
    return out


def _held_files(files: List[List[int]], holdout: int, keep: int) -> List[int]:
    """Whole files, evenly spaced over the files, while they fit: at most ``holdout`` frames (the first file
    may exceed it only if it leaves ``keep`` frames), never fewer than ``keep`` frames left to calibrate, and
    at least one file left. A long cine among single frames then stays for calibration."""
    total = sum(len(f) for f in files)
    held: List[int] = []
    taken = 0
    for f in _spread(len(files)):
        if taken == len(files) - 1 or len(held) >= holdout:
            break
        size = len(files[f])
        if total - len(held) - size < keep or (held and len(held) + size > holdout):
            continue
        held.extend(files[f])
        taken += 1
    if not held:  # every file is needed for calibration: hold out the smallest one
        held = list(files[min(range(len(files)), key=lambda f: len(files[f]))])
    return held
