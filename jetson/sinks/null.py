"""``null://``: discards every result and counts them (benchmarks, dry runs)."""
from __future__ import annotations

from typing import Any, Optional

from jetseg.jetson.sinks.base import Sink
from jetseg.jetson.sinks.options import take_options


class NullSink(Sink):
    """Counts results (``written``) and remembers the index of the last one (``last_index``)."""

    def __init__(self, uri: str = "", **options: Any) -> None:
        super().__init__(uri, **options)
        take_options("null", options, {})
        self.last_index: Optional[int] = None

    def write(self, result: Any) -> None:
        self.written += 1
        self.last_index = getattr(result, "index", None)
