"""`jetseg bench --triton`: a real Triton server (PyTriton's tritonserver) on loopback, rows against the local
runner in the same report. Skipped only when nvidia-pytriton or tritonclient is not installed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jetseg.benchmarks.report import render_markdown
from jetseg.benchmarks.suite import Settings, run_benchmark
from jetseg.benchmarks.tritonrows import TritonSettings
from jetseg.errors import JetsegError
from tests.fixtures.triton import skip_without_server

FAST = dict(min_time=0.02, warmup=1, min_runs=3, progress=False, backends=["onnxrt"], peers=False, naive=False)


def test_settings_are_checked():
    with pytest.raises(JetsegError, match="--triton-clients 0"):
        TritonSettings(clients=0).check()


def test_triton_and_triton_url_together_is_one_line(tiny_bundles):
    ref, _ = tiny_bundles
    done = subprocess.run([sys.executable, "-m", "jetseg", "bench", str(ref), "--reference", str(ref), "--data",
                           "synthetic://ultrasound?frames=2", "--triton", "--triton-url", "grpc://127.0.0.1:1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "jetseg bench: error: --triton starts a server and --triton-url names one; give one of them"]


def test_triton_rows_with_a_real_server(tiny_bundles, frames, tmp_path):
    skip_without_server()
    ref, _ = tiny_bundles
    out = tmp_path / "out"
    triton = TritonSettings(clients=2, seconds=0.5, max_batch=4, check_frames=4).to_dict()
    report = run_benchmark([], ref, frames, out_dir=out, settings=Settings(triton=triton, **FAST))
    rows = [r for r in json.loads((out / "report.json").read_text())["results"] if r["kind"] == "clients"]
    assert [(r["backend"], r["clients"], (r["server"] or {}).get("model")) for r in rows] == [
        ("onnxrt", 1, None), ("triton", 1, "tiny-b1"), ("triton", 2, "tiny-b1"),
        ("triton", 2, "tiny-dyn")]
    for row in rows:
        assert row["fps"] > 0 and row["frames"] > 0 and row["latency_ms"]["p50"] > 0
    for row in rows[1:]:
        assert row["masks_identical"] is True and row["max_abs_logit_diff"] < 1e-5
        assert row["vs_local_batch1"] == pytest.approx(row["fps"] / rows[0]["fps"], rel=1e-2, abs=1e-3)
    assert rows[1]["server"]["batching"] == {"max_batch_size": 1, "queue_delay_us": 2000}
    assert rows[3]["server"]["batching"] == {"max_batch_size": 4, "queue_delay_us": 2000}
    assert rows[1]["server"]["mean_batch"] == 1.0  # read from the server's metrics: max_batch_size 1 runs alone
    assert 1.0 <= rows[3]["server"]["mean_batch"] <= 2.0  # two clients: at most two frames per run
    assert report["settings"]["triton"]["clients"] == 2
    text = render_markdown(report)
    assert "2 client(s) to model tiny-dyn (dynamic batching, max 4, 2000 us; " in text
    assert "frames per model run); masks identical to local: yes" in text
