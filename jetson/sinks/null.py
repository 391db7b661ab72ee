"""``null://``: discards every result and counts them (benchmarks, dry runs)."""
from __future__ import annotations

from typing import Any, Optional

from jetseg.jetson.sinks.base import Sink


class NullSink(Sink):
    """Counts results (``written``) and remembers the index of the last one (``last_index``)."""

    kind = "null"

    def __init__(self, uri: str = "", **options: Any) -> None:
        super().__init__(uri)
        self.read_options(options).done()
        self.last_index: Optional[int] = None

    def _write(self, result: Any) -> None:
        self.written += 1
        self.last_index = getattr(result, "index", None)
