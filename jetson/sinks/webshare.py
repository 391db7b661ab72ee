"""One web viewer for several streams: the web sinks of one daemon's streams (``sources:``) that name the same
``http://HOST:PORT`` share one server (one port), each under its stream's name.

Routes of a shared server: ``/`` the grid (a live tile per stream: its picture, name, state and fps, linking
to the stream's page), ``/streams`` the grid's JSON, ``/s/NAME/`` the full viewer of stream NAME with all its
routes below it (``/s/NAME/stream.mjpg``, ``/s/NAME/stats``, ...), ``/health`` every stream's health (the worst
status first), ``/metrics`` the daemon's one exposition (every stream labelled). With one stream, ``/`` is
that stream's viewer, as without sharing.

Sinks share a server when the assembly gives them the same ``SinkContext.extra["viewer_group"]`` (one per
daemon's set of streams) and the same host and port; port 0 then picks one free port for all of them. They
must agree on the token.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from jetseg.errors import SinkError

if TYPE_CHECKING:
    from jetseg.jetson.sinks.web import WebSink
    from jetseg.jetson.sinks.webhttp import Server

_LOCK = threading.Lock()
_SHARED: Dict[Any, Server] = {}
#: the order of health statuses, best first (as jetson/daemon/streams.py orders them)
STATUS_ORDER = ("ok", "starting", "degraded", "stopped")


def attach(sink: WebSink, key: Any, make: Callable[[], Server]) -> Server:
    """The server ``sink`` serves on: the one shared under ``key`` (None: never shared), else a new one from
    ``make()`` (bound, then serving in a thread of its own). ``sink.stream`` becomes its name there."""
    with _LOCK:
        server = _SHARED.get(key) if key is not None else None
        if server is None:
            server = make()
            server.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                             name="jetseg-web", daemon=True)
            server.thread.start()
            if key is not None:
                _SHARED[key] = server
        else:
            other = next(iter(server.sinks.values()))
            if sink.stream in server.sinks:
                raise SinkError("stream %s is already served by the web viewer at %s; give each stream its own "
                                "name" % (sink.stream, other.url))
            if (sink.token or None) != (other.token or None):
                raise SinkError("the web viewer at %s is shared by stream %s and stream %s with different tokens; "
                                "give them one token (web.token)" % (other.url, other.stream, sink.stream))
        server.sinks[sink.stream] = sink
        return server


def detach(sink: WebSink, server: Server) -> bool:
    """Take ``sink`` off ``server``; True when it was the last one (the caller stops the server)."""
    with _LOCK:
        server.sinks.pop(sink.stream, None)
        if server.sinks:
            return False
        for key in [k for k, v in _SHARED.items() if v is server]:
            del _SHARED[key]
        return True


def route(server: Server, path: str) -> Tuple[Optional[WebSink], str]:
    """``(the sink that answers, its route)`` for a request path: ``/s/NAME/...`` goes to stream NAME (route
    ``/...``; ``/s/NAME`` without the slash gets route ``""``: redirect), anything else to the first stream.
    ``(None, path)``: no stream of that name."""
    sinks = dict(server.sinks)  # a copy: streams may join or leave meanwhile
    if path.startswith("/s/"):
        name, slash, rest = path[3:].partition("/")
        sink = sinks.get(name)
        return (sink, "/" + rest if slash else "") if sink is not None else (None, path)
    return next(iter(sinks.values()), None), path


def streams(server: Server) -> List[Dict[str, Any]]:
    """The grid's data: per stream its name, page, health status and reasons, source state, fps, newest frame,
    its age and how long its input has been frozen."""
    out = []
    for name, sink in list(server.sinks.items()):
        context = sink.context
        if context is None:
            continue
        health = dict(context.health() or {})
        stats = dict(context.stats() or {})
        viewer = sink.viewer_stats()
        out.append({"name": name, "page": "s/%s/" % name, "status": health.get("status"),
                    "reasons": health.get("reasons", []), "source_state": stats.get("source_state"),
                    "fps": stats.get("fps"), "frame": viewer.get("frame"), "age_s": viewer.get("age_s"),
                    "input_frozen_s": stats.get("input_frozen_s"), "model": viewer.get("model")})
    return out


def health(server: Server) -> Dict[str, Any]:
    """Every stream's health and the worst status: ``{"status", "streams": {name: health}}``."""
    each = {name: dict(sink.context.health() or {}) for name, sink in list(server.sinks.items())
            if sink.context is not None}
    known = [h.get("status") for h in each.values() if h.get("status") in STATUS_ORDER]
    worst = max(known, key=STATUS_ORDER.index, default="starting")
    return {"status": worst, "streams": each}
