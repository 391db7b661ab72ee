"""null:// and masks:// driven directly with hand-built Results; option parsing shared by all sinks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jetseg.errors import SinkError
from jetseg.jetson.sinks import SinkContext, open_sink
from jetseg.jetson.sinks.masks import MaskSink, read_mask
from jetseg.jetson.sinks.null import NullSink
from tests.fixtures.media import make_result
from tests.fixtures.specs import overlay_spec as make_spec


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_null_sink_counts(spec):
    sink = open_sink("null://")
    assert isinstance(sink, NullSink)
    sink.open(SinkContext(spec=spec))
    for i in range(4):
        sink.write(make_result(i, spec))
    sink.close()
    assert sink.written == 4
    assert sink.last_index == 3


def test_masks_round_trip(tmp_path, spec):
    out = tmp_path / "run"
    sink = open_sink("masks://%s" % out)
    assert isinstance(sink, MaskSink) and sink.blocking_ok
    sink.open(SinkContext(spec=spec))
    results = [make_result(i, spec) for i in range(5)]
    for result in results:
        sink.write(result)
        # each line is flushed as it is written, before close()
        assert len(_lines(out / "frames.jsonl")) == result.index + 1
    sink.close()
    assert sink.written == 5
    lines = _lines(out / "frames.jsonl")
    assert [ln["frame"] for ln in lines] == [0, 1, 2, 3, 4]
    for line, result in zip(lines, results):
        assert line["areas_px"] == {"lesion": int(result.mask.sum())}
        assert line["areas_mm2"] == {"lesion": round(int(result.mask.sum()) * 0.25, 3)}
        assert line["roi"] == list(result.roi)
        assert line["mask"] == "masks/%06d.png" % result.index
        assert isinstance(line["time"], float)
        mask = read_mask(out / line["mask"])
        assert mask.dtype == np.uint8 and mask.shape == result.mask.shape
        np.testing.assert_array_equal(mask, result.mask)
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["%06d.png" % i for i in range(5)]


def test_masks_every_scale_and_append(tmp_path, spec):
    out = tmp_path / "run"
    sink = open_sink("masks://%s?every=2&scale=1" % out)
    sink.open(SinkContext(spec=spec))
    for i in range(5):
        sink.write(make_result(i, spec))
    sink.close()
    assert [ln["frame"] for ln in _lines(out / "frames.jsonl")] == [0, 2, 4]
    visible = read_mask(out / "masks" / "000002.png")
    assert set(np.unique(visible).tolist()) == {0, 255}
    np.testing.assert_array_equal(visible > 0, make_result(2, spec).mask > 0)
    # a second run into the same directory appends, never truncates
    again = open_sink("masks://%s" % out, png=False)
    again.open(SinkContext(spec=spec))
    again.write(make_result(7, spec))
    again.close()
    assert [ln["frame"] for ln in _lines(out / "frames.jsonl")] == [0, 2, 4, 7]
    assert not (out / "masks" / "000007.png").exists()


def test_masks_json_only_without_spacing(tmp_path):
    spec = make_spec(spacing=False)
    sink = open_sink("masks://%s?png=0" % (tmp_path / "j"))
    sink.open(SinkContext(spec=spec))
    sink.write(make_result(0, spec))
    sink.close()
    (line,) = _lines(tmp_path / "j" / "frames.jsonl")
    assert "areas_mm2" not in line and "mask" not in line
    assert not (tmp_path / "j" / "masks").exists()


def test_masks_errors(tmp_path, spec):
    with pytest.raises(SinkError, match=r"unknown masks:// sink option 'evry' \(did you mean 'every'\?\); "
                                        r"known options: every, png, scale"):
        open_sink("masks://%s?evry=2" % tmp_path)
    with pytest.raises(SinkError, match=r"masks:// sink option every=0: expected an integer >= 1"):
        open_sink("masks://%s?every=0" % tmp_path)
    with pytest.raises(SinkError, match=r"masks:// sink option png='maybe': expected 1/0 \(true/false\)"):
        open_sink("masks://%s?png=maybe" % tmp_path)
    with pytest.raises(SinkError, match=r"masks:// needs a directory"):
        open_sink("masks://")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sink = open_sink("masks://%s" % (blocker / "sub"))
    with pytest.raises(SinkError, match=r"cannot write masks to .*file/sub: .*; choose a writable directory"):
        sink.open(SinkContext(spec=spec))
    with pytest.raises(SinkError, match=r"masks:// sink is not open; write\(\) came before open\(\) or after close\(\)"):
        sink.write(make_result(0, spec))


def test_unknown_sink_scheme_suggests():
    with pytest.raises(Exception, match=r"unknown sink 'mask'; did you mean 'masks'\?"):
        open_sink("mask://x")
