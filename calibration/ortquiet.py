"""ONNX Runtime's quantizer chatter goes to jetseg's DEBUG log (shown with ``-v``), not to the terminal.

The quantization tools ``print()`` their progress ("Finding optimal threshold ..."), log to the root logger
with ``logging.warning`` (which Python prints to stderr when the root logger has no handler), and the
native library logs session warnings. :func:`quiet_onnxruntime` routes the first two to
``jetseg.calibration`` at DEBUG and raises the native log level to errors while the block runs.
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


class _ToDebug(logging.Handler):
    """Re-emits records of the root logger (ONNX Runtime's ``logging.warning``) as jetseg DEBUG lines."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("onnxruntime %s: %s", record.levelname.lower(), record.getMessage())


@contextlib.contextmanager
def quiet_onnxruntime() -> Iterator[None]:
    """Within the block, ONNX Runtime's prints and root-logger records become jetseg DEBUG lines."""
    import onnxruntime

    root = logging.getLogger()
    handler = _ToDebug()
    chatter = io.StringIO()
    saved_level = root.level
    if root.handlers:  # someone configured the root logger: leave it as it is, only catch prints
        handler_added = False
    else:
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
        handler_added = True
    onnxruntime.set_default_logger_severity(_ORT_ERROR_SEVERITY)
    try:
        with contextlib.redirect_stdout(chatter):
            yield
    finally:
        onnxruntime.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)
        if handler_added:
            root.removeHandler(handler)
            root.setLevel(saved_level)
        lines = [line for line in chatter.getvalue().splitlines() if line.strip()]
        if lines:
            log.debug("onnxruntime: %s", " | ".join(lines))
