"""What the web viewer shows, measured in headless chromium: capture -> display latency and shown fps per tab.

Each tab runs the viewer page; the page logs every frame it draws with the frame's own index and capture
stamp (sent with the picture, in the same multipart frame), so a figure here is the frame identity on screen,
not a server-side estimate. The pipeline's own fps (``/stats``) is read before and during the run.

    jetseg run --source 'synthetic://ultrasound?realtime=1&fps=30' --sink http://127.0.0.1:8080 &
    python -m jetseg.benchmarks.viewer http://127.0.0.1:8080/ --tabs 1 4 --seconds 20
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.request
from typing import Any, Dict, List, Sequence

import numpy as np

from jetseg.benchmarks.browser import Browser
from jetseg.errors import JetsegError

TYPE = re.compile(rb"--type=([a-z-]+)")
LOG = "JSON.stringify(window.jetsegViewer ? window.jetsegViewer.log : [])"


def pipeline_fps(url: str, seconds: float = 3.0) -> float:
    """The pipeline's own fps from ``/stats``, averaged over a few polls."""
    values = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url.rstrip("/") + "/stats", timeout=10) as resp:
            values.append(float(json.loads(resp.read()).get("fps", 0.0)))
        time.sleep(0.5)
    return float(np.mean(values)) if values else 0.0


def cpu_seconds(root: int) -> Dict[str, float]:
    """CPU time (user + system, s) of process ``root`` and its descendants, summed by chromium's ``--type``
    (``browser`` for a process without one: the root); Linux ``/proc`` only, ``{}`` elsewhere."""
    tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
    procs: Dict[int, Any] = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % name, "rb") as f:
                found = TYPE.search(f.read())  # chromium rewrites its argv as one string
        except OSError:  # the process ended meanwhile
            continue
        kind = found.group(1).decode() if found else "browser"
        procs[int(name)] = (int(fields[1]), kind, (int(fields[11]) + int(fields[12])) / tick)
    keep, out = {root}, {}  # type: ignore[var-annotated]
    for _ in range(8):  # descendants, a few levels deep (zygote -> renderer)
        keep |= {pid for pid, (ppid, _, _) in procs.items() if ppid in keep}
    for pid in keep & set(procs):
        _, kind, cpu = procs[pid]
        out[kind] = out.get(kind, 0.0) + cpu
    return out


def own_cpu_seconds() -> float:
    """CPU time of this process (user + system, s): the daemon when bench runs it here."""
    times = os.times()
    return float(times.user + times.system)


def summarize_tab(log: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """p50/p95 capture -> display (ms), shown fps and frames skipped per second, from one tab's log."""
    if len(log) < 2:
        raise JetsegError("a tab showed %d frames; expected a stream (is the pipeline running?)" % len(log))
    latency = np.array([r["latency_ms"] for r in log])
    span_s = (log[-1]["displayed_ms"] - log[0]["displayed_ms"]) / 1000.0
    skipped = sum(max(0, b["index"] - a["index"] - 1) for a, b in zip(log, log[1:]))
    return {"frames": len(log), "p50_ms": round(float(np.percentile(latency, 50)), 1),
            "p95_ms": round(float(np.percentile(latency, 95)), 1),
            "shown_fps": round((len(log) - 1) / span_s, 2), "skipped_per_s": round(skipped / span_s, 2)}


def measure_viewer(url: str, tabs: int, seconds: float, warmup_s: float = 3.0,
                   server_in_process: bool = False) -> Dict[str, Any]:
    """Open ``tabs`` viewer tabs on ``url``, wait ``warmup_s``, record ``seconds``; figures per tab.

    Where the CPU goes during the recording: ``cpu_cores`` (CPU seconds per second) of chromium's processes
    by type, and of this process when ``server_in_process`` (bench runs the daemon here); per tab its main
    thread's ``busy_ms_per_s`` (task, script, layout, style; DevTools' Performance metrics).
    """
    before = pipeline_fps(url)
    with Browser() as browser:
        version = browser.version()
        pages = [browser.open(url) for _ in range(tabs)]
        for page in pages:
            page.wait_for("window.jetsegViewer && window.jetsegViewer.log.length > 0", 30)
        time.sleep(warmup_s)
        starts = [len(json.loads(page.evaluate(LOG))) for page in pages]
        busy0, cpu0, own0, t0 = [p.busy() for p in pages], cpu_seconds(browser.pid), own_cpu_seconds(), time.monotonic()
        during = pipeline_fps(url, seconds)
        busy1, cpu1, own1 = [p.busy() for p in pages], cpu_seconds(browser.pid), own_cpu_seconds()
        wall = time.monotonic() - t0
        logs: List[List[Dict[str, Any]]] = [json.loads(page.evaluate(LOG))[start:]
                                            for page, start in zip(pages, starts)]
    cores = {kind: round((cpu1[kind] - cpu0.get(kind, 0.0)) / wall, 3) for kind in sorted(cpu1)}
    if server_in_process:
        cores["daemon"] = round((own1 - own0) / wall, 3)
    per_tab = [summarize_tab(log) for log in logs]
    for tab, a, b in zip(per_tab, busy0, busy1):
        tab["busy_ms_per_s"] = {k: round((b[k] - a[k]) * 1000.0 / wall, 1) for k in sorted(b)}
    return {"tabs": tabs, "seconds": seconds, "browser": version, "pipeline_fps_before": round(before, 2),
            "pipeline_fps_during": round(during, 2), "cpu_cores": cores, "per_tab": per_tab}


def viewer_lines(viewer: Dict[str, Any]) -> List[str]:
    """report.md's section for ``jetseg bench --viewer``: the conditions, then one table line per tab."""
    c = viewer["conditions"]
    out = ["## Web viewer on screen (headless chromium)", "",
           "- daemon: %s on %s (%s), source %s, ROI %s; web sink %s" % (c["bundle"], c["backend"].get("backend"),
                                                                      c["backend"].get("precision"), c["source"],
                                                                      c["roi"]["roi"], c["sink"]),
           "- %s; %s, %s s per tab count after %s s warm-up"
           % (c["daemon"], viewer["runs"][0].get("browser", "chromium") if viewer["runs"] else "chromium",
              c["seconds"], c["warmup_s"]),
           "", "| tabs | tab | pipeline fps before / during | on screen p50 / p95 (ms) | shown fps | skipped/s |",
           "|---|---|---|---|---|---|"]
    for run in viewer["runs"]:
        for i, tab in enumerate(run["per_tab"]):
            out.append("| %d | %d | %s / %s | %s / %s | %s | %s |"
                       % (run["tabs"], i + 1, run["pipeline_fps_before"], run["pipeline_fps_during"], tab["p50_ms"],
                          tab["p95_ms"], tab["shown_fps"], tab["skipped_per_s"]))
    out.append("")
    for run in viewer["runs"]:
        busy = [t.get("busy_ms_per_s", {}).get("task") for t in run["per_tab"]]
        out.append("- %d tab(s), CPU cores during the recording: %s; each tab's main thread busy %s ms/s"
                   % (run["tabs"], ", ".join("%s %s" % kv for kv in sorted(run.get("cpu_cores", {}).items())),
                      ", ".join(str(b) for b in busy)))
    return out


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m jetseg.benchmarks.viewer", description=__doc__.split("\n")[0])
    parser.add_argument("url", help="the web viewer, e.g. http://127.0.0.1:8080/")
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 4], help="tab counts to measure (default 1 4)")
    parser.add_argument("--seconds", type=float, default=20.0, help="recording time per tab count")
    args = parser.parse_args(list(argv) or None)
    try:
        for tabs in args.tabs:
            print(json.dumps(measure_viewer(args.url, tabs, args.seconds)))
    except JetsegError as exc:
        print("viewer benchmark: error: %s" % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
