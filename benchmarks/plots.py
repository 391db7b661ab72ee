"""PNG plots of a benchmark report (matplotlib, Agg backend: no display needed).

- ``latency.png``: the latency distribution of every row (box: quartiles, whiskers: p1..p99, dots: mean).
- ``fps_vs_dice.png``: throughput against Dice (vs labels when the data has them, else vs the FP32
  reference; for an enhancement model SSIM, vs clean targets or FP32), one point per row: up and to the
  right is better.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List


def _pyplot() -> Any:
    from jetseg.optional import require

    matplotlib = require("matplotlib", "benchmark plots")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _horizontal() -> Dict[str, Any]:
    """boxplot's horizontal switch: ``orientation`` since matplotlib 3.10, ``vert`` before (JetPack 5's 3.3)."""
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def row_label(row: Dict[str, Any]) -> str:
    """How a row is named in plots: ``bundle / backend [precision] bN (kind)``."""
    parts = [p for p in (row.get("kind") if row.get("kind") != "runner" else None, row.get("peer")) if p]
    extra = ", ".join(parts)
    return "%s / %s %s b%s%s" % (row["bundle"], row["backend"], row["precision"], row["batch"],
                                 " (%s)" % extra if extra else "")


def latency_plot(samples: Dict[str, List[float]], path: Path, title: str) -> None:
    plt = _pyplot()
    labels = list(samples)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.55 * max(1, len(labels))))
    try:
        ax.boxplot([samples[k] for k in labels], whis=(1, 99), showfliers=False, showmeans=True,
                   meanprops={"marker": "o", "markerfacecolor": "black", "markersize": 4}, **_horizontal())
        ax.set_yticks(range(1, len(labels) + 1))
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_xlabel("ms per call (e2e rows: capture to sink); box p25-p75, whiskers p1-p99, dot mean")
        import numpy as np

        lows = [float(np.percentile(samples[k], 1)) for k in labels]
        highs = [float(np.percentile(samples[k], 99)) for k in labels]
        if lows and max(highs) / max(min(lows), 1e-9) > 30:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(str(path), dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def fps_dice_plot(results: List[Dict[str, Any]], path: Path, title: str) -> None:
    plt = _pyplot()
    images = any(r.get("task") == "enhancement" for r in results)
    flows = any(r.get("task") == "registration" for r in results)  # the warped-label Dice vs FP32's
    use_labels = not flows and any(r.get("ssim_vs_targets" if images else "dice_vs_labels") is not None
                                   for r in results)
    key = ("ssim_vs_targets" if use_labels else "ssim_vs_reference") if images else "warped_label_dice" if flows \
        else ("dice_vs_labels" if use_labels else "dice_vs_reference")
    points = [r for r in results if r.get(key) is not None and r.get("fps")]
    fig, ax = plt.subplots(figsize=(8, 5.0 + 0.22 * len(points)))
    try:
        markers = {"runner": "o", "e2e": "s", "frame-to-mask": "^"}
        palette = plt.get_cmap("tab10")
        for i, r in enumerate(points):
            ax.scatter([r["fps"]], [r[key]], marker=markers.get(str(r.get("kind")), "o"), s=60, color=palette(i % 10),
                       edgecolors="black", linewidths=0.5, label=row_label(r), zorder=3)
        ax.set_xlabel("throughput (frames/s)")
        ax.set_ylabel("mean %s vs %s" % ("SSIM" if images else "warped-label Dice" if flows else "Dice",
                                         ("clean targets" if images else "labels") if use_labels else "FP32 reference"))
        ax.set_title(title + " (o model alone, s end-to-end pipeline, ^ naive loop frame to mask)", fontsize=9)
        if points:
            ax.set_xlim(0, max(r["fps"] for r in points) * 1.1)
            # at least 0.05 of Dice (or SSIM) in view: differences of 1e-4 must not look like a cliff
            low, high = min(r[key] for r in points), max(r[key] for r in points)
            pad = max(0.0, 0.05 - (high - low)) / 2.0 + 0.005
            ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad) + 0.001)
            ax.ticklabel_format(axis="y", useOffset=False, style="plain")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, ncol=1, frameon=False)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(str(path), dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def write_plots(report: Dict[str, Any], samples: Dict[str, List[float]], out_dir: Path) -> List[str]:
    """Write the plots into ``out_dir``; return their file names."""
    c = report["conditions"]
    title = "%s - %s, %s cores\n%s" % (c["date"][:10], c["machine"]["cpu"], c["machine"]["cores"],
                                        report["data"]["source"])
    names = []
    if samples:
        latency_plot(samples, out_dir / "latency.png", title)
        names.append("latency.png")
    fps_dice_plot(report["results"], out_dir / "fps_vs_dice.png", title)
    names.append("fps_vs_dice.png")
    return names
