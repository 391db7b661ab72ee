"""The pipeline's settings, declared once: :class:`PipelineConfig` holds every default the pipeline, its
schedulers, the daemon config (its ``pipeline:`` section) and ``run_pipeline`` use.

Also the checks every config field goes through (:func:`expect` and friends, :class:`ConfigError`), so that
an error names the field and what was expected wherever a setting comes from (YAML, flags, keyword
arguments): ``config field 'pipeline.queue_size' is 0; expected an integer 1..1024``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from jetseg.errors import JetsegError
from jetseg.options import unknown_message

#: How stages share threads (docs/runtime.md, "Scheduling").
SCHEDULERS = ("auto", "threaded", "latency", "serial")


class ConfigError(JetsegError):
    """A configuration is invalid; the message names the field and the expected value."""


def expect(ok: bool, name: str, got: Any, expected: str) -> None:
    """Raise :class:`ConfigError` naming field ``name``, the value ``got`` and what was ``expected``."""
    if not ok:
        raise ConfigError("config field %r is %r; expected %s" % (name, got, expected))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_or_none(value: Any, name: str) -> Optional[float]:
    """``value`` as a float, None kept; anything else than a positive number or None is an error."""
    if value is None:
        return None
    expect(is_number(value) and value > 0, name, value, "a positive number or null")
    return float(value)


def check_fields(cls: Any, names: Iterable[str], prefix: str = "") -> None:
    """Every name is a field of dataclass ``cls``, or a ConfigError names it, the closest field and the known
    ones (``prefix``: the section, as in ``pipeline.queue_size``)."""
    known = [f.name for f in dataclasses.fields(cls)]
    where = prefix + "." if prefix else ""
    for key in names:
        if key not in known:
            raise ConfigError(unknown_message("config field", where + str(key), [where + k for k in known],
                                              "fields"))


@dataclass
class PipelineConfig:
    """Queue sizes, run limits and threads of a pipeline (the daemon config's ``pipeline:`` section).

    Attributes:
        queue_size: capacity of each hand-over between stages for a finite source (frames are read when
            there is room: 1 keeps latency lowest); a live source always uses a one-item newest-wins slot.
        sink_queue: capacity of each sink's queue (newest wins).
        sink_queue_blocking: capacity of the queue of a sink with ``blocking_ok`` on a finite source.
        max_frames, duration_s: stop reading after this many frames / seconds of this pipeline (then
            drain); None: no limit.
        post_thread: post-processing in its own thread (True) or in the inference thread (False); None: the
            inference thread when the model runs on the CPU, its own thread otherwise.
        scheduler: how the stages share threads: one of :data:`SCHEDULERS` (docs/runtime.md, "Scheduling").
    """

    queue_size: int = 1
    sink_queue: int = 4
    sink_queue_blocking: int = 16
    max_frames: Optional[int] = None
    duration_s: Optional[float] = None
    post_thread: Optional[bool] = None
    scheduler: str = "auto"

    def validate(self) -> PipelineConfig:
        expect(self.scheduler in SCHEDULERS, "pipeline.scheduler", self.scheduler, "one of " + ", ".join(SCHEDULERS))
        expect(self.post_thread is None or isinstance(self.post_thread, bool), "pipeline.post_thread",
               self.post_thread, "true, false or null (null: its own thread unless the model runs on the CPU)")
        for key in ("queue_size", "sink_queue", "sink_queue_blocking"):
            value = getattr(self, key)
            expect(isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1024,
                   "pipeline." + key, value, "an integer 1..1024")
        if self.max_frames is not None:
            expect(isinstance(self.max_frames, int) and not isinstance(self.max_frames, bool)
                   and self.max_frames > 0, "pipeline.max_frames", self.max_frames, "a positive integer or null")
        self.duration_s = positive_or_none(self.duration_s, "pipeline.duration_s")
        return self

    def but(self, **overrides: Any) -> PipelineConfig:
        """A validated copy with ``overrides`` (field names; an unknown one is a ConfigError naming the known)."""
        check_fields(PipelineConfig, overrides, "pipeline")
        return dataclasses.replace(self, **overrides).validate()


def pipeline_settings(settings: Optional[PipelineConfig] = None, **overrides: Any) -> PipelineConfig:
    """``settings`` (default: :class:`PipelineConfig`'s defaults) with ``overrides``, validated."""
    return (settings if settings is not None else PipelineConfig()).but(**overrides)

