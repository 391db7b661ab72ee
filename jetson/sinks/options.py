"""Typed sink options: URI query strings (``?every=2``) and config values (``every: 2``) alike.

Each sink declares its options as ``{name: (type, default)}``; :func:`take_options` converts what it was
given, fills in the defaults and rejects unknown names with one line that lists the known ones.
"""
from __future__ import annotations

import difflib
from typing import Any, Dict, Tuple

from jetseg.errors import SinkError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_TYPE_NAMES = {bool: "0 or 1", int: "an integer", float: "a number", str: "text"}


def take_options(kind: str, given: Dict[str, Any], declared: Dict[str, Tuple[type, Any]]) -> Dict[str, Any]:
    """Convert ``given`` to the declared types; unknown names raise a SinkError naming the known ones.

    Args:
        kind: the sink's URI scheme, for messages (``masks``).
        given: options as received (strings from a URI query, or typed values from a config file).
        declared: ``{name: (type, default)}``; a default of None means "not set".
    """
    out: Dict[str, Any] = {}
    for name, value in given.items():
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = " (did you mean %r?)" % close[0] if close else ""
            raise SinkError("%s:// sink got unknown option %r%s; known options: %s"
                            % (kind, name, hint, ", ".join(sorted(declared)) or "none"))
        out[name] = _convert(kind, name, value, declared[name][0])
    for name, (_, default) in declared.items():
        out.setdefault(name, default)
    return out


def _convert(kind: str, name: str, value: Any, typ: type) -> Any:
    if value is None:
        return None
    if typ is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    elif typ is str:
        return str(value)
    elif not isinstance(value, bool):
        try:
            return typ(value)
        except (TypeError, ValueError):
            pass
    raise SinkError("%s:// option %s=%r is not %s; for example %s=%s"
                    % (kind, name, value, _TYPE_NAMES.get(typ, typ.__name__), name,
                       {bool: "1", int: "2", float: "25"}.get(typ, "x")))


def require_positive(kind: str, name: str, value: Any) -> None:
    """Raise a SinkError unless ``value`` (already converted) is None or > 0."""
    if value is not None and not value > 0:
        raise SinkError("%s:// option %s=%r must be greater than 0" % (kind, name, value))
