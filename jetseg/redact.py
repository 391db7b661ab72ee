"""Secrets out of everything jetseg prints or serves: URL credentials, tokens, registered secret values.

``redact("rtsp://admin:pw@10.0.0.5/live?token=abc")`` gives ``"rtsp://admin:***@10.0.0.5/live?token=***"``.
:func:`add_secret` registers a value (the web viewer's token) that is replaced wherever it appears.
:class:`RedactingFormatter` wraps the log formatters (``jetseg.log.setup_logging`` installs it on the
``jetseg`` logger and the root logger, so every logger's output is covered); the daemon's ``/metrics``
labels, ``/stats``, ``/health`` reasons, ``jetseg run --check`` and the CLI's error line go through
:func:`redact` too.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import Any, Set

MASK = "***"
#: ``scheme://user:password@`` (password redacted, user kept) and ``scheme://token@`` (all redacted). The
#: userinfo runs up to the *last* ``@`` of the authority (which ends at ``/``, ``?``, ``#``, a quote or a
#: space), so a password containing ``@`` is masked whole.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/:\s?#'\"]*)"
                       r"(?::(?P<pw>[^/\s?#'\"]*))?@")
#: Names whose values are secrets: query parameters, options, config fields.
SECRET_KEYS = ("token", "access_token", "password", "passwd", "pwd", "secret", "api_key", "apikey", "auth")
#: ``token=...``, ``password=...`` and friends in queries, options and config dumps.
_PARAM = re.compile(r"(?P<key>\b(?:%s)[\"']?(?:=|\s*:\s*)[\"']?)(?P<value>[^&\s\"',;}\]]+)" % "|".join(SECRET_KEYS),
                    re.IGNORECASE)
_BEARER = re.compile(r"(?P<key>\bBearer\s+)(?P<value>[^\s\"',;]+)", re.IGNORECASE)

_secrets: Set[str] = set()
_lock = threading.Lock()


def add_secret(value: Any) -> None:
    """Redact ``value`` wherever it appears from now on (short values are ignored: they match too much)."""
    if isinstance(value, str) and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def _userinfo(match: "re.Match[str]") -> str:
    if match.group("pw") is None:
        return match.group("scheme") + (MASK + "@" if match.group("user") else "@")
    return "%s%s:%s@" % (match.group("scheme"), match.group("user"), MASK)


def redact(text: Any) -> str:
    """``text`` as a string with URL passwords, token/password parameters and registered secrets masked."""
    out = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        out = out.replace(secret, MASK)
    out = _USERINFO.sub(_userinfo, out)
    out = _PARAM.sub(lambda m: m.group("key") + MASK, out)
    return _BEARER.sub(lambda m: m.group("key") + MASK, out)


def redact_data(data: Any) -> Any:
    """A JSON-like structure with every string redacted and the value of every :data:`SECRET_KEYS` key masked
    (``{"web": {"token": "abc"}}`` -> ``{"web": {"token": "***"}}``; an unset one stays None or empty)."""
    if isinstance(data, dict):
        return {k: MASK if _secret_key(k) and v not in (None, "") else redact_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v) for v in data]
    if isinstance(data, str):
        return redact(data)
    return data


def _secret_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower() in SECRET_KEYS


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner`` (message, fields and traceback), then redacts the whole line."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))
