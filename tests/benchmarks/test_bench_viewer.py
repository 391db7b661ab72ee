"""bench --viewer: the daemon started by bench (paced synthetic source, web sink on a free loopback port), the
viewer measured on screen in headless chromium, the daemon stopped, the figures in report.json/md."""
from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest

from jetseg.benchmarks.browser import chromium_path
from jetseg.cli import main


def _no_daemon_threads():
    return not [t for t in threading.enumerate() if t.name == "jetseg-bench-viewer-daemon"]


@pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_viewer_is_measured_against_a_daemon_bench_starts_and_stops(make_bundle, tmp_path, capsys):
    pytest.importorskip("websocket", reason="needs websocket-client (the dev extra) to drive chromium")
    bundle, out = make_bundle("fp32", 0.5), tmp_path / "out"
    started = time.monotonic()
    code = main(["bench", str(bundle), "--viewer", "--tabs", "1,2", "--viewer-seconds", "2", "--backend", "onnxrt",
                 "--roi", "none", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert time.monotonic() - started < 120  # two tab counts of (3 s stats + 3 s warm-up + 2 s) and start-up
    assert _no_daemon_threads()
    report = json.loads((out / "report.json").read_text())
    viewer = report["viewer"]
    conds = viewer["conditions"]
    assert conds["fps"] == 30 and conds["source"].startswith("synthetic://ultrasound?realtime=1&fps=30")
    assert conds["backend"]["backend"] == "onnxrt" and conds["roi"]["mode"] == "none" and conds["roi"]["roi"]
    assert [run["tabs"] for run in viewer["runs"]] == [1, 2]
    assert [len(run["per_tab"]) for run in viewer["runs"]] == [1, 2]
    for run in viewer["runs"]:
        assert run["pipeline_fps_during"] > 0 and "Chrome" in run["browser"]
        for tab in run["per_tab"]:
            assert tab["frames"] >= 2 and tab["shown_fps"] > 0 and 0 < tab["p50_ms"] <= tab["p95_ms"]
    assert report["conditions"]["machine"]["cores"] and report["results"] == []
    md = (out / "report.md").read_text()
    assert "## Web viewer on screen (headless chromium)" in md and "| 2 | 2 |" in md
    printed = capsys.readouterr().out
    assert "1 tab(s): pipeline " in printed and "2 tab(s): pipeline " in printed


def test_missing_chromium_is_one_line_before_any_daemon(make_bundle, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium on it
    code = main(["bench", str(make_bundle("fp32", 0.5)), "--viewer", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert "--viewer needs chromium (headless) on PATH, and it is not installed; apt-get install chromium" in err[0]
    assert not (tmp_path / "out").exists() and _no_daemon_threads()


@pytest.mark.parametrize("extra, message", [
    (["--viewer", "--reference", "REF"], "--viewer measures the web viewer of one bundle in a report of its own; "
                                         "got 1 bundle(s) with --reference/--data"),
    ([], "bench needs --reference FP32_BUNDLE and --data SOURCE (missing: --reference, --data); or --viewer"),
    (["--viewer", "--tabs", "0"], "argument --tabs: expected positive tab counts such as 1 or 1,4, got '0'"),
])
def test_viewer_misuse_is_one_line(make_bundle, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) if "--tabs" in extra else contextlib.nullcontext():
        code = main(["bench", str(make_bundle("fp32", 0.5)), "--out", str(tmp_path / "out")] + extra)
        assert code != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
