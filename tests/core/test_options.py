"""The one option reader of runners, sources and sinks: conversions, messages, each family's error class."""
from __future__ import annotations

import pytest

from jetseg.errors import JetsegError, RunnerError, SinkError, SourceError
from jetseg.options import OptionReader, parse_assignments, unknown_message
from tests.fixtures.paths import REPO

BUNDLE = REPO / "models" / "bundles" / "ultrasound-unet"


def reader(**options):
    return OptionReader("demo source", options, SourceError)


@pytest.mark.parametrize("given, expected", [
    ("1", True), ("yes", True), ("ON", True), (True, True), ("0", False), ("off", False), ("", False), (False, False),
])
def test_flag_accepts_query_strings_and_bools(given, expected):
    assert reader(loop=given).flag("loop", not expected) is expected


def test_defaults_and_none_mean_not_set():
    opts = reader(width=None)
    assert opts.integer("width", 640) == 640 and opts.number("fps", None) is None
    assert opts.flag("roi", None) is None and opts.text("title", "x") == "x" and opts.mapping("extra") == {}
    opts.done()


def test_conversions_from_strings_and_values():
    opts = reader(frames="12", seed=3, fps="2.5", codec="H265", title=7, extra={"a": 1})
    assert opts.integer("frames", None, minimum=1) == 12 and opts.integer("seed", 0) == 3
    assert opts.number("fps", 30.0, positive=True) == 2.5
    assert opts.choice("codec", ("h264", "h265"), "h264") == "h265"
    assert opts.text("title", None) == "7" and opts.mapping("extra") == {"a": 1}
    opts.done()


@pytest.mark.parametrize("options, read, message", [
    ({"loop": "maybe"}, lambda o: o.flag("loop", False), "demo source option loop='maybe': expected 1/0 (true/false)"),
    ({"frames": "x"}, lambda o: o.integer("frames", 1), "demo source option frames='x': expected an integer"),
    ({"frames": True}, lambda o: o.integer("frames", 1), "demo source option frames=True: expected an integer"),
    ({"frames": 2.5}, lambda o: o.integer("frames", 1), "demo source option frames=2.5: expected an integer"),
    ({"frames": "0"}, lambda o: o.integer("frames", 1, minimum=1), "demo source option frames=0: expected an "
                                                                    "integer >= 1"),
    ({"q": "101"}, lambda o: o.integer("q", 80, minimum=1, maximum=100), "demo source option q=101: expected an "
                                                                          "integer from 1 to 100"),
    ({"fps": "fast"}, lambda o: o.number("fps", 1.0), "demo source option fps='fast': expected a number"),
    ({"fps": "0"}, lambda o: o.number("fps", 1.0, positive=True), "demo source option fps=0.0: expected a number > 0"),
    ({"gain": -2}, lambda o: o.number("gain", 0.0, minimum=-1), "demo source option gain=-2.0: expected a number >= -1"),
    ({"codec": "vp9"}, lambda o: o.choice("codec", ("h264", "h265"), "h264"), "demo source option codec='vp9': "
                                                                               "expected one of h264, h265"),
    ({"extra": "a=1"}, lambda o: o.mapping("extra"), "demo source option extra='a=1': expected a mapping"),
])
def test_bad_values_name_option_value_and_expectation(options, read, message):
    with pytest.raises(SourceError) as err:
        read(reader(**options))
    assert str(err.value).startswith(message)


def test_unknown_option_suggests_the_closest_known_name():
    opts = reader(realtim="1", zzz="2")
    opts.flag("realtime", False)
    opts.flag("loop", False)
    with pytest.raises(SourceError) as err:
        opts.done()
    assert str(err.value) == "unknown demo source option 'realtim' (did you mean 'realtime'?); known options: loop, realtime"
    with pytest.raises(SourceError, match="unknown demo source option 'x'; known options: none$"):
        reader(x=1).done()


def test_fail_builds_the_component_error():
    err = OptionReader("trt backend", {}, RunnerError).fail("dla_core", "x", "0 or 1")
    assert isinstance(err, RunnerError) and str(err) == "trt backend option dla_core='x': expected 0 or 1"
    assert unknown_message("field", "colour", ["color", "size"]) == \
        "unknown field 'colour' (did you mean 'color'?); known fields: color, size"


def test_parse_assignments_reads_yaml_scalars():
    assert parse_assignments(["threads=2", "provider=cuda", "flag=true", "x=1.5", "e="], "--backend-option") == {
        "threads": 2, "provider": "cuda", "flag": True, "x": 1.5, "e": ""}
    with pytest.raises(JetsegError, match="--source-option 'fps': expected key=value, e.g. --source-option threads=2"):
        parse_assignments(["fps"], "--source-option")


# ---------------------------------------------------------------------- each family, through its registry
def test_source_options_raise_source_error():
    from jetseg.jetson.sources import open_source

    with pytest.raises(SourceError, match=r"^unknown synthetic source option 'seeed' \(did you mean 'seed'\?\)"):
        open_source("synthetic://ultrasound?seeed=1")
    with pytest.raises(SourceError, match=r"^synthetic source option width=10: expected an integer >= 64$"):
        open_source("synthetic://ultrasound", width=10)


def test_sink_options_raise_sink_error(tmp_path):
    from jetseg.jetson.sinks import open_sink

    with pytest.raises(SinkError, match=r"^unknown null:// sink option 'every'; known options: none$"):
        open_sink("null://?every=2")
    with pytest.raises(SinkError, match=r"^http:// sink option quality=0: expected an integer from 1 to 100$"):
        open_sink("http://127.0.0.1:0", quality="0")
    with pytest.raises(SinkError, match=r"^unknown masks:// sink option 'pgn' \(did you mean 'png'\?\)"):
        open_sink("masks://%s?pgn=0" % tmp_path)


def test_runner_options_raise_runner_error():
    from jetseg.jetson.runners import open_runner

    with pytest.raises(RunnerError, match=r"^unknown onnxrt backend option 'thread' \(did you mean 'threads'\?\); "
                                          r"known options: provider, provider_options, threads$"):
        open_runner("onnxrt", BUNDLE, thread=2)
    with pytest.raises(RunnerError, match=r"^onnxrt backend option provider='gpu': expected one of cpu, cuda, tensorrt$"):
        open_runner("onnxrt", BUNDLE, provider="gpu")
    with pytest.raises(RunnerError, match=r"^onnxrt backend option batch_size=0: expected an integer >= 1$"):
        open_runner("onnxrt", BUNDLE, batch_size=0)
    runner = open_runner("onnxrt", BUNDLE, threads="1", provider="CPU")
    assert runner.threads == 1 and runner.provider == "cpu"
