"""ONNX Runtime's quantizer chatter goes to jetseg's DEBUG log (shown with ``-v``), not to the terminal.

The quantization tools ``print()`` their progress ("Finding optimal threshold ..."), log to the root logger
with ``logging.warning`` (which Python prints to stderr when the root logger has no handler), and the
native library logs session warnings. :func:`quiet_onnxruntime` routes the first two to
``jetseg.calibration`` at DEBUG (a filter on the root logger, whatever handlers it has) and raises the
native log level to errors while the block runs.
"""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Iterator

log = logging.getLogger("jetseg.calibration")

#: the native library's default severity (warning), restored after the block
_ORT_DEFAULT_SEVERITY = 2
_ORT_ERROR_SEVERITY = 3


class _ToDebug(logging.Filter):
    """On the root logger: its own records (ONNX Runtime's ``logging.warning``) become jetseg DEBUG lines and
    go no further. Records propagated from named loggers do not pass a logger's filters, so they are untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        log.debug("onnxruntime %s: %s", record.levelname.lower(), record.getMessage())
        return False


@contextlib.contextmanager
def quiet_onnxruntime() -> Iterator[None]:
    """Within the block, ONNX Runtime's prints and root-logger records become jetseg DEBUG lines."""
    import onnxruntime

    root = logging.getLogger()
    diverted = _ToDebug()
    chatter = io.StringIO()
    root.addFilter(diverted)
    onnxruntime.set_default_logger_severity(_ORT_ERROR_SEVERITY)
    try:
        with contextlib.redirect_stdout(chatter):
            yield
    finally:
        onnxruntime.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)
        root.removeFilter(diverted)
        lines = [line for line in chatter.getvalue().splitlines() if line.strip()]
        if lines:
            log.debug("onnxruntime: %s", " | ".join(lines))
