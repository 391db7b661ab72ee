"""Name -> implementation registries: runners (by backend name), sources and sinks (by URI scheme), architectures.

Entries are registered as ``"package.module:attribute"`` strings so that looking a name up imports only
what that name needs. An unknown name raises the registry's error (SourceError for sources, ...) naming the
closest known name and all of them (``unknown backend 'onxrt'; did you mean 'onnxrt'? known: onnxrt, torch, trt``).
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Dict, Generic, List, Type, TypeVar, cast

from jetseg.errors import JetsegError

T = TypeVar("T")


class Registry(Generic[T]):
    """A table of named, lazily imported implementations of one kind of component.

    Args:
        kind: the user-facing word for one entry (``backend``, ``source``, ``sink``), for messages.
        error: the error raised for an unknown name.
    """

    def __init__(self, kind: str, error: Type[JetsegError] = JetsegError) -> None:
        self.kind = kind
        self.error = error
        self._entries: Dict[str, str] = {}
        self._help: Dict[str, str] = {}

    def register(self, name: str, target: str, help: str = "") -> None:
        """Register ``name`` for ``"module:attribute"`` (imported at first use)."""
        if ":" not in target:
            raise ValueError("registry target must be 'module:attribute', got %r" % target)
        self._entries[name] = target
        self._help[name] = help

    def names(self) -> List[str]:
        return sorted(self._entries)

    def describe(self, name: str) -> str:
        return self._help.get(name, "")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def check(self, name: str) -> str:
        """Return ``name`` if known, else raise the registry's error with a suggestion."""
        if name in self._entries:
            return name
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = "; did you mean %r?" % close[0] if close else ""
        raise self.error("unknown %s %r%s; known: %s" % (self.kind, name, hint, ", ".join(self.names())))

    def get(self, name: str) -> T:
        """Import and return the implementation registered under ``name``."""
        module, _, attr = self._entries[self.check(name)].partition(":")
        found: Any = getattr(importlib.import_module(module), attr)
        return cast(T, found)
