"""The streaming pipeline: source -> preprocess -> infer -> postprocess -> sinks.

What each stage does is separate from how stages are threaded and queued (as Holoscan separates operators
from schedulers):

- :mod:`~jetseg.jetson.pipeline.stages`: stages with one shape (``start``, ``process``, ``flush``, ``stop``)
  that turn one item into zero or more items and know nothing about threads;
- :mod:`~jetseg.jetson.pipeline.graph`: the stages wired into a small graph;
- :mod:`~jetseg.jetson.pipeline.loop`: the one loop every stage runs in (get, heartbeat, timing, drops, end);
- :mod:`~jetseg.jetson.pipeline.schedulers`: threaded (overlapped, bounded hand-overs, newest frame wins for
  live sources) or serial (one thread, one frame at a time);
- :mod:`~jetseg.jetson.pipeline.reader`: the pipeline's view of a source (state, drops, reconnections);
- :mod:`~jetseg.jetson.pipeline.settings`: :class:`PipelineConfig`, where the pipeline's defaults are declared;
- :mod:`~jetseg.jetson.pipeline.flow`: :class:`Pipeline`, which puts them together.

:func:`jetseg.jetson.daemon.assembly.run_pipeline` is the one-call form used by the benchmarks and the demo.
"""
from __future__ import annotations

from jetseg.jetson.pipeline.flow import Pipeline, PipelineError, runs_on_cpu, sink_names
from jetseg.jetson.pipeline.graph import Node, chain
from jetseg.jetson.pipeline.reader import SourceReader
from jetseg.jetson.pipeline.schedulers import Scheduler, SerialScheduler, ThreadedScheduler
from jetseg.jetson.pipeline.settings import ConfigError, PipelineConfig
from jetseg.jetson.pipeline.stages import Infer, Item, Postprocess, Preprocess, ReadFrames, SinkWriter, Stage

__all__ = ["ConfigError", "Infer", "Item", "Node", "Pipeline", "PipelineConfig", "PipelineError", "Postprocess", "Preprocess", "ReadFrames",
           "Scheduler", "SerialScheduler", "SinkWriter", "SourceReader", "Stage", "ThreadedScheduler", "chain",
           "runs_on_cpu", "sink_names"]
