"""Declared sizes, checked before decoding: a small file that claims a huge image is refused, not decoded.

A 661-byte PNG can claim 60000x60000 pixels, a 777 KB .nii.gz a volume of many gigabytes. The readers of
image folders, NIfTI volumes and DICOM files check what the file's header declares against these limits
before they decode a pixel; a folder skips such a file with one warning, a single file is refused.
"""
from __future__ import annotations

import struct
from typing import Optional, Sequence, Tuple

#: The largest image (one frame) a source decodes: 8192 x 8192 pixels.
MAX_IMAGE_PIXELS = 8192 * 8192
#: The largest volume or cine (all frames, all samples) a source decodes: 2**28 values (1 GB as float32).
MAX_VOLUME_VALUES = 1 << 28

_PNG = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, progressive, lossless, ...; not DHT C4, JPG C8, DAC CC)
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def declared_image_size(head: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) a PNG, JPEG or BMP header declares, or None for another format (left to the decoder).

    Args:
        head: the file's first bytes (64 KB is plenty for a JPEG's frame header).
    """
    if head.startswith(_PNG) and len(head) >= 24 and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height)
    if head.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 <= len(head):
            if head[pos] != 0xFF:
                return None
            marker = head[pos + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                pos += 1 if marker == 0xFF else 2
                continue
            length = struct.unpack(">H", head[pos + 2:pos + 4])[0]
            if marker in _SOF:
                height, width = struct.unpack(">HH", head[pos + 5:pos + 9])
                return width, height
            pos += 2 + length
    return None


def check_image_size(width: int, height: int, what: str = "image") -> None:
    """Raise ValueError if a ``width`` x ``height`` image is over :data:`MAX_IMAGE_PIXELS`."""
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError("%s declares %dx%d pixels, over the limit of %d (8192x8192); not decoded"
                         % (what, width, height, MAX_IMAGE_PIXELS))


def check_volume_size(shape: Sequence[int], what: str = "volume") -> None:
    """Raise ValueError if a volume of ``shape`` holds over :data:`MAX_VOLUME_VALUES` values."""
    total = 1
    for n in shape:
        total *= max(int(n), 0)
    if total > MAX_VOLUME_VALUES:
        raise ValueError("%s declares %s = %d values, over the limit of %d (2**28); not decoded"
                         % (what, "x".join(str(int(n)) for n in shape), total, MAX_VOLUME_VALUES))
