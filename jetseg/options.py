"""Typed options of runners, sources and sinks: one reader, one error format.

Options arrive as strings from a URI query (``?every=2&png=0``) or a command line (``--backend-option
threads=2``), or as Python values from keyword arguments and daemon.yaml (``every: 2``). A component reads
the ones it knows through an :class:`OptionReader`, which converts and checks each value, then calls
:meth:`OptionReader.done` to reject the rest::

    opts = OptionReader("video source", options, SourceError)
    realtime = opts.flag("realtime", False)
    opts.done()

Every error is the component's own :class:`~jetseg.errors.JetsegError` subclass and has one of two shapes:

- ``video source option realtime='maybe': expected 1/0 (true/false)``
- ``unknown video source option 'realtim' (did you mean 'realtime'?); known options: loop, realtime``
"""
from __future__ import annotations

import difflib
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Type, TypeVar, overload

import yaml

from jetseg.errors import JetsegError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")

N = TypeVar("N", int, float)


class OptionReader:
    """Consumes the options of one component; :meth:`done` rejects the ones nobody asked for.

    Args:
        label: how messages name the component: ``"video source"``, ``"masks:// sink"``, ``"trt backend"``.
        options: the options as given (strings or Python values; None means "not set").
        error: the component's error class (SourceError, SinkError, RunnerError, ...).
    """

    def __init__(self, label: str, options: Mapping[str, Any], error: Type[JetsegError] = JetsegError) -> None:
        self.label = label
        self.error = error
        self._left = {k: v for k, v in options.items() if v is not None}
        self._known: List[str] = []

    # ------------------------------------------------------------------ errors
    def fail(self, name: str, value: Any, expected: str) -> JetsegError:
        """The error for option ``name`` given ``value`` when ``expected`` was wanted (raise it)."""
        return self.error("%s option %s=%r: expected %s" % (self.label, name, value, expected))

    def done(self) -> None:
        """Raise the component's error naming the first unknown option, the closest known name and all known."""
        if not self._left:
            return
        name = sorted(self._left)[0]
        raise self.error(unknown_message(self.label + " option", name, self._known, plural="options"))

    # ------------------------------------------------------------------ readers
    def _take(self, name: str) -> Any:
        self._known.append(name)
        return self._left.pop(name, None)

    @overload
    def flag(self, name: str, default: bool) -> bool: ...

    @overload
    def flag(self, name: str, default: None) -> Optional[bool]: ...

    def flag(self, name: str, default: Optional[bool]) -> Optional[bool]:
        """``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any case) or a bool."""
        value = self._take(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise self.fail(name, value, "1/0 (true/false)")

    @overload
    def integer(self, name: str, default: int, minimum: Optional[int] = None,
                maximum: Optional[int] = None) -> int: ...

    @overload
    def integer(self, name: str, default: None, minimum: Optional[int] = None,
                maximum: Optional[int] = None) -> Optional[int]: ...

    def integer(self, name: str, default: Optional[int], minimum: Optional[int] = None,
                maximum: Optional[int] = None) -> Optional[int]:
        """A whole number (``"2"`` or ``2``), optionally within ``[minimum, maximum]``."""
        value = self._take(name)
        if value is None:
            return default
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise self.fail(name, value, "an integer")
        try:
            number = int(value) if isinstance(value, (int, float)) else int(str(value).strip())
        except ValueError:
            raise self.fail(name, value, "an integer") from None
        return self._in_range(name, number, minimum, maximum, "an integer")

    @overload
    def number(self, name: str, default: float, minimum: Optional[float] = None,
               positive: bool = False) -> float: ...

    @overload
    def number(self, name: str, default: None, minimum: Optional[float] = None,
               positive: bool = False) -> Optional[float]: ...

    def number(self, name: str, default: Optional[float], minimum: Optional[float] = None,
               positive: bool = False) -> Optional[float]:
        """A real number; ``positive`` asks for > 0, ``minimum`` for >= minimum."""
        value = self._take(name)
        if value is None:
            return default
        try:
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
        except (TypeError, ValueError):
            raise self.fail(name, value, "a number") from None
        if positive and not number > 0:
            raise self.fail(name, number, "a number > 0")
        return self._in_range(name, number, minimum, None, "a number")

    def _in_range(self, name: str, number: N, minimum: Optional[N], maximum: Optional[N], what: str) -> N:
        if minimum is not None and maximum is not None:
            if not minimum <= number <= maximum:
                raise self.fail(name, number, "%s from %g to %g" % (what, minimum, maximum))
        elif minimum is not None and number < minimum:
            raise self.fail(name, number, "%s >= %g" % (what, minimum))
        elif maximum is not None and number > maximum:
            raise self.fail(name, number, "%s <= %g" % (what, maximum))
        return number

    @overload
    def text(self, name: str, default: str) -> str: ...

    @overload
    def text(self, name: str, default: None) -> Optional[str]: ...

    def text(self, name: str, default: Optional[str]) -> Optional[str]:
        value = self._take(name)
        return default if value is None else str(value)

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        """One of ``choices`` (compared in lower case); ``default`` need not be one of them."""
        value = self._take(name)
        if value is None:
            return default
        text = str(value).strip().lower()
        if text not in choices:
            raise self.fail(name, value, "one of " + ", ".join(choices))
        return text

    def mapping(self, name: str) -> Dict[str, Any]:
        """A mapping of further options passed through as they are (e.g. an execution provider's)."""
        value = self._take(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(name, value, "a mapping of option: value (daemon.yaml or Python keywords)")
        return dict(value)


def unknown_message(what: str, name: str, known: Iterable[str], plural: str = "") -> str:
    """``unknown <what> 'naem' (did you mean 'name'?); known <plural>: a, b`` (known: none when empty)."""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=1)
    hint = " (did you mean %r?)" % close[0] if close else ""
    return "unknown %s %r%s; known %s: %s" % (what, name, hint, plural or what + "s", ", ".join(names) or "none")


def parse_assignments(items: Optional[Iterable[str]], flag: str,
                      error: Type[JetsegError] = JetsegError) -> Dict[str, Any]:
    """Command-line ``KEY=VALUE`` items -> a dict; values are read as YAML scalars (``2`` -> 2, ``true`` -> True).

    ``parse_assignments(["provider=cpu", "threads=2"], "--backend-option")`` -> ``{"provider": "cpu",
    "threads": 2}``; an item without ``=`` raises ``error`` naming ``flag``.
    """
    out: Dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise error("%s %r: expected key=value, e.g. %s threads=2" % (flag, item, flag))
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        out[key.strip()] = parsed if isinstance(parsed, (int, float, bool, str)) or parsed is None else value
    return out
