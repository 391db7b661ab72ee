"""``sources:`` and ``batch:`` in the daemon config: named streams with their own ROI, post-processing, sinks."""
from __future__ import annotations

import pytest

from jetseg.jetson.daemon.config import ConfigError, DaemonConfig, SinkConfig


def test_a_single_source_is_one_stream_named_main_with_the_top_level_sections():
    config = DaemonConfig.from_dict({"source": "synthetic://endoscopy", "roi": "auto", "sinks": ["masks://out"]})
    (stream,) = config.streams()
    assert stream.name == "main" and stream.uri == "synthetic://endoscopy"
    assert stream.roi.mode == "auto" and stream.sinks == [SinkConfig("masks://out")]
    assert config.batch.size is None and config.batch.max_delay_ms is None


def test_sources_as_a_list_and_as_a_mapping():
    listed = DaemonConfig.from_dict({
        "roi": "none", "postprocess": {"smoothing": 0.2},
        "sources": [{"name": "left", "uri": "synthetic://ultrasound", "realtime": True, "fps": 30,
                     "sinks": ["masks://left"], "roi": [1, 2, 30, 40]},
                    {"name": "right", "uri": "synthetic://endoscopy", "postprocess": {"min_area_px": 5}}],
        "batch": {"size": 2, "max_delay_ms": 4}})
    left, right = listed.streams()
    assert (left.name, left.fps, left.roi.mode, left.postprocess.smoothing) == ("left", 30.0, [1, 2, 30, 40], 0.2)
    assert left.sinks == [SinkConfig("masks://left")]
    assert (right.roi.mode, right.postprocess.min_area_px, right.sinks) == ("none", 5, [SinkConfig("null://")])
    assert listed.batch.size == 2 and listed.batch.max_delay_ms == 4.0
    mapped = DaemonConfig.from_dict({"sources": {"a": "synthetic://ultrasound", "b": {"uri": "x.mp4"}}})
    assert [(s.name, s.uri) for s in mapped.streams()] == [("a", "synthetic://ultrasound"), ("b", "x.mp4")]


@pytest.mark.parametrize("data, message", [
    ({"sources": [{"name": "a b", "uri": "x"}]}, "'sources[].name' is 'a b'; expected a stream name"),
    ({"sources": [{"name": "a", "uri": "x"}, {"name": "a", "uri": "y"}]}, "expected a name no other stream has"),
    ({"sources": [{"uri": "x"}]}, "'sources[0]' is {'uri': 'x'}; expected a mapping with a name and a uri"),
    ({"sources": [{"name": "a", "uri": "x", "fps": -1}]}, "'sources[a].fps' is -1; expected a positive number"),
    ({"sources": [{"name": "a", "uri": "x", "roi": "middle"}]}, "'sources[a].roi.mode' is 'middle'"),
    ({"sources": [{"name": "a", "uri": "x", "sinks": ["nowhere"]}]}, "'sources[a].sinks[0].uri' is 'nowhere'"),
    ({"sources": [{"name": "a", "uri": "x", "colour": 1}]}, "sources[0].colour"),
    ({"sources": []}, "'sources' is []; expected a list of streams"),
    ({"source": "y", "sources": {"a": "x"}}, "'source' is 'y'; expected no 'source:' next to 'sources:'"),
    ({"sinks": ["masks://o"], "sources": {"a": "x"}}, "expected no top-level 'sinks:' next to 'sources:'"),
    ({"batch": {"size": 0}}, "'batch.size' is 0; expected an integer 1..64 or null"),
    ({"batch": {"max_delay_ms": -1}}, "'batch.max_delay_ms' is -1; expected a number of milliseconds"),
])
def test_errors_name_the_stream_field_and_the_expected_value(data, message):
    with pytest.raises(ConfigError) as info:
        DaemonConfig.from_dict(data)
    assert message in str(info.value)
