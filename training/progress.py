"""Progress for long work on stderr: a tqdm bar on a terminal, a plain line every few seconds otherwise.

Output that is not a terminal (a log file, CI, ``2>&1 | tee``) gets lines such as
``train: 120/500 step (24%), 3.1 step/s, eta 2.0 min, loss=0.213`` every ``LINE_INTERVAL_S`` seconds and one at
the end (work done within the first interval prints nothing: a user error stays one line), instead of nothing for a minute (tqdm's carriage returns make one long unreadable line in a log).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, Optional

from jetseg.optional import require

#: seconds between two progress lines when stderr is not a terminal
LINE_INTERVAL_S = 5.0


class LineProgress:
    """tqdm's ``update`` / ``set_postfix`` / context manager, printed as one plain line every ``interval`` s."""

    def __init__(self, total: Optional[int], desc: str, unit: str, interval: float = LINE_INTERVAL_S,
                 write: Optional[Callable[[str], Any]] = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.interval = total, desc, unit, float(interval)
        self.n = 0
        self._write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._clock = clock
        self._start = self._last = clock()
        self._postfix: Dict[str, Any] = {}
        self._shown = -1

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._clock() - self._last >= self.interval:
            self._line()

    def set_postfix(self, ordered_dict: Optional[Dict[str, Any]] = None, **values: Any) -> None:
        self._postfix = dict(ordered_dict or {}, **values)

    def close(self) -> None:
        """The final line, when a line was shown before (work shorter than ``interval`` stays silent)."""
        if self._shown >= 0 and self._shown != self.n:
            self._line()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _line(self) -> None:
        now = self._clock()
        self._last, self._shown = now, self.n
        elapsed = max(now - self._start, 1e-9)
        rate = self.n / elapsed
        parts = ["%s: %d%s %s" % (self.desc or "progress", self.n, "/%d" % self.total if self.total else "", self.unit)]
        if self.total:
            parts[0] += " (%d%%)" % round(100.0 * self.n / self.total)
        parts.append("%.1f %s/s" % (rate, self.unit))
        if self.total and rate > 0 and self.n < self.total:
            parts.append("eta %.1f min" % ((self.total - self.n) / rate / 60.0))
        parts += ["%s=%s" % (k, v) for k, v in self._postfix.items()]
        self._write(", ".join(parts))


def bar(total: Optional[int] = None, desc: str = "", unit: str = "it", disable: Optional[bool] = None) -> Any:
    """A tqdm bar on a terminal; elsewhere (``disable=None``) a :class:`LineProgress`; ``disable=True``: silent."""
    if disable is None and not sys.stderr.isatty():
        return LineProgress(total, desc, unit)
    tqdm = require("tqdm", "progress bars").tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=bool(disable), dynamic_ncols=True,
                mininterval=1.0)
