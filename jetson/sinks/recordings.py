"""What a recording cut short leaves behind, and finding it again.

Recordings are fragmented MP4 (one fragment per keyframe, a second apart): a file the encoder could not finish (a
full disk, a killed daemon, power loss) plays up to its last complete fragment. :func:`fragment_frames` counts the
frames such a file holds; :func:`recover_partials` gives a killed run's hidden partial file a name when the sink
opens again; :func:`free_segment` is the one rule for the next free name (``out.mp4``, ``out-001.mp4``, ...).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import List

from jetseg.pids import running

log = logging.getLogger("jetseg.sinks.video")


def fragment_frames(path: Path) -> int:
    """How many video frames ``path``, a fragmented MP4, holds in complete fragments (a ``moof`` followed by a
    whole ``mdat``; the frames are the ``trun`` sample counts): what a player shows of a recording cut short.
    0 for a file without one."""
    total = 0
    try:
        size = path.stat().st_size
        with open(str(path), "rb") as handle:
            offset, pending = 0, None
            while offset + 8 <= size:
                handle.seek(offset)
                header = handle.read(8)
                length, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if length == 1:  # a 64-bit size follows
                    length = int.from_bytes(handle.read(8), "big")
                if length < 8 or offset + length > size:
                    break  # a box cut short: the end of what was finished
                if kind == b"moof":
                    handle.seek(offset)
                    pending = _samples(handle.read(length)[8:])
                elif kind == b"mdat" and pending is not None:
                    total, pending = total + pending, None
                offset += length
    except OSError as exc:
        log.warning("cannot read the partial recording %s: %s", path, exc)
    return total


def _samples(boxes: bytes) -> int:
    """The sample count of every ``trun`` in a ``moof``'s children (inside their ``traf`` boxes)."""
    count, offset = 0, 0
    while offset + 8 <= len(boxes):
        length, kind = int.from_bytes(boxes[offset:offset + 4], "big"), boxes[offset + 4:offset + 8]
        if length < 8:
            break
        if kind == b"traf":
            count += _samples(boxes[offset + 8:offset + length])
        elif kind == b"trun" and length >= 16:
            count += int.from_bytes(boxes[offset + 12:offset + 16], "big")
        offset += length
    return count


def free_segment(path: Path) -> Path:
    """``path`` if nothing has that name, else the first free ``<stem>-NNN<suffix>`` (never replaces a file)."""
    number = 0
    candidate = path
    while candidate.exists():
        number += 1
        candidate = path.with_name("%s-%03d%s" % (path.stem, number, path.suffix))
    return candidate


def recover_partials(path: Path) -> List[Path]:
    """Give the hidden partial recordings of ``path`` that a killed run left (``.<stem>.<pid>.partial<suffix>``
    whose process is gone) a name: each with a complete fragment is renamed to the next free segment name
    (the encoder, in a session of its own, finishes the file after the daemon's SIGKILL); any other is left
    where it is, with a warning that says where. Returns the recovered files."""
    recovered = []
    for partial in sorted(path.parent.glob(".%s.*.partial%s" % (path.stem, path.suffix))):
        pid = partial.name[len(path.stem) + 2:-len(".partial" + path.suffix)]
        if not pid.isdigit() or int(pid) == os.getpid() or running(int(pid)):
            continue
        if fragment_frames(partial):
            target = free_segment(path)
            os.replace(str(partial), str(target))
            log.warning("recovered the recording of an earlier run that was killed: %s", target)
            recovered.append(target)
        else:
            log.warning("an earlier run that was killed left an unfinished recording at %s; it holds no "
                        "complete second of video and is left as it is", partial)
    return recovered

