"""Logging setup shared by every command: plain lines on stderr, or JSON lines for the daemon."""
from __future__ import annotations

import json
import logging
import sys
import time

from jetseg.redact import RedactingFormatter


class JsonFormatter(logging.Formatter):
    """One JSON object per line (for journald and log shippers)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage()}
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            data.update(extra)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (not the stream of the moment it was
    made, which a test's capture or a redirect may have closed since)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)

    def flush(self) -> None:
        self.stream = sys.stderr
        super().flush()


def setup_logging(verbose: bool = False, json_lines: bool = False) -> None:
    """Configure the ``jetseg`` logger once (INFO, or DEBUG with ``verbose``), and the root logger (WARNING)
    for everything else; every line of both is redacted (:mod:`jetseg.redact`: URL passwords, tokens)."""
    logger = logging.getLogger("jetseg")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(_formatter(json_lines))
    logger.addHandler(handler)
    logger.propagate = False
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "jetseg", False)]:
        root.removeHandler(old)
    other = StderrHandler()
    other.setFormatter(_formatter(json_lines))
    other.setLevel(logging.WARNING)
    other.jetseg = True  # type: ignore[attr-defined]
    root.addHandler(other)


def _formatter(json_lines: bool) -> logging.Formatter:
    if json_lines:
        return RedactingFormatter(JsonFormatter())
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    fmt.converter = time.localtime
    return RedactingFormatter(fmt)
