"""Benchmark reports: ``report.json`` (schema in docs/benchmarks.md), ``report.md`` and PNG plots.

Written atomically: everything goes into a temporary directory that replaces ``out_dir`` at the end.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from jetseg.benchmarks.tritonrows import KIND as TRITON_KIND
from jetseg.benchmarks.tritonrows import triton_note
from jetseg.benchmarks.viewer import viewer_lines
from jetseg.bundle import writing
from jetseg.records import BenchReport

MD_COLUMNS = ["bundle", "backend", "precision", "ran in", "kind", "batch", "fps", "p50 ms", "p99 ms",
              "x fastest float", "x ref", "x best FP32", "Dice vs ref", "Dice vs labels", "Dice drop", "HD95 vs ref (px)", "model MB",
              "bundle MB", "notes"]
#: The accuracy columns by task (in MD_COLUMNS' place of the segmentation ones): (header, row key, digits).
ACCURACY_COLUMNS = {
    "segmentation": [("Dice vs ref", "dice_vs_reference", 4), ("Dice vs labels", "dice_vs_labels", 4),
                     ("Dice drop", "dice_drop", 4), ("HD95 vs ref (px)", "hd95_vs_reference", 2)],
    "enhancement": [("PSNR vs ref (dB)", "psnr_vs_reference", 2), ("SSIM vs ref", "ssim_vs_reference", 4),
                    ("PSNR vs targets (dB)", "psnr_vs_targets", 2), ("SSIM vs targets", "ssim_vs_targets", 4),
                    ("PSNR drop (dB)", "psnr_drop", 3)],
    "registration": [("EPE vs ref (px)", "epe_mean", 3), ("EPE p95 (px)", "epe_p95", 3),
                     ("warped-label Dice vs ref", "warped_label_dice", 4), ("Dice drop", "dice_drop", 4),
                     ("folding", "folding", 4)],
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return ("%." + str(digits) + "f") % (round(value, digits) + 0.0)  # + 0.0: no "-0.000"
    return str(value)


def _notes(row: Dict[str, Any]) -> str:
    notes = []
    if row.get("peer"):
        notes.append("peer: " + row["peer"])
    if row.get("role") == "reference":
        notes.append("reference")
    if row.get("kind") == TRITON_KIND:
        notes.append(triton_note(row))
    if row.get("int8_form") == "tensorrt":
        notes.append("TensorRT-form INT8 (Q/DQ on float weights, made for TensorRT; slow on CPU runtimes)")
    if row.get("kind") == "e2e":
        spread = row.get("pipeline_efficiency_spread") or [None, None]
        notes.append("efficiency %s (runs %s-%s)%s, dropped %s"
                     % (_fmt(row.get("pipeline_efficiency")), _fmt(spread[0]), _fmt(spread[1]),
                        ": above 1 is noise, not a gain" if row.get("pipeline_efficiency_note") else "",
                        row.get("dropped")))
        paced = row.get("paced")
        if paced:
            added = paced.get("added_latency_ms") or {}
            notes.append("paced %g fps (%s scheduler): capture-to-mask p50 %s / p99 %s ms, added by the pipeline "
                         "per frame p50 %s / p99 %s ms"
                         % (paced["fps_asked"], paced.get("scheduler", {}).get("name", "?"),
                            _fmt(paced["latency_ms"]["p50"], 2), _fmt(paced["latency_ms"]["p99"], 2),
                            _fmt(added.get("p50"), 2), _fmt(added.get("p99"), 2)))
    out = row.get("outliers") or {}
    if out.get("flagged"):
        notes.append("outliers: %d calls > 2x p50, max %sx p50" % (out["calls_over_2x_p50"], out["max_over_p50"]))
    if row.get("fps_per_watt") not in (None, "n/a"):
        notes.append("%s fps/W" % _fmt(row["fps_per_watt"], 2))
    return "; ".join(notes)


def markdown_table(results: List[Dict[str, Any]]) -> str:
    """The results as a Markdown table (one line per row; the accuracy columns of the rows' task)."""
    task = next((r["task"] for r in results if r.get("task")), "segmentation")
    accuracy = ACCURACY_COLUMNS[task]
    first = MD_COLUMNS.index("Dice vs ref")
    headers = MD_COLUMNS[:first] + [c[0] for c in accuracy] + MD_COLUMNS[first + 4:]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in results:
        lat = r.get("latency_ms") or {}
        size = r.get("size_bytes")
        cells = [r.get("bundle"), r.get("backend"), r.get("precision"), r.get("ran_in"), r.get("kind"),
                 r.get("batch"), _fmt(r.get("fps"), 1), _fmt(lat.get("p50"), 2), _fmt(lat.get("p99"), 2),
                 _fmt(r.get("speedup_vs_fastest_float"), 2), _fmt(r.get("speedup_vs_reference"), 2), _fmt(r.get("speedup_vs_best_fp32"), 2),
                 *[_fmt(r.get(key), digits) for _, key, digits in accuracy],
                 _fmt(size / 1e6, 2) if isinstance(size, (int, float)) else "-",
                 _fmt(r["bundle_bytes"] / 1e6, 2) if isinstance(r.get("bundle_bytes"), int) else "-", _notes(r)]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines)


def _row_threads(results: List[Dict[str, Any]]) -> str:
    """``onnxrt=1, torch (naive-loop)=2``: each backend's (and peer's) ``runner.threads``; "default" is a
    runtime's own choice (a GPU provider or device)."""
    seen: Dict[str, set] = {}
    for r in results:
        threads = (r.get("runner") or {}).get("threads")
        if threads is not None:
            name = "%s (%s)" % (r.get("backend"), r["peer"]) if r.get("peer") else str(r.get("backend"))
            seen.setdefault(name, set()).add(str(threads))
    return ", ".join("%s=%s" % (name, "/".join(sorted(v))) for name, v in sorted(seen.items())) or "-"


def _roi_lines(roi: Dict[str, Any]) -> List[str]:
    """The ROI the frames were cropped to: the mode and why, then one line per file."""
    if not roi:
        return []
    return (["- ROI: %s (--roi %s: %s)" % (roi["mode"], roi["asked"], roi["how"])]
            + ["  - %s: %s in %s frames (%s)" % (name, item["roi"], "x".join(str(v) for v in item["frame"]),
                                                 item["how"])
               for name, item in sorted(roi.get("files", {}).items())])


def render_markdown(report: Dict[str, Any]) -> str:
    """The whole report as Markdown: conditions, the table, headline figures, skipped rows, gates, and the
    viewer's figures (``--viewer``; a report of the viewer alone has no table)."""
    c = report["conditions"]
    m, v, data = c["machine"], c["versions"], report.get("data")
    s = report["settings"]
    out = ["# jetseg benchmark", "",
           "- date: %s" % c["date"],
           "- command: `%s`" % c["command"],
           "- machine: %s, %s, %s cores, GPU %s, device %s" % (m["platform"], m["cpu"], m["cores"], m["gpu"],
                                                                 m["device"]),
           "- versions: " + ", ".join("%s %s" % kv for kv in sorted(v.items())),
           "- threads: " + ", ".join("%s=%s" % kv for kv in sorted(c["threads"].items())),
           "- power mode: %s; clocks: %s" % (c["power_mode"], json.dumps(c["clocks"], sort_keys=True)),
           "- load average at start / end: %s / %s" % (c.get("load_average_start"), c.get("load_average_end"))]
    if data:
        out += ["- inference threads the rows ran with: " + _row_threads(report["results"]),
                "- data: %s, %d frames (%d labelled), frame shape %s"
                % (data["source"], data["frames"], data["labelled_frames"], data["frame_shape"]),
                *_roi_lines(report.get("roi") or {}),
                "- reference: %s (%s, %s)" % (report["reference"]["bundle"], report["reference"]["precision"],
                                              report["reference"]["backend"]),
                "- timing: warm-up %s calls, then >= %s s and >= %s timed calls per row; rows interleaved in blocks "
                "of <= %s s, each after %s s of untimed settling calls"
                % (s["warmup"], s["min_time"], s["min_runs"], min(s["block_time"], s["min_time"] / 4.0),
                   s["settle_time"]),
                "", markdown_table(report["results"])]
    out.append("")
    if report.get("summary"):
        out += ["## Headline figures", "",
                "Speed-ups: `speedup_vs_fastest_float` against the fastest float row of this run in any float "
                "precision (`fastest_float`; what each row ran in is read back from its compiled model: `ran in`), "
                "`speedup_vs_best_fp32` against the fastest exact-FP32 row (`best_fp32`), `speedup_vs_reference` "
                "against ONNX Runtime FP32 (the accuracy reference). `added_latency_ms_*`: per frame on a paced "
                "source, capture-to-mask minus that frame's own inference.", ""]
        for key, entry in sorted(report["summary"].items()):
            out.append("- %s: " % key + ", ".join("%s %s" % (k, _fmt(val, 4)) for k, val in sorted(entry.items())))
        out.append("")
    if report.get("skipped"):
        out += ["## Skipped", ""] + ["- %s on %s: %s" % (i["bundle"], i["backend"], i["reason"])
                                     for i in report["skipped"]] + [""]
    if report.get("gates"):
        out += ["## Gates", ""] + ["- %s: %s" % ("PASS" if g["passed"] else "FAIL", g["message"])
                                   for g in report["gates"]] + [""]
    if report.get("viewer"):
        out += viewer_lines(report["viewer"]) + [""]
    if report.get("cost"):
        out += ["Peak RSS of the benchmark process: %.1f MB." % (report["cost"]["peak_rss_bytes"] / 1e6), ""]
    return "\n".join(out)


def write_report(report: Dict[str, Any], out_dir: Any, samples: Optional[Dict[str, List[float]]] = None,
                 plots: bool = True, overwrite: bool = False) -> Path:
    """Write report.json, report.md and (with ``plots``) latency.png and fps_vs_dice.png into ``out_dir``."""
    out = Path(out_dir)
    with writing(out, overwrite=overwrite) as tmp:
        files = [BenchReport.FILE, "report.md"]
        if plots:
            from jetseg.benchmarks import plots as plotting

            files += plotting.write_plots(report, samples or {}, tmp)
        report.setdefault("files", sorted(files))
        BenchReport.from_dict(report).write(tmp)
        (tmp / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return out
