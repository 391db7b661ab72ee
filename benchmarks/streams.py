"""``jetseg bench --streams N``: N paced streams in one daemon (one runner, batched) against N daemons.

Both sides run in processes of their own (started by :func:`measure_streams`, the same interpreter, one
after the other): ``one`` is one process with N streams (:func:`jetseg.jetson.daemon.streams.run_streams`),
``separate`` is N processes with one stream each (``run_pipeline``). Every stream is
``synthetic://<kind>`` paced at ``fps`` (a live source: newest frame wins) for ``duration_s``. Each process
reports its own CPU seconds (user + system, :func:`os.times`) and peak RSS (``ru_maxrss``); the report gives
aggregate fps, per-stream capture-to-mask p50/p99, frames captured / processed / dropped, and the ratios
one / separate for RSS and CPU.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from jetseg.errors import JetsegError

WORKER = "from jetseg.benchmarks.streams import worker; worker()"


def _stream(i: int, kind: str, fps: float) -> Dict[str, Any]:
    return {"name": "s%d" % i, "uri": "synthetic://%s" % kind, "realtime": True, "fps": fps}


def daemon_config(bundle: str, backend: str, options: Dict[str, Any], streams: List[Dict[str, Any]],
                  duration_s: float, batch: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The daemon config (a mapping) of one process: ``streams`` under ``sources:``."""
    return {"model": bundle, "backend": {"name": backend, "options": options}, "sources": streams,
            "batch": batch or {}, "pipeline": {"duration_s": duration_s}, "device": {"telemetry": "off"}}


def worker() -> None:
    """In a child process: run the config given as JSON in ``argv[1]``, print the summary as JSON. One stream
    runs as a daemon runs one source today (``run_pipeline``, no batcher); several through ``run_streams``."""
    from jetseg.bundle import Bundle
    from jetseg.jetson.daemon.assembly import run_pipeline
    from jetseg.jetson.daemon.config import DaemonConfig
    from jetseg.jetson.daemon.streams import run_streams, stream_config

    config = DaemonConfig.from_dict(json.loads(sys.argv[1]))
    summary: Dict[str, Any]
    if len(config.sources) == 1:
        single = stream_config(config, config.streams()[0])
        assert single.model.path is not None  # daemon_config always names the bundle
        bundle = Bundle(single.model.path)
        summary = {"streams": {config.sources[0].name: run_pipeline(bundle, single.source.uri, config=single)}}
    else:
        summary = run_streams(config)
    times = os.times()
    summary["process"] = {"cpu_s": round(times.user + times.system, 3),
                          "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}
    print(json.dumps(summary, default=str))


def _launch(config: Dict[str, Any]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)


def _collect(procs: List[subprocess.Popen], timeout: float) -> List[Dict[str, Any]]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            raise JetsegError("a --streams worker failed (exit %d): %s" % (proc.returncode, last))
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _side(summaries: List[Dict[str, Any]], wall_s: float) -> Dict[str, Any]:
    streams: Dict[str, Any] = {}
    for summary in summaries:
        for name, s in summary["streams"].items():
            mask = s["latency_ms"]["capture_to_mask"]
            streams[name] = {"captured": s["captured"], "frames": s["frames"], "fps": s["fps_wall"],
                             "dropped": s["dropped"], "capture_to_mask_ms": {k: mask.get(k) for k in ("p50", "p99")}}
    frames = sum(s["frames"] for s in streams.values())
    return {"processes": len(summaries), "frames": frames,
            "captured": sum(s["captured"] for s in streams.values()),
            "fps": round(sum(s["fps"] for s in streams.values()), 2),
            "cpu_s": round(sum(p["process"]["cpu_s"] for p in summaries), 3),
            "rss_mb": round(sum(p["process"]["rss_mb"] for p in summaries), 1),
            "wall_s": round(wall_s, 3), "streams": streams,
            "batcher": summaries[0].get("batcher", {}) if len(summaries) == 1 else {}}


def _p99(side: Dict[str, Any]) -> float:
    return max((s["capture_to_mask_ms"]["p99"] or 0.0) for s in side["streams"].values())


def measure_streams(bundle: str, n: int, backend: str = "onnxrt", options: Optional[Dict[str, Any]] = None,
                    fps: float = 30.0, duration_s: float = 10.0, kind: str = "ultrasound",
                    batch: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run N paced streams in one process, then in N processes; return both sides and the ratios.

    Returns:
        ``{"streams", "fps_per_stream", "duration_s", "one": side, "separate": side, "ratios": {"rss", "cpu",
        "fps"}, "p99_vs_separate_ms", "frame_period_ms", "goals": {...}, "load": os.getloadavg()}``; a side is
        ``{"processes", "frames", "captured", "fps", "cpu_s", "rss_mb", "streams": {name: {"captured",
        "frames", "fps", "dropped", "capture_to_mask_ms": {p50, p99}}}, "batcher"}``.
    """
    if not isinstance(n, int) or n < 1:
        raise JetsegError("--streams %r: expected a number of streams >= 1" % (n,))
    options = dict(options or {})
    streams = [_stream(i, kind, fps) for i in range(n)]
    load_before = os.getloadavg()
    start = time.monotonic()
    one = _side(_collect([_launch(daemon_config(bundle, backend, options, streams, duration_s, batch))],
                         duration_s * 3 + 120), time.monotonic() - start)
    start = time.monotonic()
    separate = _side(_collect([_launch(daemon_config(bundle, backend, options, [s], duration_s)) for s in streams],
                              duration_s * 3 + 120), time.monotonic() - start)
    period_ms = 1e3 / fps
    # the worst stream's capture-to-mask p99 in one daemon minus that in N daemons: what batching adds (a
    # difference of two runs, so below zero when one daemon was the faster)
    added = _p99(one) - _p99(separate)
    ratios = {"rss": round(one["rss_mb"] / separate["rss_mb"], 3) if separate["rss_mb"] else None,
              "cpu": round(one["cpu_s"] / separate["cpu_s"], 3) if separate["cpu_s"] else None,
              "fps": round(one["fps"] / separate["fps"], 3) if separate["fps"] else None}
    return {"streams": n, "fps_per_stream": fps, "duration_s": duration_s, "backend": backend,
            "one": one, "separate": separate, "ratios": ratios, "frame_period_ms": round(period_ms, 3),
            "p99_vs_separate_ms": round(added, 3),
            "goals": {"every_frame": one["frames"] >= one["captured"] - n,
                      "p99_vs_separate_within_period": added <= period_ms,
                      "rss_at_most_half": ratios["rss"] is not None and ratios["rss"] <= 0.5,
                      "cpu_at_most_0.8": ratios["cpu"] is not None and ratios["cpu"] <= 0.8},
            "load": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]}}


def streams_markdown(result: Dict[str, Any]) -> str:
    """The report's table: one daemon against N daemons, then the ratios and the goals."""
    one, sep = result["one"], result["separate"]
    lines = ["## %d paced %g fps streams: one daemon against %d daemons" % (result["streams"],
                                                                           result["fps_per_stream"],
                                                                           result["streams"]), "",
             "| | processes | frames / captured | fps (all streams) | capture-to-mask p50 / p99 ms (worst stream) "
             "| CPU s | peak RSS MB (sum) |", "|---|---|---|---|---|---|---|"]
    for label, side in (("one daemon, batched", one), ("separate daemons", sep)):
        p50 = max((s["capture_to_mask_ms"]["p50"] or 0.0) for s in side["streams"].values())
        lines.append("| %s | %d | %d / %d | %.1f | %.1f / %.1f | %.1f | %.0f |"
                     % (label, side["processes"], side["frames"], side["captured"], side["fps"], p50, _p99(side),
                        side["cpu_s"], side["rss_mb"]))
    r = result["ratios"]
    lines += ["", "Ratios one / separate: RSS %s, CPU %s, fps %s; capture-to-mask p99, one daemon minus separate "
              "daemons (worst stream each; a difference of two runs, not a latency): %+.1f ms (goal: at most the "
              "frame period, %.1f ms). Batches: %s. Load average before / after: %s / %s."
              % (r["rss"], r["cpu"], r["fps"], result["p99_vs_separate_ms"], result["frame_period_ms"],
                 one["batcher"].get("sizes"), result["load"]["before"], result["load"]["after"]), "",
              "Goals: " + ", ".join("%s %s" % (k, "met" if v else "MISSED") for k, v in result["goals"].items())]
    return "\n".join(lines) + "\n"
