"""The benchmark suite: speed, accuracy against FP32, cost and conditions of model bundles, in one run.

    from jetseg.benchmarks.suite import run_benchmark
    report = run_benchmark(["int8-bundle"], reference="fp32-bundle", data="synthetic://ultrasound?frames=50",
                           out_dir="bench-out")
    report["results"][0]["fps"], report["results"][0]["dice_drop"]

Rows: every bundle (the reference first) on every backend asked for, plus the peers a user would otherwise
use: ONNX Runtime FP32 of the reference (``peer: "onnxrt-fp32"``) and the naive loop (``peer:
"naive-loop"``: preprocess, PyTorch eager FP32, decode, one frame at a time). All rows are timed together,
interleaved round-robin (see :mod:`jetseg.benchmarks.timing`), so their ratios hold on a noisy machine.
"""
from __future__ import annotations

import functools
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from jetseg.benchmarks import conditions, cost
from jetseg.benchmarks.inputs import check_same_task, load_frames
from jetseg.benchmarks.timing import TimingStats, measure_interleaved
from jetseg.bundle import Bundle
from jetseg.errors import JetsegError, RunnerError
from jetseg.jetson import evaluate
from jetseg.jetson.runners.base import Runner

log = logging.getLogger("jetseg.bench")

SCHEMA = "jetseg.bench/1"
NAIVE = "naive-loop"
ORT_PEER = "onnxrt-fp32"
REFERENCE_BACKEND = "onnxrt"

PathLike = Union[str, Path]


@dataclass
class Settings:
    """How to measure. Times in seconds."""

    backends: List[str] = field(default_factory=lambda: ["onnxrt"])
    frames: int = evaluate.BENCH_FRAMES  # frames read from the source for accuracy (and cycled for timing)
    frames_given: bool = False  # --frames was given: a live --data source may be read (that many frames)
    min_time: float = 3.0  # measured seconds each row must reach
    warmup: int = 5
    min_runs: int = 10
    block_time: float = 0.5  # seconds per row and round (at most min_time / 4, so there are >= 4 rounds)
    settle_time: float = 0.05  # untimed seconds at the start of every block
    max_time: Optional[float] = None  # cap on the whole speed measurement
    batch_sizes: List[int] = field(default_factory=lambda: [1])
    threads: int = 0  # intra-op threads of ONNX Runtime and PyTorch (0 = their defaults: one per core)
    naive: bool = True
    e2e: bool = False
    e2e_frames: int = 300
    e2e_segments: int = 3  # pipeline runs, alternating with bare runner timing
    hd95: bool = True
    plots: bool = True
    progress: bool = True

    def check(self) -> None:
        if self.frames < 1:
            raise JetsegError("--frames is %d; expected at least 1" % self.frames)
        if (self.min_time < 0 or self.warmup < 0 or self.min_runs < 1 or self.block_time < 0
                or self.settle_time < 0):
            raise JetsegError("timing settings min_time=%s warmup=%s min_runs=%s block_time=%s settle_time=%s; "
                              "expected min_runs >= 1 and the others >= 0"
                              % (self.min_time, self.warmup, self.min_runs, self.block_time, self.settle_time))
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise JetsegError("--batch %s; expected positive batch sizes such as 1 or 1,4" % self.batch_sizes)
        if self.e2e_frames < 2 or self.e2e_segments < 1:
            raise JetsegError("--e2e-frames is %d in %d segment(s); expected at least 2 frames and 1 segment"
                              % (self.e2e_frames, self.e2e_segments))
        from jetseg.jetson.runners import RUNNERS

        for name in self.backends:
            RUNNERS.check(name)


@dataclass
class Row:
    """One bundle on one backend (or a peer), with what was measured about it."""

    bundle: Bundle
    backend: str
    role: str  # reference | candidate | peer
    peer: Optional[str] = None
    kind: str = "runner"  # runner: runner.infer only; frame-to-mask: preprocess + infer + decode
    runner: Optional[Runner] = None
    rss_added_bytes: Optional[int] = None
    outputs: Optional[evaluate.Outputs] = None
    scores: Dict[str, Any] = field(default_factory=dict)
    timings: Dict[int, TimingStats] = field(default_factory=dict)
    name: str = ""  # how the bundle is called in the report (its directory name, made unique)

    @property
    def active_runner(self) -> Runner:
        """The runner, once the suite has opened it (rows are planned before any runner exists)."""
        assert self.runner is not None, "opened by run_suite before measuring"
        return self.runner

    @property
    def key(self) -> str:
        return "%s/%s%s" % (self.name, self.backend, "/" + self.peer if self.peer == NAIVE else "")


def bundle_names(bundles: Sequence[Bundle]) -> List[str]:
    """Report names for bundles: the directory name (an INT8 sibling keeps its FP32 spec's name), made unique."""
    names: List[str] = []
    for bundle in bundles:
        name = bundle.path.name or bundle.name
        base, n = name, 2
        while name in names:
            name, n = "%s#%d" % (base, n), n + 1
        names.append(name)
    return names


def _open(bundle: Bundle, backend: str, settings: Settings) -> Runner:
    from jetseg.jetson.runners import open_runner

    options: Dict[str, Any] = {"batch_size": max(settings.batch_sizes)}
    if backend in ("onnxrt", "torch") and settings.threads:
        options["threads"] = settings.threads
    return open_runner(backend, bundle, **options)


def _torch_skip_reason(bundle: Bundle) -> Optional[str]:
    """Why the torch backend cannot run this bundle, or None."""
    from jetseg.optional import available

    if bundle.precision != "fp32":
        return "%s is %s; PyTorch eager runs FP32 weights only" % (bundle.name, bundle.precision)
    if bundle.weights_path is None and bundle.torchscript_path is None:
        return "%s has neither model.ts nor weights.pt (what PyTorch runs)" % bundle.name
    if not available("torch"):
        return "PyTorch is not installed"
    if not available("jetseg.jetson.runners.torch"):
        return "the torch runner is not part of this installation"
    return None


def plan_rows(reference: Bundle, bundles: Sequence[Bundle], settings: Settings,
              skipped: List[Dict[str, str]]) -> List[Row]:
    """Which rows to measure; rows that cannot run are added to ``skipped`` with the reason."""
    rows: List[Row] = []
    backends = list(dict.fromkeys(settings.backends))
    ref_backends = backends if REFERENCE_BACKEND in backends else [REFERENCE_BACKEND] + backends
    ordered = [(reference, "reference")] + [(b, "candidate") for b in bundles]
    names = dict(zip([id(b) for b, _ in ordered], bundle_names([b for b, _ in ordered])))
    for bundle, role in ordered:
        for backend in (ref_backends if role == "reference" else backends):
            if backend == "torch":
                reason = _torch_skip_reason(bundle)
                if reason:
                    skipped.append({"bundle": names[id(bundle)], "backend": backend, "reason": reason})
                    continue
            peer = ORT_PEER if role == "reference" and backend == REFERENCE_BACKEND else None
            rows.append(Row(bundle=bundle, backend=backend, role=role, peer=peer, name=names[id(bundle)]))
    if settings.naive:
        reason = _torch_skip_reason(reference)
        if reason:
            skipped.append({"bundle": names[id(reference)], "backend": "torch", "peer": NAIVE,
                            "reason": "naive-loop peer skipped: " + reason})
        else:
            rows.append(Row(bundle=reference, backend="torch", role="peer", peer=NAIVE, kind="frame-to-mask",
                            name=names[id(reference)]))
    return rows


def _bar(settings: Settings, total: Optional[int], desc: str) -> Any:
    from jetseg.optional import available

    if not settings.progress or not available("tqdm"):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame" if total else "round", leave=False)


def _measure_accuracy(rows: List[Row], frames: List[Any], settings: Settings) -> Row:
    reference = next(r for r in rows if r.role == "reference" and r.backend == REFERENCE_BACKEND)
    bar = _bar(settings, len(frames) * len(rows), "accuracy")
    tick = (lambda: bar.update(1)) if bar is not None else None
    try:
        reference.outputs = evaluate.run_frames(reference.bundle.spec, reference.active_runner.infer, frames, tick)
        for row in rows:
            if row is not reference:
                row.outputs = evaluate.run_frames(row.bundle.spec, row.active_runner.infer, frames, tick)
    finally:
        if bar is not None:
            bar.close()
    for row in rows:
        assert row.outputs is not None and reference.outputs is not None, "every row ran the frames above"
        row.scores = evaluate.score_frames(row.outputs, reference.outputs, frames, hd95=settings.hd95)
    return reference


def _timed_calls(rows: List[Row], frames: List[Any], settings: Settings) -> Dict[str, Callable[[], Any]]:
    """name -> one unit of work, per row and batch size (inputs cycle through the frames)."""
    calls: Dict[str, Callable[[], Any]] = {}
    inputs_by_spec: Dict[int, List[np.ndarray]] = {}
    for row in rows:
        spec = row.bundle.spec
        if row.kind == "frame-to-mask":
            calls[row.key + "@1"] = _naive_step(row, frames)
            continue
        inputs = inputs_by_spec.setdefault(id(spec), [spec.preprocess(f.image) for f in frames])
        for batch in settings.batch_sizes:
            if batch == 1:
                batches = inputs
            else:
                batches = [np.concatenate([inputs[(i + j) % len(inputs)] for j in range(batch)])
                           for i in range(0, len(inputs), batch)]
            calls["%s@%d" % (row.key, batch)] = _cycle(row.active_runner.infer, batches)
    return calls


def _cycle(fn: Callable[[Any], Any], items: List[Any]) -> Callable[[], Any]:
    """``fn`` on the next item at each call, round and round."""
    feed = itertools.cycle(items)
    return lambda: fn(next(feed))


def _naive_step(row: Row, frames: List[Any]) -> Callable[[], Any]:
    """The loop a user writes first: take a frame, preprocess it, run PyTorch eager FP32, argmax; repeat."""
    spec, runner = row.bundle.spec, row.active_runner

    def one(frame: Any) -> Any:
        return spec.decode(runner.infer(spec.preprocess(frame.image)))[0]
    return _cycle(one, frames)


def _measure_speed(rows: List[Row], frames: List[Any], settings: Settings) -> None:
    calls = _timed_calls(rows, frames, settings)
    sizes = {name: int(name.rsplit("@", 1)[1]) for name in calls}
    bar = _bar(settings, None, "timing %d rows" % len(calls))
    try:
        stats = measure_interleaved(calls, warmup=settings.warmup, min_time=settings.min_time,
                                    min_runs=settings.min_runs, max_time=settings.max_time,
                                    batch_sizes=sizes, block_time=min(settings.block_time, settings.min_time / 4.0),
                                    settle_time=settings.settle_time,
                                    progress=(lambda n: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    for row in rows:
        for batch in ([1] if row.kind == "frame-to-mask" else settings.batch_sizes):
            row.timings[batch] = stats["%s@%d" % (row.key, batch)]


def _power(rows: List[Row], frames: List[Any], settings: Settings,
           conds: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """Mean board power per runner row, each alone on the first benchmark frame; empty without telemetry."""
    calls = {row.key: functools.partial(row.active_runner.infer, row.bundle.spec.preprocess(frames[0].image))
             for row in rows if row.kind == "runner"}
    return cost.mean_power_w(calls, max(1.0, settings.min_time / 2.0), conds)


def _round(value: Any, digits: int = 5) -> Any:
    return None if value is None else round(float(value), digits)


def _row_dicts(rows: List[Row], reference: Row, power: Dict[str, Optional[float]],
               samples: Dict[str, List[float]]) -> List[Dict[str, Any]]:
    """The report's rows (one per row and batch size); latency samples go into ``samples`` by plot label."""
    from jetseg.benchmarks.plots import row_label

    ref_size = cost.file_size(reference.bundle.model_path)
    out = []
    for row in rows:
        vs_ref, vs_labels = row.scores["vs_reference"], row.scores["vs_labels"]
        drop = evaluate.dice_drop(row.scores)
        size = cost.file_size(row.bundle.model_path)
        for batch, stats in sorted(row.timings.items()):
            base = reference.timings.get(batch)
            watts = power.get(row.key)
            item: Dict[str, Any] = {
                "bundle": row.name, "bundle_path": str(row.bundle.path), "backend": row.backend,
                "precision": row.bundle.precision, "kind": row.kind, "role": row.role, "batch": batch,
                "fps": _round(stats.fps, 3), "latency_ms": stats.latency_ms(), "runs": stats.runs,
                "fps_median": _round(batch * 1000.0 / stats.p50, 3),
                "speedup_vs_reference": _round(stats.fps / base.fps, 4) if base else None,
                "speedup_vs_reference_median": _round(base.p50 / stats.p50, 4) if base else None,
                "size_bytes": size, "size_ratio_vs_reference": _round(size / ref_size, 4),
                "rss_added_bytes": row.rss_added_bytes,
                "dice_vs_reference": _round(vs_ref["dice"]), "iou_vs_reference": _round(vs_ref["iou"]),
                "hd95_vs_reference": _round(vs_ref.get("hd95"), 3),
                "pixel_agreement": _round(vs_ref["pixel_agreement"], 6),
                "logit_error": vs_ref.get("logit_error"),
                "dice_vs_labels": _round(vs_labels["dice"]) if vs_labels else None,
                "iou_vs_labels": _round(vs_labels["iou"]) if vs_labels else None,
                "hd95_vs_labels": _round(vs_labels.get("hd95"), 3) if vs_labels else None,
                "per_class": {"vs_reference": vs_ref["per_class"],
                              "vs_labels": vs_labels["per_class"] if vs_labels else None},
                "dice_drop": _round(drop["dice_drop"]), "dice_drop_basis": drop["dice_drop_basis"],
                "power_w": _round(watts, 3) if watts else "n/a",
                "fps_per_watt": _round(stats.fps / watts, 3) if watts else "n/a",
                "runner": row.active_runner.describe(),
            }
            if row.peer:
                item["peer"] = row.peer
            out.append(item)
            samples[row_label(item)] = stats.samples_ms
    return out


def _complete_e2e(e2e: List[Dict[str, Any]], results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Give end-to-end rows the common keys: size and accuracy of the same model and backend (batch 1),
    and their speed-up against the reference's end-to-end row."""
    ref = next((r for r in e2e if r["role"] == "reference" and r["backend"] == REFERENCE_BACKEND), None)
    for row in e2e:
        twin = next(r for r in results if r["bundle"] == row["bundle"] and r["backend"] == row["backend"]
                    and r["kind"] == "runner" and r["batch"] == 1)
        for key in ("size_bytes", "size_ratio_vs_reference", "dice_vs_reference", "dice_drop", "dice_drop_basis",
                    "dice_vs_labels"):
            row.setdefault(key, twin.get(key))
        row["accuracy_from"] = "the runner row of the same bundle and backend (same model, same masks)"
        row.setdefault("power_w", "n/a")
        row.setdefault("fps_per_watt", "n/a")
        row["speedup_vs_reference"] = _round(row["fps"] / ref["fps"], 4) if ref and ref["fps"] else None
    return e2e


def _summary(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The headline figures, read from the rows: per candidate, speed-up and Dice drop vs FP32,
    pipeline efficiency, and how much faster than the naive loop."""
    naive = next((r for r in results if r.get("peer") == NAIVE), None)
    out: Dict[str, Any] = {}
    for r in results:
        if r["role"] != "candidate" or r["kind"] not in ("runner", "e2e"):
            continue
        key = "%s/%s@%d" % (r["bundle"], r["backend"], r["batch"])
        entry = out.setdefault(key, {"precision": r["precision"]})
        if r["kind"] == "runner":
            entry.update(speedup_vs_reference=r["speedup_vs_reference"],
                         speedup_vs_reference_median=r["speedup_vs_reference_median"], dice_drop=r["dice_drop"],
                         dice_drop_basis=r["dice_drop_basis"], size_ratio_vs_reference=r["size_ratio_vs_reference"])
            if naive:
                entry["speedup_vs_naive_loop"] = _round(r["fps"] / naive["fps"], 4)
        else:
            entry.update(pipeline_efficiency=r["pipeline_efficiency"], e2e_fps=r["fps"],
                         pipeline_overhead_ratio=r.get("pipeline_overhead_ratio"))
            if naive:
                entry["e2e_speedup_vs_naive_loop"] = _round(r["fps"] / naive["fps"], 4)
    return out


def run_benchmark(bundles: Sequence[PathLike], reference: PathLike, data: Union[str, List[Any]],
                  out_dir: Optional[PathLike] = None, settings: Optional[Settings] = None,
                  gates: Optional[Any] = None, overwrite: bool = False,
                  command: Optional[str] = None) -> Dict[str, Any]:
    """Benchmark ``bundles`` against the FP32 ``reference`` on frames from ``data``; return the report.

    Args:
        bundles: candidate bundle directories (typically INT8); may be empty (reference and peers only).
        reference: the FP32 reference bundle.
        data: a source URI (``synthetic://ultrasound?frames=50``, a video, an image folder, ...) or frames
            already read from a source (a list of :class:`~jetseg.jetson.sources.Frame`).
        out_dir: where to write report.json, report.md and the plots (atomically); None writes nothing.
        settings: how to measure (:class:`Settings`).
        gates: a :class:`~jetseg.benchmarks.gates.Gates`; its verdicts go into ``report["gates"]``.
        overwrite: replace an existing ``out_dir``.
        command: the command line to record (default: this process's).
    """
    settings = settings or Settings()
    settings.check()
    if out_dir is not None and Path(out_dir).exists() and not overwrite:
        raise JetsegError("%s already exists; choose another --out or pass --overwrite" % out_dir)
    conds = conditions.collect(command)
    ref_bundle = Bundle(reference)
    candidates = [b for b in (Bundle(p) for p in bundles) if b.path.resolve() != ref_bundle.path.resolve()]
    check_same_task(ref_bundle, candidates)
    frames = (load_frames(data, settings.frames, live_ok=settings.frames_given) if isinstance(data, str)
              else list(data)[:settings.frames])
    if not frames:
        raise JetsegError("no frames to benchmark on; give --data a source with at least one frame")
    skipped: List[Dict[str, str]] = []
    rows = plan_rows(ref_bundle, candidates, settings, skipped)
    for item in skipped:
        log.warning("skipped %s on %s: %s", item["bundle"], item["backend"], item["reason"])
    try:
        for row in list(rows):
            try:
                row.runner = _open(row.bundle, row.backend, settings)
            except RunnerError as exc:
                if row.role != "peer":
                    raise
                rows.remove(row)  # a peer the bundle cannot support is skipped with the reason, not fatal
                skipped.append({"bundle": row.name, "backend": row.backend, "peer": str(row.peer),
                                "reason": "%s peer skipped: %s" % (row.peer, exc)})
                log.warning("skipped the %s peer: %s", row.peer, exc)
                continue
            before = cost.rss_bytes()
            row.runner.activate()
            row.rss_added_bytes = max(0, cost.rss_bytes() - before)
        ref_row = _measure_accuracy(rows, frames, settings)
        _measure_speed(rows, frames, settings)
        power = _power(rows, frames, settings, conds)
        samples: Dict[str, List[float]] = {}
        results = _row_dicts(rows, ref_row, power, samples)
        if settings.e2e:
            from jetseg.benchmarks.e2e import run_e2e

            results += _complete_e2e(run_e2e([r for r in rows if r.role != "peer" and r.kind == "runner"],
                                             data, frames, settings, samples), results)
    finally:
        for row in rows:
            if row.runner is not None:
                row.runner.deactivate()
    conds["load_average_end"] = conditions.load_average()
    conds["versions"] = conditions.versions()  # again at the end: now the modules that ran are loaded
    conds["threads"] = conditions.threads()
    report: Dict[str, Any] = {
        "schema": SCHEMA,
        "conditions": conds,
        "settings": {k: v for k, v in vars(settings).items() if k not in ("progress", "plots")},
        "data": {"source": data if isinstance(data, str) else "frames given by the caller",
                 "frames": len(frames), "labelled_frames": sum(1 for f in frames if f.label is not None),
                 "frame_shape": list(frames[0].image.shape)},
        "reference": {"bundle": bundle_names([ref_bundle])[0], "path": str(ref_bundle.path),
                      "precision": ref_bundle.precision,
                      "backend": REFERENCE_BACKEND},
        "results": results,
        "skipped": skipped,
        "summary": _summary(results),
        "cost": {"peak_rss_bytes": cost.peak_rss_bytes()},
    }
    if gates is not None:
        report["gates"] = gates.evaluate(report)
    if out_dir is not None:
        from jetseg.benchmarks.report import write_report

        write_report(report, out_dir, samples=samples, plots=settings.plots, overwrite=overwrite)
    return report
