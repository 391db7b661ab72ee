"""A plain folder of DICOM files (scanner exports: IM0001, I0000023, no suffix) is found by content."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import open_source, parse_uri
from jetseg.jetson.sources.dicom import DicomSource
from tests.fixtures.dicom import write_cine
from tests.fixtures.media import scene


def dicom_export(folder: Path, files: int = 2, frames: int = 6) -> Path:
    """``folder/IM0001`` ... : multi-frame cines without a .dcm suffix, like a scanner's USB export."""
    folder.mkdir(parents=True)
    for f in range(files):
        write_cine(folder / ("IM%04d" % (f + 1)), np.stack([scene(f * 100 + i)[0] for i in range(frames)]))
    (folder / "DICOMDIR.txt").write_text("index written by the scanner\n")
    return folder


def test_plain_dicom_folder_is_a_dicom_source(tmp_path: Path) -> None:
    folder = dicom_export(tmp_path / "export")
    assert parse_uri(str(folder))[0] == "dicom" and parse_uri("file://%s" % folder)[0] == "dicom"
    with open_source(str(folder)) as src:
        assert isinstance(src, DicomSource)
        frames = list(src)
    assert len(frames) == 12 and frames[0].source_id == "IM0001#0" and frames[6].source_id == "IM0002#0"
    single = tmp_path / "export" / "IM0001"
    assert parse_uri(str(single))[0] == "dicom"  # a file without suffix, by its DICM preamble


def test_folder_that_no_reader_takes_names_the_schemes(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"\0" * 300)
    with pytest.raises(SourceError, match=r"no images in .*odd.*dicom://.*nifti://"):
        list(open_source(str(folder)))
