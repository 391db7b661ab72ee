"""Fault injection against the daemon (issue 12): real `jetseg run` processes, real signals, real files,
loopback sockets only. Each test fails without its fix; the CLI's bad-input cases are in tests/cli/test_bad_input.py.
"""
from __future__ import annotations

import json
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

from jetseg.jetson.frames.metrics import Metrics
from tests.fixtures.bundles import mismatched_bundle
from tests.fixtures.disks import full_disk, tmpfs
from tests.fixtures.media import playable_frames
from tests.fixtures.processes import daemon, health, jetseg, logtext, stop
from tests.fixtures.waiting import count_lines, free_port, http_get, wait_for

PASSWORD = "hunter2-secret"
TOKEN = "viewer-tok3n-xyz"
SMALL = "synthetic://ultrasound?width=160&height=120&fps=15&realtime=1"



def _config(path: Path, bundle: Path, source: str, sinks) -> None:
    path.write_text("model: %s\nbackend: {options: {threads: 1}}\nsource: '%s'\nsinks: %s\nlogging: {interval_s: 0}\n"
                    % (bundle, source, json.dumps([str(s) for s in sinks])))


# ---------------------------------------------------------------------------------------------- 1. secrets
def test_credentials_and_tokens_never_reach_logs_metrics_stats_or_check(tiny_bundle, tmp_path):
    dead = free_port()  # nothing listens: the RTSP source keeps reconnecting, logging its URI each time
    source = "rtsp://admin:%s@127.0.0.1:%d/live?open_timeout=1&read_timeout=1&backoff=0.2&backoff_max=0.5" % (
        PASSWORD, dead)
    port = free_port()
    args = ("--model", str(tiny_bundle.path), "--source", source, "--sink", "http://127.0.0.1:%d" % port,
            "--token", TOKEN, "--log-json", "--backend-option", "threads=1")
    check = jetseg("run", *args, "--check", "-v")
    assert check.returncode == 0, check.stderr
    assert PASSWORD not in check.stdout + check.stderr and TOKEN not in check.stdout + check.stderr
    assert "admin:***@127.0.0.1" in check.stdout
    with daemon(*args, "-v") as proc:
        wait_for(lambda: proc.poll() is not None or "source_lost" in logtext(proc) or "reconnect" in logtext(proc),
                 timeout=60, what="the source to be retried")
        assert proc.poll() is None, logtext(proc)
        served = "".join(http_get("http://127.0.0.1:%d/%s?token=%s" % (port, route, TOKEN))[1].decode()
                         for route in ("metrics", "stats", "health"))
        assert stop(proc) == 0, logtext(proc)
        log = logtext(proc)
    assert "jetseg_info" in served and "admin:***@" in served
    assert PASSWORD not in served and TOKEN not in served
    assert PASSWORD not in log and TOKEN not in log, log


def test_a_password_containing_at_signs_is_masked_whole_in_check(tiny_bundle):
    source = "rtsp://admin:p@ssw0rd@X@127.0.0.1:%d/live" % free_port()
    check = jetseg("run", "--model", str(tiny_bundle.path), "--source", source, "--check", "-v")
    assert check.returncode == 0, check.stderr
    assert "ssw0rd" not in check.stdout + check.stderr
    assert "rtsp://admin:***@127.0.0.1:" in check.stdout


# ------------------------------------------------------------- 2. model shape vs spec; a failed reload
def test_model_that_does_not_match_its_spec_is_one_line_and_a_reload_to_it_keeps_running(tiny_bundle, tmp_path):
    bad = mismatched_bundle(tmp_path / "bad")
    result = jetseg("run", "--model", str(bad), "--check")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "model.onnx input 'input' has shape [1, 1, 48, 48] but spec.yaml expects [1, 1, 32, 32]" in (
        result.stderr.strip().splitlines()[-1])
    out, config = tmp_path / "masks", tmp_path / "daemon.yaml"
    _config(config, tiny_bundle.path, SMALL, ["masks://%s?png=0" % out])
    with daemon("--config", str(config)) as proc:
        wait_for(lambda: proc.poll() is not None or count_lines(out / "frames.jsonl") >= 3, timeout=90,
                 what="masks before the reload")
        _config(config, bad, SMALL, ["masks://%s?png=0" % out])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: proc.poll() is not None or "reload failed" in logtext(proc), timeout=60,
                 what="the reload to fail")
        before = count_lines(out / "frames.jsonl")
        wait_for(lambda: count_lines(out / "frames.jsonl") >= before + 5, timeout=60, what="frames after it")
        assert proc.poll() is None, logtext(proc)
        assert stop(proc) == 0
        log = logtext(proc)
    line = [ln for ln in log.splitlines() if "reload failed" in ln]
    assert len(line) == 1 and "keeping the running configuration" in line[0] and "spec.yaml expects" in line[0]
    assert "Traceback" not in log


# ------------------------------------------- 3 and 7. a reload keeps recordings and continues numbering
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe (apt install ffmpeg)")
def test_reload_that_reopens_sinks_starts_a_new_segment_and_continues_frame_numbers(tiny_bundle, tmp_path):
    out, config = tmp_path / "out", tmp_path / "daemon.yaml"
    sinks = ["masks://%s" % out, "file://%s" % (out / "rec.mp4")]
    _config(config, tiny_bundle.path, SMALL, sinks)
    with daemon("--config", str(config)) as proc:
        wait_for(lambda: proc.poll() is not None or count_lines(out / "frames.jsonl") >= 15, timeout=90,
                 what="frames before the reload")
        # another source (-> new source reader, frame numbers from 0 again) and reopened sinks
        _config(config, tiny_bundle.path, SMALL.replace("width=160", "width=176"), sinks)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in logtext(proc), timeout=60, what="the reload")
        before = count_lines(out / "frames.jsonl")
        wait_for(lambda: count_lines(out / "frames.jsonl") >= before + 15, timeout=60, what="frames after it")
        assert stop(proc) == 0, logtext(proc)
    first, second = out / "rec.mp4", out / "rec-001.mp4"
    assert playable_frames(first) >= 15 and playable_frames(second) >= 15  # the first segment was not overwritten
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    indices = [r["frame"] for r in records]
    assert len(set(indices)) == len(indices) and indices == sorted(indices), str(indices)
    assert len(list((out / "masks").glob("*.png"))) == len(indices)  # no mask file overwritten


# ------------------------------------------------------------------- 8. sinks checked, failures counted
def test_unwritable_file_sink_is_refused_at_open(tiny_bundle, tmp_path):
    with tmpfs(tmp_path, "size=64k,ro") as readonly:  # read-only even for root
        result = jetseg("run", "--model", str(tiny_bundle.path), "--source", "synthetic://ultrasound?frames=5",
                        "--sink", "file://%s" % (readonly / "out.mp4"), "--backend-option", "threads=1")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == ("jetseg run: error: cannot record to %s: Read-only file system; "
                                              "choose a writable folder" % (readonly / "out.mp4"))


def test_disk_full_sink_leaves_no_empty_temp_files_and_the_run_exits_non_zero(tiny_bundle, tmp_path):
    with full_disk(tmp_path) as mount:
        result = jetseg("run", "--model", str(tiny_bundle.path), "--source", "synthetic://ultrasound?frames=20",
                        "--sink", "masks://%s" % mount, "--sink", "null://", "--backend-option", "threads=1")
        leftovers = [p.name for p in (mount / "masks").iterdir()]
    assert leftovers == []  # neither half-written nor zero-byte temporary PNGs
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("jetseg run: error: sink masks failed on every frame")


# ------------------------------------------------------------------------------ 9. malformed HTTP requests
def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _serving(port: int) -> bool:
    try:
        return health(port)[1]["frames"] > 0
    except OSError:
        return False


def test_malformed_http_requests_get_400_or_414_and_one_log_line(tiny_bundle, tmp_path):
    port = free_port()
    tls_hello = bytes.fromhex("160301020001000 1fc0303".replace(" ", "")) + b"\x8f" * 64
    with daemon("--model", str(tiny_bundle.path), "--source", SMALL, "--sink", "http://127.0.0.1:%d" % port,
                "--backend-option", "threads=1") as proc:
        wait_for(lambda: proc.poll() is not None or _serving(port), timeout=90, what="frames")
        replies = [_raw(port, b"\x00\xff\xfe garbage \x01\x02\r\n\r\n"), _raw(port, tls_hello),
                   _raw(port, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")]
        assert http_get("http://127.0.0.1:%d/health" % port)[0] == 200  # still serving
        assert stop(proc) == 0
        log = logtext(proc)
    assert [r.split(b" ")[1] for r in replies] == [b"400", b"400", b"414"], replies
    assert "Traceback" not in log
    assert len([ln for ln in log.splitlines() if "viewer request from 127.0.0.1 refused" in ln]) == 3, log


# ----------------------------------------------------------- 12. /health before the source, empty token
def test_health_is_not_ok_before_the_source_has_opened_and_delivered():
    metrics = Metrics(stale_after_s=60)
    assert metrics.health()["status"] == "starting"
    assert metrics.health()["reasons"] == ["the source is not open yet"]
    metrics.set_source_state("running")
    assert metrics.health()["status"] == "starting"  # open, no frame yet
    metrics.frame(time.monotonic())
    assert metrics.health()["status"] == "ok"


def test_empty_token_in_the_sink_uri_is_an_error_not_auth_off(tiny_bundle):
    result = jetseg("run", "--model", str(tiny_bundle.path), "--sink", "http://127.0.0.1:0?token=", "--check")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "token= is empty" in result.stderr.strip().splitlines()[-1]
