"""Helpers for the source tests: write real files (images, video, DICOM) for the sources to read."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np


def gradient(h: int, w: int, colour: bool = False, dtype: Any = np.uint8, seed: int = 0) -> np.ndarray:
    """A deterministic test image: a ramp plus noise, grey ``HxW`` or ``HxWx3``."""
    rng = np.random.default_rng(seed)
    top = 65535 if dtype == np.uint16 else 255
    ramp = np.linspace(0, top, w)[np.newaxis, :].repeat(h, axis=0)
    if colour:
        image = np.stack([ramp, ramp[::-1, ::-1], np.full((h, w), top * 0.5)], axis=2)
        image = image + rng.integers(0, top // 16, size=(h, w, 3))
    else:
        image = ramp + rng.integers(0, top // 16, size=(h, w))
    return np.clip(image, 0, top).astype(dtype)


def write_dicom(path: Path, frames: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: Optional[int] = None,
                signed: bool = False, **tags: Any) -> Path:
    """Write an uncompressed (explicit VR little endian) DICOM file; ``frames`` is (N,)H,W(,3)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    frames = np.asarray(frames)
    colour = photometric in ("RGB", "YBR_FULL", "YBR_FULL_422")
    multi = frames.ndim == (4 if colour else 3)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # ultrasound multi-frame image storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Secret^Patient"
    ds.PatientID = "SECRET-ID-42"
    ds.Modality = "US"
    ds.Rows, ds.Columns = frames.shape[1:3] if multi else frames.shape[:2]
    if multi:
        ds.NumberOfFrames = frames.shape[0]
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    allocated = 16 if frames.dtype.itemsize == 2 else 8
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    if hasattr(pydicom, "dcmwrite") and "enforce_file_format" in pydicom.dcmwrite.__code__.co_varnames:
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    else:  # pydicom 2
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(path), write_like_original=False)
    return path


def write_video(path: Path, frames: int = 8, size: Any = (64, 48), fps: float = 10.0) -> Path:
    """An mp4 (MPEG-4 part 2) whose frame i is a flat grey of level 20 + 25 * i."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 + 25 * i, np.uint8))
    writer.release()
    return path
