"""The repository's shape: small modules (no shipped source file over 450 lines)."""
from __future__ import annotations

from tests.fixtures.paths import REPO

PARTS = ("jetseg", "jetson", "calibration", "benchmarks", "models", "training", "tools")
MAX_LINES = 450


def test_no_shipped_source_file_is_over_450_lines():
    long = {}
    for part in PARTS:
        for path in (REPO / part).rglob("*.py"):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > MAX_LINES:
                long[str(path.relative_to(REPO))] = lines
    assert not long, "split these modules (at most %d lines each): %s" % (MAX_LINES, long)
