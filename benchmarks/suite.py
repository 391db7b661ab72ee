"""The benchmark suite: speed, accuracy against FP32, cost and conditions of model bundles, in one run.

    from jetseg.benchmarks.suite import run_benchmark
    report = run_benchmark(["int8-bundle"], reference="fp32-bundle", data="synthetic://ultrasound?frames=50",
                           out_dir="bench-out")
    report["results"][0]["fps"], report["results"][0]["dice_drop"]

Rows: every bundle (the reference first) on every backend asked for (``auto``: the fastest runner here), plus
the peers a user would otherwise use: ONNX Runtime FP32 of the reference (``peer: "onnxrt-fp32"``), OpenVINO
called directly on the reference's and each INT8 bundle's ONNX where OpenVINO is installed (``peer:
"openvino-default"``, ``"openvino-int8"``, :mod:`.peers`), the reference in each reduced float precision the
CPU has (``--precision``; ``peer: "openvino-bf16"``, ``"openvino-f16"``: jetseg's OpenVINO runner with that
precision hint) and the naive loop (``peer: "naive-loop"``: preprocess, PyTorch eager FP32, decode, one frame
at a time). The runner rows are timed together, interleaved round-robin (see
:mod:`jetseg.benchmarks.timing`), so their ratios hold on a noisy machine. The naive loop is timed first and
alone, before any other runtime exists in the process: other runtimes' worker threads (OpenVINO's, ONNX
Runtime's) keep spinning after their calls and slowed PyTorch's own pool 6-12x when interleaved (issue 22).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from jetseg import evaluate
from jetseg.benchmarks import conditions, cost
from jetseg.benchmarks.accuracy import score_row
from jetseg.benchmarks.inputs import BUNDLE, FrameRois, check_same_task, frame_rois, infer_call, load_frames
from jetseg.benchmarks.peers import DirectOpenVino, pytorch_default_threads
from jetseg.benchmarks.rows import (
    NAIVE,
    ORT_PEER,
    OV_FLOAT_PEERS,
    OV_FP32_PEER,
    OV_INT8_PEER,
    REFERENCE_BACKEND,
    Row,
    complete_e2e,
    row_dicts,
    summary,
)
from jetseg.benchmarks.timing import cycling, measure, measure_interleaved
from jetseg.bundle import Bundle, check_out, uri_path
from jetseg.errors import JetsegError, RunnerError
from jetseg.jetson.frames.roi import Roi, RoiMode
from jetseg.jetson.runners.base import Runner
from jetseg.records import BenchReport

log = logging.getLogger("jetseg.bench")

SCHEMA = str(BenchReport.FORMAT)

PathLike = Union[str, Path]

#: ``--precision`` values: the reference always runs in fp32 (the accuracy reference); bf16 and fp16 add
#: OpenVINO rows of the reference in that float precision; auto = every one OpenVINO's CPU plugin offers here
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: ``--precision`` -> OpenVINO's precision hint
_OV_HINTS = {"bf16": "bf16", "fp16": "f16"}


@dataclass
class Settings:
    """How to measure. Times in seconds."""

    backends: List[str] = field(default_factory=lambda: ["auto"])
    frames: int = evaluate.BENCH_FRAMES  # frames read from the source for accuracy (and cycled for timing)
    frames_given: bool = False  # --frames was given: a live --data source may be read (that many frames)
    min_time: float = 3.0  # measured seconds each row must reach
    warmup: int = 5
    min_runs: int = 10
    block_time: float = 0.5  # seconds per row and round (at most min_time / 4, so there are >= 4 rounds)
    settle_time: float = 0.05  # untimed seconds at the start of every block
    max_time: Optional[float] = None  # cap on the whole speed measurement
    batch_sizes: List[int] = field(default_factory=lambda: [1])
    threads: int = 0  # inference threads of CPU runners (0 = jetseg's default: usable cores - 1, at least 1)
    precisions: List[str] = field(default_factory=lambda: ["auto"])  # float precisions of the reference on CPUs
    # the ROI each file is cropped to, decided as calibrate and run decide it (benchmarks/inputs.py): bundle (as
    # the bundles were calibrated, else spec), auto, spec, none or [x, y, w, h]
    roi: RoiMode = BUNDLE
    roi_auto_frames: int = 3  # first frames of each file ``auto`` looks at
    naive: bool = True
    e2e: bool = False
    e2e_frames: int = 300
    e2e_segments: int = 3  # pipeline runs, alternating with bare runner timing
    e2e_fps: float = 30.0  # paced run at a scanner's frame rate for the latency figures (0 = none)
    e2e_paced_frames: int = 300
    peers: bool = True  # OpenVINO called directly, where it is installed
    triton: Optional[Dict[str, Any]] = None  # Triton rows (benchmarks/tritonrows.py TritonSettings as a dict)
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
        if self.e2e_fps < 0 or self.e2e_paced_frames < 2:
            raise JetsegError("--e2e-fps %s with --e2e-paced-frames %s; expected a frame rate >= 0 (0: no paced "
                              "run) and at least 2 frames" % (self.e2e_fps, self.e2e_paced_frames))
        if self.e2e_frames < 2 or self.e2e_segments < 1:
            raise JetsegError("--e2e-frames is %d in %d segment(s); expected at least 2 frames and 1 segment"
                              % (self.e2e_frames, self.e2e_segments))
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise JetsegError("--precision %s; expected a list of %s (auto: fp32 and every reduced float precision "
                              "this CPU has)" % (",".join(self.precisions), ", ".join(PRECISIONS)))
        if self.triton is not None:
            from jetseg.benchmarks.tritonrows import TritonSettings

            TritonSettings(**self.triton).check()
        from jetseg.jetson.runners import AUTO, RUNNERS

        for name in self.backends:
            if name != AUTO:
                RUNNERS.check(name)


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


def _open(row: Row, settings: Settings, naive_threads: int) -> Runner:
    """The runner of a row, not yet activated, with ``--threads`` (the runner applies it when it computes on the
    CPU; 0: jetseg's default); the naive loop runs with ``naive_threads``."""
    from jetseg.jetson.runners import open_runner

    batch = max(settings.batch_sizes)
    if row.peer in (OV_FP32_PEER, OV_INT8_PEER):
        return DirectOpenVino(row.bundle, batch_size=batch, threads=settings.threads)
    options: Dict[str, Any] = {"batch_size": batch,
                               "threads": naive_threads if row.peer == NAIVE else settings.threads}
    if row.precision_hint:
        options["precision_hint"] = row.precision_hint
    return open_runner(row.backend, row.bundle, **options)


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
    if bundle.torchscript_path is None:
        from jetseg.errors import RunnerError
        from jetseg.jetson.runners.torch import architecture

        try:
            architecture(bundle)  # a factory bundle: bench takes no --module, and a bundle never runs code
        except RunnerError as exc:
            return str(exc)
    return None


def plan_rows(reference: Bundle, bundles: Sequence[Bundle], settings: Settings,
              skipped: List[Dict[str, str]]) -> List[Row]:
    """Which rows to measure; rows that cannot run are added to ``skipped`` with the reason."""
    from jetseg.jetson.runners import resolve_backend
    from jetseg.optional import available

    rows: List[Row] = []
    ordered = [(reference, "reference")] + [(b, "candidate") for b in bundles]
    names = dict(zip([id(b) for b, _ in ordered], bundle_names([b for b, _ in ordered])))
    for bundle, role in ordered:
        backends = list(dict.fromkeys(resolve_backend(b, bundle) for b in settings.backends))
        if role == "reference" and REFERENCE_BACKEND not in backends:
            backends.insert(0, REFERENCE_BACKEND)
        for backend in backends:
            if backend == "torch":
                reason = _torch_skip_reason(bundle)
                if reason:
                    skipped.append({"bundle": names[id(bundle)], "backend": backend, "reason": reason})
                    continue
            peer = ORT_PEER if role == "reference" and backend == REFERENCE_BACKEND else None
            rows.append(Row(bundle=bundle, backend=backend, role=role, peer=peer, name=names[id(bundle)]))
    if available("openvino"):
        # every FP32 model in each reduced float precision: two models (a teacher and its distilled student)
        # are compared in the same, fastest precision, never one in bf16 against the other in f32
        hints = _float_hints(settings, skipped, names[id(reference)])
        for bundle, role in ordered:
            if bundle.precision == "fp32":
                rows += [Row(bundle=bundle, backend="openvino", role="peer" if role == "reference" else role,
                             peer=OV_FLOAT_PEERS[hint], name=names[id(bundle)], precision_hint=hint)
                         for hint in hints]
    if settings.peers and available("openvino"):
        for bundle, role in ordered:
            peer = OV_FP32_PEER if bundle.precision == "fp32" else OV_INT8_PEER
            if role == "reference" or bundle.precision != "fp32":
                rows.append(Row(bundle=bundle, backend="openvino", role="peer", peer=peer, name=names[id(bundle)]))
    elif settings.peers:
        skipped.append({"bundle": names[id(reference)], "backend": "openvino", "peer": OV_FP32_PEER,
                        "reason": "OpenVINO peers skipped: openvino is not installed (pip install 'jetseg[openvino]')"})
    if settings.naive and reference.spec.task == "segmentation":  # the naive loop ends at a mask
        reason = _torch_skip_reason(reference)
        if reason:
            skipped.append({"bundle": names[id(reference)], "backend": "torch", "peer": NAIVE,
                            "reason": "naive-loop peer skipped: " + reason})
        else:
            rows.append(Row(bundle=reference, backend="torch", role="peer", peer=NAIVE, kind="frame-to-mask",
                            name=names[id(reference)]))
    return rows


def _float_hints(settings: Settings, skipped: List[Dict[str, str]], name: str) -> List[str]:
    """OpenVINO precision hints of the reduced-float rows asked for and offered by this CPU (the others are
    added to ``skipped`` with the reason). ``auto`` with ``--no-peers`` adds none: only what was asked for."""
    from jetseg.jetson.runners.openvino import cpu_float_precisions

    precisions = settings.precisions
    if "auto" in precisions and not settings.peers:
        return []
    offered = cpu_float_precisions()
    wanted = ["bf16", "fp16"] if "auto" in precisions else [p for p in precisions if p in _OV_HINTS]
    out = []
    for precision in wanted:
        hint = _OV_HINTS[precision]
        if hint in offered:
            out.append(hint)
        elif "auto" not in precisions:
            skipped.append({"bundle": name, "backend": "openvino", "peer": OV_FLOAT_PEERS[hint],
                            "reason": "--precision %s: this CPU has no %s (OpenVINO's CPU plugin offers %s)"
                            % (precision, precision, ", ".join(offered) or "f32 only")})
    return out


def _bar(settings: Settings, total: Optional[int], desc: str) -> Any:
    from jetseg.optional import available

    if not settings.progress or not available("tqdm"):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame" if total else "round", leave=False)


def _measure_accuracy(rows: List[Row], frames: List[Any], rois: FrameRois, settings: Settings) -> Row:
    reference = next(r for r in rows if r.role == "reference" and r.backend == REFERENCE_BACKEND)
    bar = _bar(settings, len(frames) * len(rows), "accuracy")
    tick = (lambda: bar.update(1)) if bar is not None else None
    try:
        reference.outputs = evaluate.run_inputs(reference.bundle.spec, reference.active_runner.infer,
                                                rois.inputs(reference.bundle.spec, frames), tick)
        for row in rows:
            if row is not reference:
                row.outputs = evaluate.run_inputs(row.bundle.spec, row.active_runner.infer,
                                                  rois.inputs(row.bundle.spec, frames), tick)
    finally:
        if bar is not None:
            bar.close()
    for row in rows:
        assert row.outputs is not None and reference.outputs is not None, "every row ran the frames above"
        row.scores = score_row(row.outputs, reference.outputs, frames, hd95=settings.hd95,
                               labels=rois.labels(row.bundle.spec, frames), boxes=rois.boxes)
    return reference


def _timed_calls(rows: List[Row], frames: List[Any], rois: FrameRois,
                 settings: Settings) -> Dict[str, Callable[[], Any]]:
    """name -> one unit of work, per row and batch size (inputs cycle through the frames)."""
    calls: Dict[str, Callable[[], Any]] = {}
    inputs_by_spec: Dict[int, List[np.ndarray]] = {}
    for row in rows:
        spec = row.bundle.spec
        inputs = inputs_by_spec.setdefault(id(spec), rois.inputs(spec, frames))
        for batch in settings.batch_sizes:
            calls["%s@%d" % (row.key, batch)] = cycling(infer_call(row.active_runner), FrameRois.batched(inputs, batch))
    return calls


def _naive_step(row: Row, frames: List[Any], rois: FrameRois) -> Callable[[], Any]:
    """The loop a user writes first: take a frame, preprocess it, run PyTorch eager FP32, argmax; repeat."""
    spec, runner = row.bundle.spec, row.active_runner

    def one(item: Tuple[Any, Roi]) -> Any:
        return spec.decode(runner.infer(spec.preprocess(item[0].image, roi=item[1])))[0]
    return cycling(one, list(zip(frames, rois.boxes)))


def _measure_alone(rows: List[Row], frames: List[Any], rois: FrameRois, settings: Settings) -> None:
    """Time the naive loop on its own, before any other runner is activated (see the module docstring)."""
    for row in rows:
        row.timings[1] = measure(_naive_step(row, frames, rois), warmup=settings.warmup, min_time=settings.min_time,
                                 min_runs=settings.min_runs, max_time=settings.max_time)


def _measure_speed(rows: List[Row], frames: List[Any], rois: FrameRois, settings: Settings) -> None:
    if any(r.kind == "frame-to-mask" and not r.timings for r in rows):
        _measure_alone([r for r in rows if r.kind == "frame-to-mask"], frames, rois, settings)  # nothing else ran
    rows = [r for r in rows if r.kind != "frame-to-mask"]
    calls = _timed_calls(rows, frames, rois, settings)
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
        for batch in settings.batch_sizes:
            row.timings[batch] = stats["%s@%d" % (row.key, batch)]


def _power(rows: List[Row], frames: List[Any], rois: FrameRois, settings: Settings,
           conds: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """Mean board power per runner row, each alone on the first benchmark frame; empty without telemetry."""
    calls = {row.key: functools.partial(infer_call(row.active_runner), rois.inputs(row.bundle.spec, frames[:1])[0])
             for row in rows if row.kind == "runner"}
    return cost.mean_power_w(calls, max(1.0, settings.min_time / 2.0), conds)


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
    if out_dir is not None:  # before any work; never an input, never a folder jetseg did not write
        check_out(out_dir, overwrite, [reference, *bundles, uri_path(data) if isinstance(data, str) else None])
    conds = conditions.collect(command)
    ref_bundle = Bundle(reference)
    candidates = [b for b in (Bundle(p) for p in bundles) if b.path.resolve() != ref_bundle.path.resolve()]
    check_same_task(ref_bundle, candidates)
    if settings.e2e and ref_bundle.spec.task == "registration":
        raise JetsegError("--e2e runs the daemon's pipeline, which does not take registration models yet "
                          "(docs/tasks.md); drop --e2e")
    frames = (load_frames(data, settings.frames, live_ok=settings.frames_given) if isinstance(data, str)
              else list(data)[:settings.frames])
    if not frames:
        raise JetsegError("no frames to benchmark on; give --data a source with at least one frame")
    rois = frame_rois(frames, ref_bundle.spec, settings.roi, [ref_bundle, *candidates], settings.roi_auto_frames)
    skipped: List[Dict[str, str]] = []
    rows = plan_rows(ref_bundle, candidates, settings, skipped)
    for item in skipped:
        log.warning("skipped %s on %s: %s", item["bundle"], item["backend"], item["reason"])
    # the naive loop is what a user writes first: PyTorch's own default threads (read before any runner sets
    # them) unless --threads says
    naive_threads = settings.threads or (pytorch_default_threads() if any(r.peer == NAIVE for r in rows) else 0)
    rows.sort(key=lambda r: r.kind != "frame-to-mask")  # the naive loop first: timed before other runtimes exist
    try:
        for row in list(rows):
            if row.kind != "frame-to-mask" and any(r.kind == "frame-to-mask" and not r.timings for r in rows):
                _measure_alone([r for r in rows if r.kind == "frame-to-mask"], frames, rois, settings)
            try:
                row.runner = _open(row, settings, naive_threads)
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
        ref_row = _measure_accuracy(rows, frames, rois, settings)
        _measure_speed(rows, frames, rois, settings)
        power = _power(rows, frames, rois, settings, conds)
        samples: Dict[str, List[float]] = {}
        results = row_dicts(rows, ref_row, power, samples)
        if settings.e2e:
            from jetseg.benchmarks.e2e import run_e2e

            results += complete_e2e(run_e2e([r for r in rows if r.role != "peer" and r.kind == "runner" and not r.precision_hint],
                                            data, frames, rois, settings, samples), results)
        if settings.triton is not None:  # the reference bundle served by Triton against its local runner
            from jetseg.benchmarks.tritonrows import TritonSettings, triton_rows

            remote, latencies = triton_rows(ref_bundle, rois.inputs(ref_bundle.spec, frames),
                                            TritonSettings(**settings.triton), REFERENCE_BACKEND, settings.threads,
                                            bundle_names([ref_bundle])[0])
            results += remote
            samples.update(latencies)
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
        "roi": rois.record(),
        "reference": {"bundle": bundle_names([ref_bundle])[0], "path": str(ref_bundle.path),
                      "precision": ref_bundle.precision,
                      "backend": REFERENCE_BACKEND},
        "results": results,
        "skipped": skipped,
        "summary": summary(results),
        "cost": {"peak_rss_bytes": cost.peak_rss_bytes()},
    }
    if gates is not None:
        report["gates"] = gates.evaluate(report)
    if out_dir is not None:
        from jetseg.benchmarks.report import write_report

        write_report(report, out_dir, samples=samples, plots=settings.plots, overwrite=overwrite)
    return report
