"""The pipeline as a small graph: nodes hold stages, edges say where a stage's items go.

A :class:`Node`'s ``inbox`` is set by a scheduler: None when the node runs in the thread of the node that
feeds it (its items are processed at once, no hand-over), or a :class:`~jetseg.jetson.frames.slot.Slot` /
:class:`~jetseg.jetson.frames.slot.Queue` when it runs in a thread of its own.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Union

from jetseg.jetson.frames.slot import Queue, Slot
from jetseg.jetson.pipeline.stages import Stage

Inbox = Union[Slot, Queue]


class Node:
    """One stage in the graph, and the nodes its items go to (every child gets every item)."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.children: List[Node] = []
        self.inbox: Optional[Inbox] = None

    @property
    def name(self) -> str:
        return self.stage.name

    def to(self, *stages: Stage) -> List[Node]:
        """Send this node's items to each of ``stages``; returns their nodes."""
        nodes = [Node(stage) for stage in stages]
        self.children.extend(nodes)
        return nodes

    def then(self, stage: Stage) -> Node:
        """Send this node's items to ``stage``; returns its node (for chaining)."""
        return self.to(stage)[0]

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()

    def same_thread(self) -> Iterator[Node]:
        """This node and the nodes below it reached without a hand-over (they run in this node's thread)."""
        yield self
        for child in self.children:
            if child.inbox is None:
                yield from child.same_thread()

    def handovers(self) -> Iterator[Node]:
        """The nodes right after this node's thread: they start threads of their own."""
        for node in self.same_thread():
            for child in node.children:
                if child.inbox is not None:
                    yield child


def chain(first: Stage, *rest: Stage, fan_out: Sequence[Stage] = ()) -> Node:
    """``first -> rest[0] -> ... -> rest[-1] -> every stage of fan_out``; returns the root node."""
    root = node = Node(first)
    for stage in rest:
        node = node.then(stage)
    node.to(*fan_out)
    return root
