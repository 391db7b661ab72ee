"""What :class:`~jetseg.jetson.frames.metrics.Metrics` knows about a frozen input (a source that repeats the
same picture; detected by :mod:`jetseg.jetson.pipeline.frozen` in the source reader)."""
from __future__ import annotations

import time
from typing import Any, List, Optional


class FrozenState:
    """Mixed into Metrics: ``set_frozen()`` from the reader, ``frozen_for()`` and the health reason."""

    input_frozen_s: Optional[float] = None  # seconds of the same picture as of _frozen_at (None: it changes)
    _frozen_at = 0.0
    source_state: str
    stale_after_s: float

    def register_frozen(self, prom: Any, registry: Any) -> None:
        prom.Gauge("jetseg_input_frozen_seconds", "Seconds the source has repeated the same picture (0: it "
                   "changes)", registry=registry).set_function(lambda: self.frozen_for() or 0.0)

    def set_frozen(self, held_s: Optional[float]) -> None:
        """The source has repeated the same picture for ``held_s`` seconds (frozen input), or None: it changes."""
        self.input_frozen_s, self._frozen_at = held_s, time.monotonic()

    def frozen_for(self) -> Optional[float]:
        """Seconds the input has shown the same picture while frames still arrive, or None (live, or stalled)."""
        held, since = self.input_frozen_s, time.monotonic() - self._frozen_at
        if held is None or self.source_state != "running" or since > self.stale_after_s:
            return None
        return round(held + since, 3)

    def frozen_reason(self, reasons: List[str]) -> None:
        """Add the frozen input to ``health()``'s reasons (it makes the stream degraded)."""
        frozen = self.frozen_for()
        if frozen is not None:
            reasons.append("input frozen: the same picture for %.1f s" % frozen)
