"""The viewer's mask layer: one indexed-colour PNG per frame that a browser decodes and draws as it is.

Pixel value = class index, plus :data:`EDGE` on the class's boundary pixels (a pixel whose 4-neighbours are
not all of its class, or on the picture's border); the PNG's palette (PLTE) gives each class its colour and
its transparency (tRNS) the opacity: 0 for the background, :data:`FILL_ALPHA` inside a class, opaque on its
boundary. The page changes what it shows (opacity, contour only, classes on and off) by swapping these two
small chunks before decoding, never by touching pixels (:data:`PALETTE_AT` and :data:`PALETTE_BYTES` say where
they are). Computed once per frame, however many pages watch.

Written here (PNG specification: 11.2.2 IHDR, 11.2.3 PLTE, 11.3.2.1 tRNS, 11.2.4 IDAT); :func:`png_indices`
reads the values back.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, Sequence

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
EDGE = 128
#: opacity inside a class in the PNG as sent (the page's default opacity, 0.45)
FILL_ALPHA = 115
#: where the palette chunks start: after the signature (8 bytes) and IHDR (25 bytes)
PALETTE_AT = 33
#: PLTE (256 entries) and tRNS (256 entries), each with its length, type and CRC
PALETTE_BYTES = (12 + 768) + (12 + 256)
MAX_CLASSES = EDGE


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def palette_chunks(colors: Sequence[Sequence[int]]) -> bytes:
    """PLTE + tRNS for ``colors`` (RGB per class, index 0 the background)."""
    rgb = bytearray(768)
    alpha = bytearray(256)
    for index in range(1, min(len(colors), MAX_CLASSES)):
        r, g, b = (int(v) for v in list(colors[index])[:3])
        for base, a in ((0, FILL_ALPHA), (EDGE, 255)):
            rgb[3 * (base + index):3 * (base + index) + 3] = bytes((r, g, b))
            alpha[base + index] = a
    return _chunk(b"PLTE", bytes(rgb)) + _chunk(b"tRNS", bytes(alpha))


def edge_labels(labels: np.ndarray, cv2: Any) -> np.ndarray:
    """``labels`` (HxW uint8 class indices) with :data:`EDGE` added on each class's boundary pixels."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    edge = cv2.dilate(labels, cross) != cv2.erode(labels, cross)
    edge[0, :] = edge[-1, :] = True
    edge[:, 0] = edge[:, -1] = True
    edge &= (labels > 0) & (labels < MAX_CLASSES)
    out = labels.copy()
    out[edge] += EDGE
    return out


def indexed_png(labels: np.ndarray, palette: bytes, cv2: Any) -> bytes:
    """The mask layer's PNG of ``labels`` with ``palette`` (:func:`palette_chunks`): 8-bit indexed colour,
    every row unfiltered (filter type 0) and deflated at level 1, which a mostly empty mask packs well; about
    3x faster than OpenCV's encoder, which tries every filter on every row."""
    values = edge_labels(labels, cv2)
    height, width = values.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each row: its filter type byte (0), then the pixels
    rows[:, 1:] = values
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # 8 bits, colour type 3 (indexed)
    return (SIGNATURE + _chunk(b"IHDR", header) + palette + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + _chunk(b"IEND", b""))


def png_indices(data: bytes, cv2: Any) -> np.ndarray:
    """The pixel values (class index, + EDGE on boundaries) of a mask layer PNG, as HxW uint8."""
    ihdr = bytearray(data[16:29])
    ihdr[9] = 0
    grey = data[:8] + _chunk(b"IHDR", bytes(ihdr)) + data[PALETTE_AT + PALETTE_BYTES:]
    out = cv2.imdecode(np.frombuffer(grey, np.uint8), cv2.IMREAD_UNCHANGED)
    if out is None:
        raise ValueError("not a mask layer PNG")
    return np.asarray(out)
