"""End-to-end mode: the real daemon pipeline from the source to a ``null://`` sink, per bundle and backend.

For each bundle the already activated runner of its speed row is reused. ``e2e_frames`` frames go
through :func:`jetseg.jetson.daemon.assembly.run_pipeline` (capture + preprocess | infer | postprocess | sink
threads) in ``e2e_segments`` runs, alternating with bare ``runner.infer`` timing segments of the same
expected duration (bare, pipeline, bare, pipeline, ..., bare), so that machine noise hits both alike.
End-to-end fps = processed frames / time over the pipeline runs (each from its first to its last processed
frame); bare fps = calls / time over the bare segments; pipeline efficiency = end-to-end fps / bare fps.

Efficiency of each pipeline run against the mean of the bare segments around it gives the spread
(``pipeline_efficiency_spread``); an efficiency above 1 is noise within that spread, never a gain, and the row
says so (``pipeline_efficiency_note``).

Latency: the throughput runs above fill the queues (a finite source is read as fast as it goes), so their
capture-to-sink latency is mostly queueing. With ``e2e_fps`` (30 by default) a second, *paced* run follows:
the source delivers frames at a scanner's rate and the frame's capture stamp is the moment it came to exist
(the synthetic source's schedule; live sources stamp from their own clock, docs/sources.md), so time a frame
waits in the source counts. It reports capture-to-mask p50/p99 (mask ready: the end of post-processing;
capture-to-sink too), the per-stage breakdown and the latency the pipeline adds to the model,
``added_latency_ms`` (p50, p99, spread): frame by frame, capture-to-mask minus that frame's own
``runner.infer`` time, so never negative (the inference lies inside the frame's capture-to-mask interval).
A difference of two noisy series (capture-to-mask minus a separate series of bare calls) is not a latency: on
a shared machine it went below zero (issue 22), so it is no longer reported; the bare runner called alone at the
same rate stays in the report as ``bare_latency_ms`` for context.
The paced run alternates pipeline segments with bare paced calls, as the throughput runs do.

A synthetic source is replayed from a small cache of rendered frames (``loop=16``) unless the URI says
otherwise: rendering a synthetic scan is not work a scanner's pipeline does. Other sources (video files,
image folders) are used as given, decoding included.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Sequence, Tuple

from jetseg.benchmarks.inputs import FrameRois
from jetseg.benchmarks.timing import cycling, measure, measure_paced, summarize
from jetseg.errors import JetsegError
from jetseg.jetson.frames.roi import RoiMode

log = logging.getLogger("jetseg.bench")

SYNTHETIC_LOOP = 16
#: bare runner calls at the paced rate, spread before, between and after the paced pipeline segments
PACED_BARE_CALLS = 150
#: the paced run is split in up to this many pipeline segments (at least 50 frames each)
PACED_SEGMENTS = 3


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


def paced_source(data: str, frames: int, fps: float) -> Dict[str, Any]:
    """Source URI, options and reader pacing of the paced latency run: a synthetic source paces itself (its
    frames are stamped with their schedule); other sources are paced by the reader at ``fps``."""
    from jetseg.jetson.sources import parse_uri

    kind = parse_uri(data)[0]
    out = e2e_source(data, frames)
    if kind == "synthetic":
        # endless like a scanner (the run stops after ``frames``): frames it skips are drops, not an early end;
        # None overrides a frames= in the URI's query (a source that ends would be reopened like a lost one)
        out["options"]["frames"] = None
        out["options"].update(fps=int(round(fps)), realtime=True)
        out["reader_realtime"] = False
    else:
        out["reader_realtime"] = True
    return out


def _segments(total: int, count: int) -> List[int]:
    """Split ``total`` frames into ``count`` nearly equal segments of at least 2 frames."""
    count = max(1, min(count, total // 2))
    return [total // count + (1 if i < total % count else 0) for i in range(count)]


def run_e2e(rows: Sequence[Any], data: Any, frames: Sequence[Any], rois: FrameRois, settings: Any,
            samples: Dict[str, List[float]]) -> List[Dict[str, Any]]:
    """One end-to-end row per runner row (batch 1); capture-to-sink latencies go into ``samples``. The
    pipeline decides its ROI with ``rois.mode`` (the mode the bench's other rows were cropped by)."""
    from jetseg.benchmarks.plots import row_label

    if not isinstance(data, str):
        raise JetsegError("end-to-end mode needs a source URI for --data (the pipeline reads it itself), got "
                          "frames already read")
    out = []
    for row in rows:
        item, latencies = _e2e_row(row, data, frames, rois, settings)
        out.append(item)
        samples[row_label(item)] = latencies
    return out


def _pipeline_run(row: Any, uri: str, options: Dict[str, Any], count: int, roi: RoiMode,
                  realtime: bool = False) -> Tuple[Dict[str, Any], Any]:
    """One run of the daemon pipeline on the row's activated runner into ``null://``: its summary and metrics."""
    from jetseg.jetson.daemon.assembly import run_pipeline
    from jetseg.jetson.frames.metrics import Metrics

    metrics = Metrics(info={"model": row.name, "backend": row.backend, "source": uri})
    summary = run_pipeline(row.bundle, uri, ["null://"], runner=row.runner, max_frames=count,
                           source_options=options, realtime=realtime, metrics=metrics, roi=roi)
    return summary, metrics


def _dropped(runs: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """Frames dropped over several pipeline runs, by where (``source``, ``pipeline``)."""
    out = {"source": 0, "pipeline": 0}
    for run in runs:
        for where, n in run["dropped"].items():
            out[where] = out.get(where, 0) + int(n)
    return out


def _e2e_row(row: Any, data: str, frames: Sequence[Any], rois: FrameRois,
             settings: Any) -> Tuple[Dict[str, Any], List[float]]:
    step = cycling(row.runner.infer, rois.inputs(row.bundle.spec, frames))
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
        source = e2e_source(data, count)
        summary, metrics = _pipeline_run(row, source["uri"], source["options"], count, rois.mode)
        if summary["frames"] < 2 or summary["fps"] <= 0:
            raise JetsegError("the end-to-end run of %s delivered %d frame(s); give a source with at least 2 "
                              "frames" % (row.name, summary["frames"]))
        latencies += [v * 1e3 for r in metrics.e2e.values() for v in r.values()]
        runs.append(summary)
    bare(segments[-1])
    # each pipeline run against the bare segments before and after it
    seg_eff = [r["fps"] / ((bare_fps[i] + bare_fps[i + 1]) / 2.0) for i, r in enumerate(runs)]
    e2e_fps = sum(r["frames"] - 1 for r in runs) / sum((r["frames"] - 1) / r["fps"] for r in runs)
    bare_stats = summarize(bare_ms)
    lat = summarize(latencies)
    dropped = dict(_dropped(runs), sink=sum(int(s.get("dropped", 0)) for r in runs for s in r["sinks"].values()))
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
        "pipeline_efficiency_segments": [round(v, 4) for v in seg_eff],
        "pipeline_efficiency_spread": [round(min(seg_eff), 4), round(max(seg_eff), 4)],
        # work per frame outside the model (capture, preprocess, postprocess, sink) relative to inference
        "pipeline_overhead_ratio": round(outside / infer_ms, 5) if infer_ms else None,
        "source": e2e_source(data, settings.e2e_frames), "runner": row.runner.describe(),
        "roi": {"mode": rois.mode, "roi": runs[-1].get("roi")},  # the box the pipeline decided on the stream
    }
    if e2e_fps > bare_stats.fps:
        item["pipeline_efficiency_note"] = ("above 1 is measurement noise (runs ranged %.3f-%.3f), not a gain: "
                                            "the pipeline cannot be faster than its model" % (min(seg_eff),
                                                                                              max(seg_eff)))
    if settings.e2e_fps:
        item["paced"] = _paced(row, data, rois.mode, settings, bare_stats, step)
    return item, lat.samples_ms


def _paced(row: Any, data: str, roi: RoiMode, settings: Any, bare: Any,
           step: Callable[[], Any]) -> Dict[str, Any]:
    """The paced latency run (see the module docstring): bare runner calls at the same rate, then the pipeline,
    in ``PACED_SEGMENTS`` alternations, and bare calls again (a drift of the machine's speed hits both)."""
    total = settings.e2e_paced_frames
    segments = _segments(total, min(PACED_SEGMENTS, max(1, total // 50)))
    source = paced_source(data, total, settings.e2e_fps)
    log.info("end-to-end latency: %s on %s, %d frames paced at %g fps in %d segment(s)", row.name, row.backend,
             total, settings.e2e_fps, len(segments))
    calls = max(2, min(total, PACED_BARE_CALLS) // (len(segments) + 1))
    paced_bare = measure_paced(step, calls, settings.e2e_fps)
    runs: List[Dict[str, Any]] = []
    samples: Dict[str, List[float]] = {"to_mask": [], "to_sink": [], "source_delay": [], "around_model": []}
    for count in segments:
        summary, metrics = _pipeline_run(row, source["uri"], source["options"], count, roi,
                                         source["reader_realtime"])
        runs.append(summary)
        samples["to_mask"] += list(metrics.to_mask.values())
        samples["to_sink"] += [v for r in metrics.e2e.values() for v in r.values()]
        samples["source_delay"] += list(metrics.source_delay.values())
        samples["around_model"] += list(metrics.around_model.values())
        paced_bare += measure_paced(step, calls, settings.e2e_fps)
    ms = {name: summarize([v * 1e3 for v in values]) for name, values in samples.items() if values}
    to_mask, model = ms["to_mask"], summarize(paced_bare)
    stages = dict(runs[-1]["latency_ms"]["stages"])
    stages.pop("capture", None)  # waiting for the next frame of a paced source, not work on this one
    dropped = _dropped(runs)
    return {
        "fps_asked": settings.e2e_fps, "fps": round(min(r["fps"] for r in runs), 3),
        "frames": sum(r["frames"] for r in runs), "segments": len(runs), "dropped": dropped,
        "scheduler": runs[-1]["scheduler"],
        "latency_ms": to_mask.latency_ms(),
        "latency_basis": ("capture to mask (end of post-processing); captured = when the frame came to exist (%s)"
                          % ("the synthetic source's schedule" if not source["reader_realtime"]
                             else "the source's own stamp")),
        "capture_to_sink_ms": ms["to_sink"].latency_ms() if "to_sink" in ms else {},
        # where a frame's capture-to-mask time goes: the source handing it over, then each stage (last segment)
        "source_delay_ms": ms["source_delay"].latency_ms() if "source_delay" in ms else {},
        "stage_latency_ms": stages,
        "bare_latency_ms": {"p50": round(model.p50, 4), "p99": round(model.p99, 4),
                            "basis": "runner.infer alone, called at the same rate (%d calls)" % model.runs},
        "bare_back_to_back_ms": {"p50": round(bare.p50, 4), "p99": round(bare.p99, 4)},
        # the pipeline's own work per frame (>= 0 by construction), with its spread
        "added_latency_ms": ms["around_model"].latency_ms() if "around_model" in ms else {},
        "added_latency_basis": "per frame: capture-to-mask minus that frame's own runner.infer time",
        "source": {"uri": source["uri"], "options": source["options"]},
    }
