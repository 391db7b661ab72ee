"""``jetseg bench --streams``: N paced streams in one daemon against N daemons, measured in processes."""
from __future__ import annotations

import pytest

from jetseg.benchmarks.streams import measure_streams, streams_markdown
from jetseg.errors import JetsegError
from tests.fixtures.bundles import threshold_bundle


def test_one_daemon_and_separate_daemons_are_both_measured(tmp_path):
    bundle = threshold_bundle(tmp_path / "tiny")
    result = measure_streams(str(bundle), 2, options={"threads": 1}, fps=20.0, duration_s=1.5)
    one, separate = result["one"], result["separate"]
    assert (one["processes"], separate["processes"]) == (1, 2)
    for side in (one, separate):
        assert set(side["streams"]) == {"s0", "s1"}
        assert side["frames"] > 0 and side["cpu_s"] > 0 and side["rss_mb"] > 0
        assert side["streams"]["s0"]["capture_to_mask_ms"]["p99"] > 0
    assert one["batcher"]["frames"] >= one["frames"]
    assert result["ratios"]["rss"] == pytest.approx(one["rss_mb"] / separate["rss_mb"], rel=1e-2)
    assert len(result["load"]["before"]) == 3
    text = streams_markdown(result)
    assert "one daemon, batched" in text and "separate daemons" in text and "Goals:" in text


def test_a_bad_stream_count_is_one_line():
    with pytest.raises(JetsegError, match="--streams 0: expected a number of streams >= 1"):
        measure_streams("unused", 0)
