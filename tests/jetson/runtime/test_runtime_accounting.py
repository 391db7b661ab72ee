"""Accounting of a live source: frames captured and dropped, real reconnections, documented state names."""
from __future__ import annotations

import re
from pathlib import Path

from jetseg.jetson.frames.metrics import SOURCE_STATES, Metrics
from jetseg.jetson.pipeline.reader import SourceReader
from tests.fixtures.streams import ListSource, LossyLiveSource

ROOT = Path(__file__).resolve().parents[3]


def _drain(reader: SourceReader, reads: int) -> int:
    return sum(1 for _ in range(reads) if reader.read() is not None)


def test_captured_dropped_and_reconnects_of_a_source_that_drops_and_comes_back() -> None:
    source = LossyLiveSource(up=4, lost=3, cycles=3)
    metrics = Metrics()
    reader = SourceReader(source, stall_timeout_s=60.0, metrics=metrics)
    reader.open()
    delivered = _drain(reader, len(source.script))
    assert delivered == 12 and source.reconnects == 2 and source.failures == 2
    assert metrics.captured == source.captured == 24
    assert metrics.dropped["source"] == source.dropped == 12
    assert metrics.reconnects == 2  # two real reconnections, not reads while lost
    stats = metrics.stats()
    assert stats["source"] == {"captured": 24, "dropped": 12, "reconnects": 2}
    text = metrics.exposition()[0].decode()
    assert "jetseg_source_frames_captured_total 24.0" in text
    assert 'jetseg_frames_dropped_total{where="source"} 12.0' in text
    assert "jetseg_source_reconnects_total 2.0" in text


def test_a_lost_source_that_never_comes_back_counts_no_reconnection() -> None:
    source = LossyLiveSource(up=2, lost=50, cycles=2)
    metrics = Metrics()
    reader = SourceReader(source, stall_timeout_s=60.0, metrics=metrics)
    reader.open()
    _drain(reader, 20)
    assert reader.state == "reconnecting" and metrics.source_state == "reconnecting"
    assert metrics.reconnects == 0 and metrics.captured == 4


def test_finite_source_captured_is_delivered() -> None:
    import numpy as np

    metrics = Metrics()
    reader = SourceReader(ListSource([np.zeros((8, 8), np.uint8)] * 5), metrics=metrics)
    reader.open()
    _drain(reader, 10)
    assert metrics.captured == 5 and metrics.dropped["source"] == 0 and reader.state == "ended"


def _documented_states() -> list:
    text = (ROOT / "docs" / "runtime.md").read_text(encoding="utf-8")
    match = re.search(r"\| `jetseg_source_state\{jetseg_source_state=\.\.\.\}` \| ([a-z, ]+) \|", text)
    assert match, "docs/runtime.md lists the source states in the /metrics table"
    return [s.strip() for s in match.group(1).split(",")]


def _emitted_states() -> set:
    """Every state literal the runtime passes to SourceReader._set_state(...) or Metrics.set_source_state(...)."""
    found = set()
    for path in (ROOT / "jetson").rglob("*.py"):
        for call in re.findall(r"(?:_set_state|set_source_state)\(([^)]*)\)", path.read_text(encoding="utf-8")):
            found.update(re.findall(r"\"([a-z_]+)\"", call))
    return found


def test_metrics_state_names_match_the_docs() -> None:
    documented = _documented_states()
    assert documented == list(SOURCE_STATES)
    emitted = _emitted_states()
    assert {"running", "reconnecting", "ended", "stopped"} <= emitted <= set(SOURCE_STATES), emitted
    text = Metrics().exposition()[0].decode()
    exposed = re.findall(r'jetseg_source_state\{jetseg_source_state="([a-z_]+)"\}', text)
    assert sorted(exposed) == sorted(documented)
