"""``dicom-seg://DIR``: results as DICOM Segmentation objects (highdicom), for a PACS.

One file per processed frame: ``DIR/<frame index, 6 digits>.dcm``, a single-frame binary SEG whose segments
are the spec's classes (background excluded; segment labels are the class names). It references its
source the way a PACS links them: the source's Study Instance UID (the SEG joins the source's study), the
source's Series/SOP Instance UIDs in the Referenced Series Sequence and the Source Image Sequence, and, for
a multi-frame source (a cine), the Referenced Frame Number. All SEGs of one source instance share one new
SEG series, so a cine's frames appear together. (A cine as one multi-frame SEG is what PACS users expect,
but highdicom builds multi-frame SEGs only for sources with a Frame of Reference, which ultrasound cines
do not have: highdicom issue 284.)

The algorithm is identified in every segment: name = the bundle's name, version = jetseg's version,
parameter ``precision``. Patient and study attributes are those highdicom copies from the source header (no
patient data beyond what the source carried); the source header is read again without its pixels.

A frame that does not come from a DICOM source (no ``Frame.meta["dicom"]``) cannot be referenced: the
sink refuses it, unless ``capture=1``, which writes a Secondary Capture of the overlay instead (a new study
with no patient attributes). Every file is written under a temporary name and renamed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from jetseg import __version__
from jetseg.errors import SinkError
from jetseg.jetson.frames.result import Result
from jetseg.jetson.sinks.base import Sink, SinkContext
from jetseg.optional import require

#: Single-frame stand-ins for a multi-frame source's SOP class (ultrasound; anything else).
_US_IMAGE, _SC_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.7"

#: Classic (not enhanced) multi-frame image classes: US, the multi-frame Secondary Captures, XA, RF, NM.
_CLASSIC_MULTI_FRAME = frozenset(("1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.7.1",
                                  "1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3",
                                  "1.2.840.10008.5.1.4.1.1.7.4", "1.2.840.10008.5.1.4.1.1.12.1",
                                  "1.2.840.10008.5.1.4.1.1.12.2", "1.2.840.10008.5.1.4.1.1.20"))

#: Type 2 patient and study attributes the SEG copies from its source (empty when the source has none).
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


class DicomSegSink(Sink):
    """Writes ``DIR/<index>.dcm``: a DICOM SEG per frame of a DICOM source (or a Secondary Capture)."""

    blocking_ok = True

    kind = "dicom-seg"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.capture = opts.flag("capture", False)
        opts.done()
        if not uri:
            raise SinkError("dicom-seg:// needs a directory, for example dicom-seg://out/seg")
        self.directory = Path(uri).expanduser()
        self._hd: Any = None
        self._pydicom: Any = None
        self._headers: Dict[str, Any] = {}  # source SOP Instance UID -> header without pixels
        self._series: Dict[str, str] = {}  # source SOP Instance UID (or "" for captures) -> new series UID
        self._capture_study = ""

    @property
    def target(self) -> Optional[str]:
        return str(self.directory.resolve())

    def _open(self, context: SinkContext) -> None:
        if context.spec.task != "segmentation":
            raise SinkError("dicom-seg://%s writes segmentations, and this model's spec.task is %s (no mask); use "
                            "masks://DIR?png=0 for per-frame JSON lines, or file://out.mp4 to record the pictures"
                            % (self.uri, context.spec.task))
        self._pydicom = require("pydicom", "writing DICOM SEG")
        self._hd = require("highdicom", "writing DICOM SEG")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError("cannot write DICOM SEG to %s: %s; choose a writable directory"
                            % (self.directory, exc.strerror or exc)) from None

    def _write(self, result: Result) -> None:
        refs = result.frame.meta.get("dicom") if result.frame.meta else None
        if refs:
            dataset = self._segmentation(result, refs)
        elif self.capture:
            dataset = self._secondary_capture(result)
        else:
            raise SinkError("dicom-seg:// received frame %d from %r, which is not from a DICOM source: a SEG "
                            "must reference its source image's Study/Series/SOP Instance UIDs; use a dicom:// "
                            "source, or add ?capture=1 to store Secondary Captures of the overlay"
                            % (result.index, result.frame.source_id))
        self._save(dataset, self.directory / ("%06d.dcm" % result.index))
        self.written += 1

    # ------------------------------------------------------------------ SEG
    def _algorithm(self) -> Any:
        from pydicom.sr.codedict import codes

        context = self.context
        assert context is not None, "set by open()"
        return self._hd.AlgorithmIdentificationSequence(
            name=context.model or context.spec.name, family=codes.cid7162.ArtificialIntelligence,
            version="jetseg %s" % __version__, parameters={"precision": context.precision or "unknown"})

    def _segments(self, names: List[str]) -> List[Any]:
        from pydicom.sr.codedict import codes

        algorithm = self._algorithm()
        return [self._hd.seg.SegmentDescription(
            segment_number=number, segment_label=name, segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue, algorithm_type="AUTOMATIC",
            algorithm_identification=algorithm) for number, name in enumerate(names, start=1)]

    def _source_header(self, refs: Dict[str, Any]) -> Any:
        """The source's header for one frame (pixels not read), checked against the frame's references."""
        uid = str(refs.get("sop_instance_uid", ""))
        header = self._headers.get(uid)
        if header is None:
            path = str(refs.get("path", ""))
            try:
                header = self._pydicom.dcmread(path, stop_before_pixels=True)
            except (OSError, ValueError) as exc:
                raise SinkError("cannot re-read the DICOM source header %s for its SEG: %s"
                                % (Path(path).name, exc)) from None
            if str(header.get("SOPInstanceUID", "")) != uid:
                raise SinkError("DICOM source %s changed while it was read (SOP Instance UID %s; expected %s)"
                                % (Path(path).name, header.get("SOPInstanceUID"), uid))
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID"):
                if not str(header.get(keyword, "")):
                    raise SinkError("DICOM source %s has no %s; a SEG joins its source's study and series, so it "
                                    "needs a source with Study/Series/SOP UIDs" % (Path(path).name, keyword))
            if "FrameOfReferenceUID" not in header and "PixelSpacing" in header:
                del header.PixelSpacing  # without SliceThickness highdicom's reader refuses the Pixel Measures
            if _classic_multi_frame(refs):  # highdicom reads a classic multi-frame class as enhanced
                header.SOPClassUID = _US_IMAGE if header.get("Modality") == "US" else _SC_IMAGE
                for keyword in ("NumberOfFrames", "FrameIncrementPointer"):
                    if keyword in header:
                        delattr(header, keyword)
            for keyword in _TYPE2:  # present in every valid source; empty (never invented) where one lacks them
                if keyword not in header:
                    setattr(header, keyword, "")
            self._headers = {uid: header}  # one source instance at a time
        return header

    def _segmentation(self, result: Result, refs: Dict[str, Any]) -> Any:
        header = self._source_header(refs)
        spec = result.spec
        names = list(spec.classes[1:])
        source_uid = str(refs["sop_instance_uid"])
        series = self._series.setdefault(source_uid, self._pydicom.uid.generate_uid())
        frame_number = int(refs.get("frame_number", 1))
        mask = np.ascontiguousarray(result.mask, dtype=np.uint8)
        if mask.shape != (int(header.Rows), int(header.Columns)):
            raise SinkError("frame %d: mask of %dx%d for a %dx%d DICOM source; expected the source's size"
                            % (result.index, mask.shape[1], mask.shape[0], int(header.Columns), int(header.Rows)))
        try:
            seg = self._hd.seg.Segmentation(
                source_images=[header], pixel_array=mask, segmentation_type="BINARY",
                segment_descriptions=self._segments(names), series_instance_uid=series,
                series_number=900, sop_instance_uid=self._pydicom.uid.generate_uid(),
                instance_number=frame_number, manufacturer="jetseg",
                manufacturer_model_name=self.context.model if self.context and self.context.model else spec.name,
                software_versions="jetseg %s" % __version__, device_serial_number="none",
                series_description="jetseg segmentation", omit_empty_frames=False)
        except ValueError as exc:
            raise SinkError("cannot make a DICOM SEG of frame %d: %s" % (result.index, exc)) from None
        if "FrameOfReferenceUID" not in seg:  # type 2C without a frame of reference; highdicom leaves it out
            seg.PatientOrientation = header.get("PatientOrientation", "")
        if _classic_multi_frame(refs):
            _reference_frame(seg, source_uid, str(refs["sop_class_uid"]), frame_number)
        return seg

    # ------------------------------------------------------------------ Secondary Capture
    def _secondary_capture(self, result: Result) -> Any:
        uid = self._pydicom.uid.generate_uid
        if not self._capture_study:
            self._capture_study = uid()
        series = self._series.setdefault("", uid())
        overlay = np.ascontiguousarray(result.overlay()[..., ::-1])  # BGR -> RGB
        capture = self._hd.sc.SCImage(
            pixel_array=overlay, photometric_interpretation="RGB", bits_allocated=8, coordinate_system="PATIENT",
            study_instance_uid=self._capture_study, series_instance_uid=series, series_number=901,
            sop_instance_uid=uid(), instance_number=result.index + 1, manufacturer="jetseg",
            patient_orientation=("L", "F"), series_description="jetseg overlay")
        capture.PatientOrientation = ""  # type 2, unknown for a screen (highdicom wants a value to accept PATIENT)
        capture.Laterality = ""  # type 2C, unknown
        return capture

    # ------------------------------------------------------------------ files
    def _save(self, dataset: Any, path: Path) -> None:
        tmp = path.with_name("." + path.name + ".tmp")
        try:
            if _pydicom3(self._pydicom):
                dataset.save_as(str(tmp), enforce_file_format=True)
            else:
                dataset.save_as(str(tmp), write_like_original=False)
            os.replace(str(tmp), str(path))
        except OSError as exc:
            raise SinkError("cannot write %s: %s" % (path, exc.strerror or exc)) from None
        finally:
            if tmp.exists():
                tmp.unlink()


def _classic_multi_frame(refs: Dict[str, Any]) -> bool:
    return str(refs.get("sop_class_uid", "")) in _CLASSIC_MULTI_FRAME


def _pydicom3(pydicom: Any) -> bool:
    return int(str(pydicom.__version__).split(".")[0]) >= 3


def _reference_frame(seg: Any, source_uid: str, source_class: str, frame_number: int) -> None:
    """Point the SEG's references to frame ``frame_number`` of the multi-frame source: the SEG was built from
    a single-frame stand-in of its header, so each reference gets the real SOP Class UID, and each Source
    Image Sequence item the Referenced Frame Number."""
    found = 0
    for keyword, item in _items(seg):
        if str(item.get("ReferencedSOPInstanceUID", "")) == source_uid:
            item.ReferencedSOPClassUID = source_class
            if keyword == "SourceImageSequence":
                item.ReferencedFrameNumber = frame_number
                found += 1
    if not found:
        raise SinkError("the DICOM SEG has no Source Image Sequence item to reference frame %d in; expected "
                        "highdicom to write one" % frame_number)


def _items(dataset: Any) -> Iterator[Tuple[str, Any]]:
    """Every ``(sequence keyword, item)`` in ``dataset``, nested ones included."""
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                yield element.keyword, item
                yield from _items(item)
