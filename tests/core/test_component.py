"""The lifecycle base of runners, sources and sinks, and the registries' error classes."""
from __future__ import annotations

from typing import List

import pytest

from jetseg.component import Component, split_uri
from jetseg.errors import JetsegError, RunnerError, SinkError, SourceError


class Door(Component):
    family = "door"

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.calls: List[str] = []
        self.fail = fail

    def open(self) -> None:
        self._open_with(self._open)

    def close(self) -> None:
        self._close_with(self._close)

    def _open(self) -> None:
        self.calls.append("open")
        if self.fail:
            raise JetsegError("jammed")

    def _close(self) -> None:
        self.calls.append("close")

    def _enter(self) -> None:
        self.open()

    def _exit(self) -> None:
        self.close()


def test_hooks_run_once_and_the_context_manager_closes():
    door = Door()
    with door as same:
        assert same is door and door.started
        door.open()
    door.close()
    assert door.calls == ["open", "close"] and not door.started


def test_a_failed_open_leaves_it_closed():
    door = Door(fail=True)
    with pytest.raises(JetsegError, match="jammed"):
        door.open()
    door.close()
    assert door.calls == ["open"] and not door.started
    with pytest.raises(JetsegError, match="^door is not open; open it first$"):
        door._require_started("open; open it first")


def test_split_uri():
    assert split_uri("MASKS://out/dir?every=2&png=0") == ("masks", "out/dir", {"every": "2", "png": "0"})
    assert split_uri("http://127.0.0.1:8080") == ("http", "127.0.0.1:8080", {})


def test_each_family_uses_its_own_error_class():
    from jetseg.jetson.runners import RUNNERS
    from jetseg.jetson.sinks import SINKS
    from jetseg.jetson.sources import SOURCES

    for registry, error, typo in ((RUNNERS, RunnerError, "onxrt"), (SOURCES, SourceError, "synthetc"),
                                  (SINKS, SinkError, "mask")):
        with pytest.raises(error, match="unknown %s %r; did you mean" % (registry.kind, typo)):
            registry.get(typo)


def test_families_keep_their_public_verbs(tmp_path):
    from jetseg.jetson.sinks import SinkContext, open_sink
    from jetseg.jetson.sources import open_source

    with open_source("synthetic://ultrasound?frames=1&width=64&height=64") as source:
        assert source.is_open and source.read() is not None
    assert not source.is_open
    sink = open_sink("null://")
    with pytest.raises(SinkError, match=r"^null:// sink is not open; write\(\) came before open\(\) or after close\(\)$"):
        sink.write(None)  # type: ignore[arg-type]
    with sink.open(SinkContext(spec=None)):  # type: ignore[arg-type]
        assert sink.started
    assert not sink.started
