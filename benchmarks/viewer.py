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
import sys
import time
import urllib.request
from typing import Any, Dict, List, Sequence

import numpy as np

from jetseg.benchmarks.browser import Browser
from jetseg.errors import JetsegError

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


def summarize_tab(log: Sequence[Dict[str, Any]]) -> Dict[str, float]:
    """p50/p95 capture -> display (ms), shown fps and frames skipped per second, from one tab's log."""
    if len(log) < 2:
        raise JetsegError("a tab showed %d frames; expected a stream (is the pipeline running?)" % len(log))
    latency = np.array([r["latency_ms"] for r in log])
    span_s = (log[-1]["displayed_ms"] - log[0]["displayed_ms"]) / 1000.0
    skipped = sum(max(0, b["index"] - a["index"] - 1) for a, b in zip(log, log[1:]))
    return {"frames": len(log), "p50_ms": round(float(np.percentile(latency, 50)), 1),
            "p95_ms": round(float(np.percentile(latency, 95)), 1),
            "shown_fps": round((len(log) - 1) / span_s, 2), "skipped_per_s": round(skipped / span_s, 2)}


def measure_viewer(url: str, tabs: int, seconds: float, warmup_s: float = 3.0) -> Dict[str, Any]:
    """Open ``tabs`` viewer tabs on ``url``, wait ``warmup_s``, record ``seconds``; figures per tab."""
    before = pipeline_fps(url)
    with Browser() as browser:
        version = browser.version()
        pages = [browser.open(url) for _ in range(tabs)]
        for page in pages:
            page.wait_for("window.jetsegViewer && window.jetsegViewer.log.length > 0", 30)
        time.sleep(warmup_s)
        starts = [len(json.loads(page.evaluate(LOG))) for page in pages]
        during = pipeline_fps(url, seconds)
        logs: List[List[Dict[str, Any]]] = [json.loads(page.evaluate(LOG))[start:]
                                            for page, start in zip(pages, starts)]
    return {"tabs": tabs, "seconds": seconds, "browser": version, "pipeline_fps_before": round(before, 2),
            "pipeline_fps_during": round(during, 2), "per_tab": [summarize_tab(log) for log in logs]}


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
