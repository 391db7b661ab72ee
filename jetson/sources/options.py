"""Typed reading of a source's options (URI query strings or keyword arguments).

Query options arrive as strings (``?width=640&realtime=1``), keyword options as Python values; both go
through :class:`Options`, which converts the ones a source knows and rejects the rest with an error that
lists the known names::

    opts = Options("video", options)
    realtime = opts.flag("realtime", False)
    opts.done()          # raises SourceError on an unknown option
"""
from __future__ import annotations

import difflib
from typing import Any, Dict, List, Optional, Sequence

from jetseg.errors import SourceError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Options:
    """Consumes the options of one source kind; ``done()`` rejects what was not consumed."""

    def __init__(self, kind: str, options: Dict[str, Any]) -> None:
        self.kind = kind
        self._left = dict(options)
        self._known: List[str] = []

    def _take(self, name: str) -> Any:
        self._known.append(name)
        return self._left.pop(name, None)

    def _bad(self, name: str, value: Any, expected: str) -> SourceError:
        return SourceError("%s source option %s=%r: expected %s" % (self.kind, name, value, expected))

    def flag(self, name: str, default: bool) -> bool:
        value = self._take(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self._bad(name, value, "1/0 (true/false)")

    def integer(self, name: str, default: Optional[int], minimum: Optional[int] = None) -> Optional[int]:
        value = self._take(name)
        if value is None:
            return default
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise self._bad(name, value, "an integer") from None
        if minimum is not None and number < minimum:
            raise self._bad(name, value, "an integer >= %d" % minimum)
        return number

    def number(self, name: str, default: Optional[float], minimum: Optional[float] = None,
               positive: bool = False) -> Optional[float]:
        value = self._take(name)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self._bad(name, value, "a number") from None
        if positive and not number > 0:
            raise self._bad(name, value, "a number > 0")
        if minimum is not None and number < minimum:
            raise self._bad(name, value, "a number >= %g" % minimum)
        return number

    def text(self, name: str, default: Optional[str]) -> Optional[str]:
        value = self._take(name)
        return default if value is None else str(value)

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        value = self._take(name)
        if value is None:
            return default
        text = str(value).strip().lower()
        if text not in choices:
            raise self._bad(name, value, "one of " + ", ".join(choices))
        return text

    def done(self) -> None:
        """Raise a SourceError naming the first unknown option (with a suggestion) and the known ones."""
        if not self._left:
            return
        name = sorted(self._left)[0]
        close = difflib.get_close_matches(name, self._known, n=1)
        hint = " (did you mean %r?)" % close[0] if close else ""
        known = ", ".join(sorted(self._known)) or "none"
        raise SourceError("unknown %s source option %r%s; known options: %s" % (self.kind, name, hint, known))
