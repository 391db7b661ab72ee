"""dicom-seg://: SEGs of frames read by the DICOM source, read back with pydicom and highdicom, checked by dciodvfy."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from jetseg import __version__
from jetseg.errors import SinkError
from jetseg.jetson.frames.result import Result
from jetseg.jetson.sinks import SinkContext, open_sink
from jetseg.jetson.sources import open_source
from jetseg.spec import Spec
from tests.fixtures.dicom import write_cine
from tests.fixtures.media import make_result
from tests.fixtures.realscreens import real_screen_path

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

SPEC = Spec.from_dict({"name": "heart-unet", "input": {"size": [32, 32], "channels": 1},
                       "classes": ["background", "ventricle", "atrium"]})


def _segment(source_uri, count=None):
    """Results of the source's frames with a two-class mask: a box of class 1 and one of class 2."""
    source = open_source(source_uri)
    source.open()
    results = []
    try:
        while count is None or len(results) < count:
            frame = source.read(timeout=1.0)
            if frame is None:
                break
            height, width = frame.image.shape[:2]
            mask = np.zeros((height, width), np.uint8)
            mask[4:20, 4:20] = 1
            mask[height - 12:height - 2, width - 12:width - 2] = 2
            results.append(Result(frame=frame, roi=(0, 0, width, height), spec=SPEC, mask=mask))
    finally:
        source.close()
    return results


def _write(out, results, query=""):
    sink = open_sink("dicom-seg://%s%s" % (out, query))
    sink.open(SinkContext(spec=SPEC, model="heart-bundle", precision="int8"))
    for result in results:
        sink.write(result)
    sink.close()
    return sink


def _dciodvfy(path):
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian's dicom3tools) is not installed; setup.sh installs it")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert not errors, "\n".join(errors)


def _check_seg(path, source_path, frame_number, multi_frame):
    seg = hd.seg.segread(str(path))
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
    assert referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    sources = [item for group in seg.PerFrameFunctionalGroupsSequence for derivation in
               group.DerivationImageSequence for item in derivation.SourceImageSequence]
    assert {item.ReferencedSOPInstanceUID for item in sources} == {source.SOPInstanceUID}
    if multi_frame:
        assert {int(item.ReferencedFrameNumber) for item in sources} == {frame_number}
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["ventricle", "atrium"]
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "heart-bundle"
    assert algorithm.AlgorithmVersion == "jetseg %s" % __version__
    assert "precision=int8" in str(algorithm.AlgorithmParameters)
    assert int(seg.NumberOfFrames) == 2  # one frame per segment of the one source frame
    labels = seg.get_pixels_by_source_frame(source.SOPInstanceUID, [frame_number] if multi_frame else None,
                                            combine_segments=True) if multi_frame else None
    return seg, labels


def test_cine_gives_one_seg_per_frame_referencing_it(tmp_path):
    cine = write_cine(tmp_path / "cine.dcm", np.random.RandomState(0).randint(0, 255, (4, 48, 64)),
                      spacing_mm=[0.3, 0.3])
    results = _segment(str(cine))
    sink = _write(tmp_path / "seg", results)
    assert sink.written == 4
    files = sorted((tmp_path / "seg").glob("*.dcm"))
    assert [f.name for f in files] == ["%06d.dcm" % i for i in range(4)]
    series = set()
    for number, path in enumerate(files, start=1):
        seg, labels = _check_seg(path, str(cine), number, multi_frame=True)
        np.testing.assert_array_equal(labels[0], results[number - 1].mask)
        assert seg.InstanceNumber == number
        assert seg.PatientID == "RT-0001"  # the source's patient, not another one
        series.add(seg.SeriesInstanceUID)
    assert len(series) == 1
    assert not list((tmp_path / "seg").glob(".*"))  # no temporary file left
    _dciodvfy(files[0])


def test_real_sonosite_cine(tmp_path):
    path = real_screen_path("examples_ybr_color.dcm")
    results = _segment(path, count=3)
    _write(tmp_path / "seg", results)
    files = sorted((tmp_path / "seg").glob("*.dcm"))
    assert len(files) == 3
    for number, seg_path in enumerate(files, start=1):
        _, labels = _check_seg(seg_path, path, number, multi_frame=True)
        np.testing.assert_array_equal(labels[0], results[number - 1].mask)
    _dciodvfy(files[-1])


def test_single_frame_source(tmp_path):
    from tests.fixtures.dicom import write_dicom

    image = write_dicom(tmp_path / "one.dcm", np.full((40, 40), 9, np.uint8))
    _write(tmp_path / "seg", _segment(str(image)))
    (seg_path,) = (tmp_path / "seg").glob("*.dcm")
    seg, labels = _check_seg(seg_path, str(image), 1, multi_frame=True)  # a one-frame ultrasound multi-frame
    assert labels.shape[0] == 1
    _dciodvfy(seg_path)


def test_a_source_without_uids_is_refused(tmp_path):
    from tests.fixtures.dicom import write_dicom

    image = write_dicom(tmp_path / "one.dcm", np.full((40, 40), 9, np.uint8), StudyInstanceUID="")
    with pytest.raises(SinkError, match="has no StudyInstanceUID; a SEG joins its source's study"):
        _write(tmp_path / "seg", _segment(str(image)))


def test_plain_frames_need_a_dicom_source_or_capture(tmp_path):
    sink = open_sink("dicom-seg://%s" % (tmp_path / "seg"))
    sink.open(SinkContext(spec=SPEC))
    with pytest.raises(SinkError, match=r"not from a DICOM source: a SEG must reference .*\?capture=1"):
        sink.write(make_result(0, SPEC))
    sink.close()
    assert not list((tmp_path / "seg").iterdir())


def test_capture_writes_a_secondary_capture_of_the_overlay(tmp_path):
    result = make_result(3, SPEC)
    _write(tmp_path / "sc", [result], "?capture=1")
    (path,) = (tmp_path / "sc").glob("*.dcm")
    ds = pydicom.dcmread(str(path))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert ds.PhotometricInterpretation == "RGB"
    np.testing.assert_array_equal(ds.pixel_array, result.overlay()[..., ::-1])
    assert not str(ds.get("PatientName", "")) and not str(ds.get("PatientID", ""))
    _dciodvfy(path)


def test_nothing_is_written_before_a_frame_and_bad_options_are_named(tmp_path):
    with pytest.raises(SinkError, match="capture"):
        open_sink("dicom-seg://%s?capture=maybe" % tmp_path)
    with pytest.raises(SinkError, match="needs a directory"):
        open_sink("dicom-seg://")
