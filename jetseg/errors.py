"""The one family of errors jetseg raises for things a user can fix.

The CLI prints a :class:`JetsegError` as a single line (``jetseg: error: <message>``) and exits non-zero;
anything else is a bug and keeps its traceback. Messages say what was received and what was expected,
and where it helps, what to do.
"""
from __future__ import annotations


class JetsegError(Exception):
    """A user-facing error: bad input, a missing dependency, an unusable device."""

    exit_code = 2


class SpecError(JetsegError):
    """spec.yaml is invalid; the message names the field and the expected value."""


class BundleError(JetsegError):
    """A model bundle is missing files, is corrupt, or does not match its manifest."""


class DependencyError(JetsegError):
    """An optional dependency is not installed; the message says how to install it."""


class SourceError(JetsegError):
    """A frame source cannot be opened or read."""


class SinkError(JetsegError):
    """An output sink cannot be opened or written."""


class RunnerError(JetsegError):
    """A runner cannot run (bad backend option, unusable model or device), or got input that does not match."""


class DeviceError(JetsegError):
    """The device cannot do what was asked (no GPU, no TensorRT, no DLA)."""


class GateError(JetsegError):
    """An accuracy or speed gate failed."""

    exit_code = 3
