"""End-to-end mode: the real daemon pipeline from the source to a ``null://`` sink, per bundle and backend.

For each bundle the already activated runner of its speed row is reused. ``e2e_frames`` frames go
through :func:`jetseg.jetson.assembly.run_pipeline` (capture + preprocess | infer | postprocess | sink
threads) in ``e2e_segments`` runs, alternating with bare ``runner.infer`` timing segments of the same
expected duration (bare, pipeline, bare, pipeline, ..., bare), so that machine noise hits both alike.
End-to-end fps = processed frames / time over the pipeline runs (each from its first to its last processed
frame); bare fps = calls / time over the bare segments; pipeline efficiency = end-to-end fps / bare fps.

A synthetic source is replayed from a small cache of rendered frames (``loop=16``) unless the URI says
otherwise: rendering a synthetic scan is not work a scanner's pipeline does. Other sources (video files,
image folders) are used as given, decoding included.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Sequence, Tuple

from jetseg.benchmarks.timing import measure, summarize
from jetseg.errors import JetsegError

log = logging.getLogger("jetseg.bench")

SYNTHETIC_LOOP = 16


def e2e_source(data: str, frames: int) -> Dict[str, Any]:
    """The source URI and options for an end-to-end run of ``frames`` frames."""
    from jetseg.jetson.sources import parse_uri

    kind, _, query = parse_uri(data)
    options: Dict[str, Any] = {}
    if kind == "synthetic":
        options["frames"] = frames
        if "loop" not in query:
            options["loop"] = min(SYNTHETIC_LOOP, frames)
    return {"uri": data, "options": options}


def _segments(total: int, count: int) -> List[int]:
    """Split ``total`` frames into ``count`` nearly equal segments of at least 2 frames."""
    count = max(1, min(count, total // 2))
    return [total // count + (1 if i < total % count else 0) for i in range(count)]


def run_e2e(rows: Sequence[Any], data: Any, frames: Sequence[Any], settings: Any,
            samples: Dict[str, List[float]]) -> List[Dict[str, Any]]:
    """One end-to-end row per runner row (batch 1); capture-to-sink latencies go into ``samples``."""
    from jetseg.benchmarks.plots import row_label

    if not isinstance(data, str):
        raise JetsegError("end-to-end mode needs a source URI for --data (the pipeline reads it itself), got "
                          "frames already read")
    out = []
    for row in rows:
        item, latencies = _e2e_row(row, data, frames, settings)
        out.append(item)
        samples[row_label(item)] = latencies
    return out


def _e2e_row(row: Any, data: str, frames: Sequence[Any], settings: Any) -> Tuple[Dict[str, Any], List[float]]:
    from jetseg.jetson.assembly import run_pipeline
    from jetseg.jetson.metrics import Metrics

    inputs = [row.bundle.spec.preprocess(f.image) for f in frames]
    state = {"i": 0}

    def step() -> Any:
        state["i"] += 1
        return row.runner.infer(inputs[state["i"] % len(inputs)])

    warm = measure(step, warmup=settings.warmup, min_time=0.0, min_runs=max(3, settings.warmup))
    segments = _segments(settings.e2e_frames, settings.e2e_segments)
    log.info("end-to-end: %s on %s, %d frames in %d segment(s) from %s, alternating with bare runner timing",
             row.name, row.backend, settings.e2e_frames, len(segments), data)
    bare_ms: List[float] = []
    bare_fps: List[float] = []

    def bare(frames_equivalent: int) -> None:
        # as long as a pipeline segment of this many frames would take at the bare rate measured so far
        rate = 1000.0 * len(bare_ms) / sum(bare_ms) if bare_ms else warm.fps
        stats = measure(step, warmup=0, min_time=frames_equivalent / max(rate, 1e-6), min_runs=settings.min_runs)
        bare_ms.extend(stats.samples_ms)
        bare_fps.append(round(stats.fps, 3))

    runs: List[Dict[str, Any]] = []
    latencies: List[float] = []
    for count in segments:
        bare(count)
        metrics = Metrics(info={"model": row.name, "backend": row.backend, "source": data})
        source = e2e_source(data, count)
        summary = run_pipeline(row.bundle, source["uri"], ["null://"], runner=row.runner, max_frames=count,
                               source_options=source["options"], metrics=metrics)
        if summary["frames"] < 2 or summary["fps"] <= 0:
            raise JetsegError("the end-to-end run of %s delivered %d frame(s); give a source with at least 2 "
                              "frames" % (row.name, summary["frames"]))
        latencies += [v * 1e3 for r in metrics.e2e.values() for v in r.values()]
        runs.append(summary)
    bare(segments[-1])
    e2e_fps = sum(r["frames"] - 1 for r in runs) / sum((r["frames"] - 1) / r["fps"] for r in runs)
    bare_stats = summarize(bare_ms)
    lat = summarize(latencies)
    dropped = {"source": 0, "pipeline": 0, "sink": 0}
    for r in runs:
        for where, n in r["dropped"].items():
            dropped[where] = dropped.get(where, 0) + int(n)
        dropped["sink"] += sum(int(s.get("dropped", 0)) for s in r["sinks"].values())
    stages = runs[-1]["latency_ms"]["stages"]
    outside = sum(v.get("mean", 0.0) for k, v in stages.items() if k != "infer")
    infer_ms = stages.get("infer", {}).get("mean")
    item: Dict[str, Any] = {
        "bundle": row.name, "bundle_path": str(row.bundle.path), "backend": row.backend,
        "precision": row.bundle.precision, "kind": "e2e", "role": row.role, "batch": 1,
        "fps": round(e2e_fps, 3), "segment_fps": [r["fps"] for r in runs],
        "latency_ms": lat.latency_ms(), "latency_basis": "capture to sink (null://), blocking queues",
        "stage_latency_ms": stages,
        "frames": sum(r["frames"] for r in runs), "dropped": sum(dropped.values()), "dropped_detail": dropped,
        "bare_fps": round(bare_stats.fps, 3), "bare_segment_fps": bare_fps,
        "pipeline_efficiency": round(e2e_fps / bare_stats.fps, 5),
        # work per frame outside the model (capture, preprocess, postprocess, sink) relative to inference
        "pipeline_overhead_ratio": round(outside / infer_ms, 5) if infer_ms else None,
        "source": e2e_source(data, settings.e2e_frames), "runner": row.runner.describe(),
    }
    return item, lat.samples_ms
