"""Bench with OpenVINO installed: the default backend (auto) runs it, and OpenVINO called directly is a peer.
Skips only when the openvino module is missing (the JetPack 5 twin)."""
from __future__ import annotations

import pytest

from jetseg.benchmarks.suite import Settings, run_benchmark

pytest.importorskip("openvino")

FAST = dict(min_time=0.02, warmup=1, min_runs=3, progress=False, plots=False, hd95=False)


def test_auto_runs_openvino_and_direct_openvino_peers_join_the_table(tiny_bundles, frames, monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    ref, cand = tiny_bundles
    report = run_benchmark([cand], ref, frames, settings=Settings(threads=1, **FAST))
    rows = {(r["bundle"], r["backend"], r.get("peer")): r for r in report["results"]}
    assert set(rows) == {("tiny-fp32", "onnxrt", "onnxrt-fp32"), ("tiny-fp32", "openvino", None),
                         ("tiny-int8", "openvino", None), ("tiny-fp32", "openvino", "openvino-fp32"),
                         ("tiny-int8", "openvino", "openvino-int8")}
    direct = rows[("tiny-int8", "openvino", "openvino-int8")]
    assert direct["role"] == "peer" and "called directly" in direct["runner"]["api"]
    assert direct["runner"]["threads"] == 1 and rows[("tiny-int8", "openvino", None)]["runner"]["threads"] == 1
    fp32 = [r for r in report["results"] if r["precision"] == "fp32" and r["kind"] == "runner"]
    best = max(fp32, key=lambda r: r["fps"])
    for r in report["results"]:
        assert r["speedup_vs_best_fp32"] == pytest.approx(r["fps"] / best["fps"], rel=1e-3)
    entry = report["summary"]["tiny-int8/openvino@1"]
    assert entry["best_fp32"].startswith("tiny-fp32/") and entry["bundle_bytes"] > 0
    assert report["conditions"]["versions"]["openvino"] not in ("not installed", "?")
