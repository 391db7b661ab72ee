"""End-to-end mode: the real daemon pipeline from the source to a ``null://`` sink, per bundle and backend.

For each bundle the already activated runner of its speed row is reused and timed three ways in a row:
bare ``runner.infer`` (half of ``min_time``), the pipeline (``e2e_frames`` frames through
:func:`jetseg.jetson.pipeline.run_pipeline`: capture + preprocess | infer | postprocess | sink threads),
bare ``runner.infer`` again. Pipeline efficiency = end-to-end fps / mean of the two bare fps figures, so
that machine noise between the phases is bracketed.

A synthetic source is replayed from a small cache of rendered frames (``loop=16``) unless the URI says
otherwise: rendering a synthetic scan is not work a scanner's pipeline does. Other sources (video files,
image folders) are used as given, decoding included.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Sequence

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


def run_e2e(rows: Sequence[Any], data: Any, frames: Sequence[Any], settings: Any,
            samples: Dict[str, List[float]]) -> List[Dict[str, Any]]:
    """One end-to-end row per runner row (batch 1); capture-to-sink latencies go into ``samples``."""
    from jetseg.benchmarks.plots import row_label
    from jetseg.jetson.metrics import Metrics
    from jetseg.jetson.pipeline import run_pipeline

    if not isinstance(data, str):
        raise JetsegError("end-to-end mode needs a source URI for --data (the pipeline reads it itself), got "
                          "frames already read")
    source = e2e_source(data, settings.e2e_frames)
    out = []
    for row in rows:
        spec = row.bundle.spec
        inputs = [spec.preprocess(f.image) for f in frames]
        state = {"i": 0}

        def step(inputs: List[Any] = inputs, state: Dict[str, int] = state, runner: Any = row.runner) -> Any:
            state["i"] += 1
            return runner.infer(inputs[state["i"] % len(inputs)])

        bare_time = max(settings.min_time / 2.0, 0.01)
        before = measure(step, warmup=settings.warmup, min_time=bare_time, min_runs=settings.min_runs)
        metrics = Metrics(info={"model": row.name, "backend": row.backend, "source": data})
        log.info("end-to-end: %s on %s, %d frames from %s", row.name, row.backend, settings.e2e_frames, data)
        summary = run_pipeline(row.bundle, source["uri"], ["null://"], runner=row.runner,
                               max_frames=settings.e2e_frames, source_options=source["options"], metrics=metrics)
        after = measure(step, warmup=0, min_time=bare_time, min_runs=settings.min_runs)
        latencies = [v * 1e3 for r in metrics.e2e.values() for v in r.values()]
        if not latencies or summary["frames"] < 2:
            raise JetsegError("the end-to-end run of %s delivered %d frame(s); give a source with at least 2 "
                              "frames" % (row.name, summary["frames"]))
        lat = summarize(latencies)
        bare_fps = (before.fps + after.fps) / 2.0
        dropped = sum(summary["dropped"].values()) + sum(s.get("dropped", 0) for s in summary["sinks"].values())
        item: Dict[str, Any] = {
            "bundle": row.name, "bundle_path": str(row.bundle.path), "backend": row.backend,
            "precision": row.bundle.precision, "kind": "e2e", "role": row.role, "batch": 1,
            "fps": round(summary["fps"], 3), "fps_wall": summary["fps_wall"],
            "latency_ms": lat.latency_ms(), "latency_basis": "capture to sink (null://)",
            "stage_latency_ms": summary["latency_ms"]["stages"],
            "frames": summary["frames"], "dropped": dropped, "dropped_detail": summary["dropped"],
            "bare_fps": round(bare_fps, 3), "bare_fps_before": round(before.fps, 3),
            "bare_fps_after": round(after.fps, 3),
            "pipeline_efficiency": round(summary["fps"] / bare_fps, 5) if bare_fps > 0 else None,
            "source": source, "runner": row.runner.describe(),
        }
        out.append(item)
        samples[row_label(item)] = lat.samples_ms
    return out
