"""The report's rows and headline figures, read from what the suite measured.

Every row says what it really ran in (``ran_in``: ``f32``, ``bf16``, ``f16`` or ``int8``, read back from the
compiled model by its runner, never assumed from the bundle). The headline speed-up is against the fastest
float row of the same run and batch size (``speedup_vs_fastest_float``, ``fastest_float``: whichever of ONNX
Runtime FP32, OpenVINO f32, bf16 or f16, through jetseg or called directly, was fastest); the exact-FP32 rows
(``ran_in: f32``) give the footnote ``speedup_vs_best_fp32`` and the reference ``speedup_vs_reference``
(ONNX Runtime FP32, also the accuracy reference). Where an INT8 row is not faster than the fastest float, its
summary entry says so and recommends that float precision (``int8_verdict``), so that a headline never rests on
a weak baseline. An INT8 bundle calibrated for TensorRT (``int8_form: "tensorrt"``: float weights with Q/DQ pairs,
the layout TensorRT 8.5 builds from) is labelled as such: it is made for engines, not for CPU runtimes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from jetseg import evaluate
from jetseg.benchmarks import cost
from jetseg.benchmarks.accuracy import FLOW_KEYS, IMAGE_KEYS, accuracy_columns
from jetseg.benchmarks.timing import TimingStats
from jetseg.bundle import Bundle
from jetseg.jetson.runners.base import Runner

NAIVE = "naive-loop"
ORT_PEER = "onnxrt-fp32"
#: OpenVINO called directly (``Core.compile_model`` and a call), on the reference's and each INT8 bundle's ONNX
OV_FP32_PEER = "openvino-default"  # OpenVINO's defaults: bf16 float parts on a CPU with BF16 (ran_in says)
OV_INT8_PEER = "openvino-int8"
#: the reference's model through jetseg's OpenVINO runner in a reduced float precision (``--precision``)
OV_FLOAT_PEERS = {"bf16": "openvino-bf16", "f16": "openvino-f16"}
#: what ``ran_in`` calls float execution
FLOAT_RUNS = ("f32", "bf16", "f16")
REFERENCE_BACKEND = "onnxrt"

INT8_FORMS = {
    "tensorrt": "INT8 in TensorRT form (float weights with Q/DQ pairs, made for TensorRT engines; CPU runtimes "
                "run it slowly: not a CPU INT8 figure)",
    "cpu": "INT8 in CPU form (calibrate --target cpu)",
}


@dataclass
class Row:
    """One bundle on one backend (or a peer), with what was measured about it."""

    bundle: Bundle
    backend: str
    role: str  # reference | candidate | peer
    peer: Optional[str] = None
    kind: str = "runner"  # runner: runner.infer only; frame-to-mask: preprocess + infer + decode
    precision_hint: Optional[str] = None  # OpenVINO float precision of an ``openvino-bf16``/``-f16`` row
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
        return "%s/%s%s" % (self.name, self.backend, "/" + self.peer if self.peer and self.peer != ORT_PEER else "")


def int8_form(bundle: Bundle) -> Optional[str]:
    """``"tensorrt"`` or ``"cpu"`` for a calibrated bundle (its calibration.json's target), else None."""
    if bundle.precision != "int8":
        return None
    record = bundle.calibration()
    return record.target if record is not None else None


def outliers(stats: TimingStats) -> Dict[str, Any]:
    """How many calls took more than twice the median, and the worst one; ``flagged`` when more than 1 % did
    or one took more than 5x (a burst of load, a garbage collection, a page fault)."""
    p50 = stats.p50 or 1e-9
    slow = sum(1 for v in stats.samples_ms if v > 2.0 * p50)
    share = slow / float(max(1, len(stats.samples_ms)))
    return {"calls_over_2x_p50": slow, "share": round(share, 4), "max_over_p50": round(stats.max / p50, 2),
            "p99_over_p50": round(stats.p99 / p50, 2), "flagged": share > 0.01 or stats.max > 5.0 * p50}


def _round(value: Any, digits: int = 5) -> Any:
    return None if value is None else round(float(value), digits)


def row_label(row: Dict[str, Any]) -> str:
    """``bundle/backend`` (``/peer`` for the peers other than the reference itself)."""
    peer = row.get("peer")
    return "%s/%s%s" % (row["bundle"], row["backend"], "/" + peer if peer and peer != ORT_PEER else "")


def row_dicts(rows: List[Row], reference: Row, power: Dict[str, Optional[float]],
              samples: Dict[str, List[float]]) -> List[Dict[str, Any]]:
    """The report's rows (one per row and batch size); latency samples go into ``samples`` by plot label."""
    from jetseg.benchmarks.plots import row_label as plot_label

    ref_size = cost.file_size(reference.bundle.model_path)
    out = []
    for row in rows:
        size = cost.file_size(row.bundle.model_path)
        bundle_bytes = cost.bundle_bytes(row.bundle)
        for batch, stats in sorted(row.timings.items()):
            base = reference.timings.get(batch)
            watts = power.get(row.key)
            item: Dict[str, Any] = {
                "bundle": row.name, "bundle_path": str(row.bundle.path), "backend": row.backend,
                "precision": row.bundle.precision, "int8_form": int8_form(row.bundle), "kind": row.kind,
                "role": row.role, "batch": batch,
                "fps": _round(stats.fps, 3), "latency_ms": stats.latency_ms(), "runs": stats.runs,
                "fps_median": _round(batch * 1000.0 / stats.p50, 3),
                "speedup_vs_reference": _round(stats.fps / base.fps, 4) if base else None,
                "speedup_vs_reference_median": _round(base.p50 / stats.p50, 4) if base else None,
                "outliers": outliers(stats),
                "size_bytes": size, "size_ratio_vs_reference": _round(size / ref_size, 4),
                "bundle_bytes": bundle_bytes, "bundle_ratio_vs_reference": _round(bundle_bytes / ref_size, 4),
                "rss_added_bytes": row.rss_added_bytes,
                "power_w": _round(watts, 3) if watts else "n/a",
                "fps_per_watt": _round(stats.fps / watts, 3) if watts else "n/a",
                "runner": row.active_runner.describe(),
            }
            item.update(accuracy_columns(row.scores))
            item["ran_in"] = item["runner"].get("ran_in")
            if row.peer:
                item["peer"] = row.peer
            out.append(item)
            samples[plot_label(item)] = stats.samples_ms
    add_baselines(out)
    return out


def _ran_float(row: Dict[str, Any], exact: bool) -> bool:
    """A runner row of the reference's FP32 model (the reference or a peer, not a candidate: a distilled FP32
    student is compared with its teacher) that ran in float (``exact``: in f32 only). A row whose runner cannot
    say what it ran in counts by the bundle's precision."""
    if (row["kind"] != "runner" or row["precision"] != "fp32" or row.get("role") == "candidate"
            or not row.get("fps")):
        return False
    ran_in = row.get("ran_in") or "f32"
    return ran_in == "f32" if exact else ran_in in FLOAT_RUNS


def _fastest(results: List[Dict[str, Any]], exact: bool) -> Dict[int, Dict[str, Any]]:
    best: Dict[int, Dict[str, Any]] = {}
    for r in results:
        if _ran_float(r, exact) and (r["batch"] not in best or r["fps"] > best[r["batch"]]["fps"]):
            best[r["batch"]] = r
    return best


def add_baselines(results: List[Dict[str, Any]]) -> None:
    """Give every runner row ``speedup_vs_fastest_float`` / ``fastest_float`` (the fastest row of the reference's
    FP32 model in any float precision, of its batch size in this run) and ``speedup_vs_best_fp32`` / ``best_fp32``
    (the fastest row that ran in exact f32). End-to-end rows compare with the reference's end-to-end row
    instead (:func:`complete_e2e`): a pipeline's fps and a bare runner's are not the same measurement."""
    for exact, key in ((False, "fastest_float"), (True, "best_fp32")):
        best = _fastest(results, exact)
        for r in results:
            top = best.get(r["batch"])
            if r["kind"] == "runner" and top is not None:
                r[key] = row_label(top)
                r["speedup_vs_" + key] = _round(r["fps"] / top["fps"], 4)
        if not exact:
            for r in results:
                top = best.get(r["batch"])
                if r["kind"] == "runner" and top is not None:
                    r["fastest_float_ran_in"] = top.get("ran_in") or "f32"


def int8_verdict(row: Dict[str, Any]) -> Optional[str]:
    """For an INT8 runner row: whether it earns its place against the fastest float row, in one sentence."""
    if row["precision"] != "int8" or row.get("speedup_vs_fastest_float") is None:
        return None
    ratio, top, ran = row["speedup_vs_fastest_float"], row["fastest_float"], row.get("fastest_float_ran_in")
    if ratio > 1.0:
        return "INT8 is %.2fx the fastest float row (%s, %s)" % (ratio, top, ran)
    return ("INT8 is not faster than the fastest float row (%.2fx %s, %s): use the float model in %s here"
            % (ratio, top, ran, ran))


def complete_e2e(e2e: List[Dict[str, Any]], results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Give end-to-end rows the common keys: size and accuracy of the same model and backend (batch 1),
    and their speed-up against the reference's end-to-end row."""
    ref = next((r for r in e2e if r["role"] == "reference" and r["backend"] == REFERENCE_BACKEND), None)
    for row in e2e:
        twin = next(r for r in results if r["bundle"] == row["bundle"] and r["backend"] == row["backend"]
                    and r["kind"] == "runner" and r["batch"] == 1 and not r.get("peer", "").startswith("openvino"))
        for key in ("int8_form", "size_bytes", "size_ratio_vs_reference", "bundle_bytes",
                    "bundle_ratio_vs_reference", "task", "dice_vs_reference", "dice_drop", "dice_drop_basis",
                    "dice_vs_labels") + IMAGE_KEYS + FLOW_KEYS:
            row.setdefault(key, twin.get(key))
        row["accuracy_from"] = "the runner row of the same bundle and backend (same model, same masks)"
        row.setdefault("power_w", "n/a")
        row.setdefault("fps_per_watt", "n/a")
        row["speedup_vs_reference"] = _round(row["fps"] / ref["fps"], 4) if ref and ref["fps"] else None
    return e2e


def summary(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The headline figures, read from the rows: per candidate, speed-up against FP32 (the reference and the
    strongest FP32 row), Dice drop, sizes, pipeline efficiency (with its spread), added latency on a paced
    source, and how much faster than the naive loop."""
    naive = next((r for r in results if r.get("peer") == NAIVE), None)
    out: Dict[str, Any] = {}
    for r in results:
        if r["role"] != "candidate" or r["kind"] not in ("runner", "e2e"):
            continue
        key = "%s@%d" % (row_label(r), r["batch"])  # a candidate's bf16/f16 rows carry their peer name
        entry = out.setdefault(key, {"precision": r["precision"]})
        if r.get("int8_form"):
            entry["int8_form"] = r["int8_form"]
        if r["kind"] == "runner":
            entry.update(speedup_vs_reference=r["speedup_vs_reference"],
                         speedup_vs_reference_median=r["speedup_vs_reference_median"],
                         speedup_vs_best_fp32=r.get("speedup_vs_best_fp32"), best_fp32=r.get("best_fp32"),
                         speedup_vs_fastest_float=r.get("speedup_vs_fastest_float"),
                         fastest_float=r.get("fastest_float"), ran_in=r.get("ran_in"),
                         dice_drop=r["dice_drop"], dice_drop_basis=r["dice_drop_basis"],
                         size_ratio_vs_reference=r["size_ratio_vs_reference"],
                         bundle_bytes=r["bundle_bytes"], bundle_ratio_vs_reference=r["bundle_ratio_vs_reference"])
            if r.get("task") in ("enhancement", "registration"):
                entry.update({key: r[key] for key in (IMAGE_KEYS if r["task"] == "enhancement" else FLOW_KEYS)})
            verdict = int8_verdict(r)
            if verdict:
                entry["int8_verdict"] = verdict
            if naive:
                entry["speedup_vs_naive_loop"] = _round(r["fps"] / naive["fps"], 4)
                if naive["outliers"]["flagged"]:
                    entry["naive_loop_outliers"] = naive["outliers"]
        else:
            entry.update(pipeline_efficiency=r["pipeline_efficiency"],
                         pipeline_efficiency_spread=r.get("pipeline_efficiency_spread"), e2e_fps=r["fps"],
                         pipeline_overhead_ratio=r.get("pipeline_overhead_ratio"))
            if r.get("pipeline_efficiency_note"):
                entry["pipeline_efficiency_note"] = r["pipeline_efficiency_note"]
            paced = r.get("paced")
            if paced:
                added = paced.get("added_latency_ms") or {}
                entry.update(added_latency_ms_p50=added.get("p50"), added_latency_ms_p99=added.get("p99"),
                             paced_fps=paced["fps_asked"], capture_to_mask_ms_p50=paced["latency_ms"]["p50"],
                             capture_to_mask_ms_p99=paced["latency_ms"]["p99"])
            if naive:
                entry["e2e_speedup_vs_naive_loop"] = _round(r["fps"] / naive["fps"], 4)
    return out
