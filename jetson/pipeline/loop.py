"""The one loop every stage runs in, whatever the scheduler.

:func:`run_part` runs one part of the graph: a root node and the nodes below it that share its thread. It
gets an item (a source root reads one instead), beats a heartbeat, passes the item through the part's
stages, timing each, and hands what comes out to the next parts (counting drops). At the end of the stream
(:data:`~jetseg.jetson.frames.slot.END`, a source that ended, or ``stop``) it flushes every stage in order, closes
the hand-overs it feeds and stops its stages.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional

from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.frames.slot import EMPTY, END, Queue
from jetseg.jetson.pipeline.graph import Node


def run_part(root: Node, metrics: Metrics, beats: Dict[str, float], stop: Optional[threading.Event] = None,
             poll_s: float = 0.1) -> None:
    """Run ``root``'s part of the graph until its input ends (or, for a source, until ``stop`` is set)."""
    part = list(root.same_thread())
    outboxes = [node.inbox for node in root.handovers() if node.inbox is not None]
    # a finite source is read just in time: only when the next part can take the item (fresh frames)
    just_in_time = [box for box in outboxes if isinstance(box, Queue)] if root.inbox is None else []
    try:
        for node in part:
            node.stage.start()
        while True:
            beats[root.name] = time.monotonic()
            if root.inbox is None:
                if (stop is not None and stop.is_set()) or root.stage.ended:
                    break
                if not all(box.wait_room(poll_s) for box in just_in_time):
                    continue
                item: Any = None
            else:
                item = root.inbox.get(poll_s)
                if item is EMPTY:
                    continue
                if item is END:
                    break
            _process(root, item, metrics)
        _flush(root, metrics)
    finally:
        for box in outboxes:
            box.close()
        for node in part:
            node.stage.stop()


def _process(node: Node, item: Any, metrics: Metrics) -> None:
    stage = node.stage
    t0 = time.perf_counter()
    out = stage.process(item)
    if out and stage.timed:
        metrics.stage(stage.name, (time.perf_counter() - t0) / len(out))
    _emit(node, out, metrics)


def _emit(node: Node, items: List[Any], metrics: Metrics) -> None:
    for item in items:
        for child in node.children:
            if child.inbox is None:
                _process(child, item, metrics)
            else:
                dropped = child.inbox.put(item)
                if dropped:
                    child.stage.inbox_dropped(dropped)


def _flush(node: Node, metrics: Metrics) -> None:
    _emit(node, node.stage.flush(), metrics)
    for child in node.children:
        if child.inbox is None:
            _flush(child, metrics)
