"""The base of runners, sources and sinks: a lifecycle that runs once, typed options, one error class.

Each family (:class:`~jetseg.jetson.runners.base.Runner`, :class:`~jetseg.jetson.sources.base.Source`,
:class:`~jetseg.jetson.sinks.base.Sink`) keeps its own public verbs (``activate``/``deactivate``,
``open``/``close``) and implements them with :meth:`Component._open_with` and :meth:`Component._close_with` around its
subclass hooks (``_activate``, ``_open``, ...), as Polygraphy's runners do. The base supplies the rest:

- ``started``: whether the component is open/active; starting twice or stopping twice does nothing, and a
  hook that raises leaves the component stopped;
- the context manager (``with open_source(uri) as source:``), through the family's :meth:`_enter` / :meth:`_exit`;
- :meth:`read_options`: an :class:`~jetseg.options.OptionReader` that names the component in its messages
  and raises the family's error (SourceError, SinkError, RunnerError).

Components are looked up by name or URI scheme in a :class:`~jetseg.registry.Registry`; :func:`split_uri` is
the one URI splitter of the source and sink registries.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, Mapping, Tuple, Type, TypeVar
from urllib.parse import parse_qsl, urlsplit

from jetseg.errors import JetsegError
from jetseg.options import OptionReader

C = TypeVar("C", bound="Component")


class Component:
    """Lifecycle, options and errors shared by every runner, source and sink.

    Class attributes:
        family: the user-facing word for the family, in messages: ``backend``, ``source``, ``sink``.
        error: the family's error class.
    """

    family: ClassVar[str] = "component"
    error: ClassVar[Type[JetsegError]] = JetsegError

    def __init__(self) -> None:
        self._started = False

    @property
    def label(self) -> str:
        """How messages name this component (``video source``, ``masks:// sink``, ``trt backend``)."""
        return self.family

    @property
    def started(self) -> bool:
        """True between a successful open/activate and the matching close/deactivate."""
        return self._started

    def read_options(self, options: Mapping[str, Any]) -> OptionReader:
        """A reader of this component's options; call its ``done()`` after reading the known ones."""
        return OptionReader(self.label, options, self.error)

    # ------------------------------------------------------------------ lifecycle, for the family bases
    def _open_with(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (the subclass's open step) unless started already."""
        if not self._started:
            hook()
            self._started = True

    def _close_with(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (the subclass's close step) if started; the component counts as stopped even if it raises."""
        if self._started:
            self._started = False
            hook()

    def _require_started(self, how: str) -> None:
        """Raise the family's error unless started; ``how`` says how to start it."""
        if not self._started:
            raise self.error("%s is not %s" % (self.label, how))

    def _enter(self) -> None:
        """What ``with component:`` does first (the family's open/activate)."""
        raise NotImplementedError

    def _exit(self) -> None:
        """What leaving ``with component:`` does (the family's close/deactivate)."""
        raise NotImplementedError

    def __enter__(self: C) -> C:
        self._enter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._exit()


def split_uri(uri: str) -> Tuple[str, str, Dict[str, str]]:
    """``masks://out/dir?every=2`` -> ``("masks", "out/dir", {"every": "2"})``; the scheme in lower case.

    The target is the URI's host and path joined (``http://127.0.0.1:8080`` -> ``127.0.0.1:8080``); query
    values stay strings (an empty one too: ``?token=`` is an error, not "no token"), for each component's :class:`~jetseg.options.OptionReader` to convert.
    """
    parts = urlsplit(uri)
    return parts.scheme.lower(), parts.netloc + parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
