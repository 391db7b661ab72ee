"""`jetseg run` as a user runs it: a subprocess with real sinks, real signals, ffmpeg, ffprobe and pydicom.

Every wait is bounded by a deadline; every child process is killed in a finally block.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jetseg.jetson.runners import choose_backend, default_threads
from tests.fixtures.dicom import write_cine
from tests.fixtures.media import disc_frame
from tests.fixtures.processes import JETSEG, daemon, health, logtext, stop
from tests.fixtures.waiting import count_lines, free_port, http_get, wait_for

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="needs ffmpeg and ffprobe (apt install ffmpeg)")


@needs_ffmpeg
def test_done_when_run_serves_health_metrics_and_finalises_the_mp4_on_sigterm(tiny_bundle, tmp_path):
    out = tmp_path / "out"
    port = free_port()
    with daemon("--model", str(tiny_bundle.path), "--source", "synthetic://ultrasound",
                "--sink", "masks://%s" % out, "--sink", "http://127.0.0.1:%d" % port,
                "--sink", "file://%s" % (out / "out.mp4"), "--backend-option", "threads=1") as proc:
        wait_for(lambda: proc.poll() is not None or count_lines(out / "frames.jsonl") >= 10, timeout=120,
                 what="masks from the daemon")
        assert proc.poll() is None, logtext(proc)
        status, body = wait_for(lambda: health(port) if health(port)[1]["frames"] > 0 else None,
                                what="/health with frames")
        assert status == 200 and body["status"] == "ok" and body["source_state"] == "running"
        status, payload = http_get("http://127.0.0.1:%d/metrics" % port)
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(payload.decode())}
        frames = [s.value for s in families["jetseg_frames_processed"].samples if s.name.endswith("_total")]
        assert frames and frames[0] > 0
        assert "jetseg_capture_to_sink_latency_seconds" in families
        assert stop(proc) == 0, logtext(proc)
        log = logtext(proc)
    assert "Traceback" not in log
    assert "stopped (SIGTERM)" in log
    result = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                             "stream=nb_read_frames", "-of", "csv=p=0", str(out / "out.mp4")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 0
    assert len(list((out / "masks").glob("*.png"))) == count_lines(out / "frames.jsonl") > 0


def test_dicom_cine_gives_one_mask_per_frame_and_ends_cleanly(tiny_bundle, tmp_path):
    frames = np.stack([disc_frame(i, 96, 128) for i in range(7)])
    cine = write_cine(tmp_path / "cine.dcm", frames, spacing_mm=[0.1, 0.2])
    out = tmp_path / "masks"
    with daemon("--model", str(tiny_bundle.path), "--source", "dicom://%s" % cine, "--sink", "masks://%s" % out,
                "--backend-option", "threads=1") as proc:
        code = proc.wait(120)
        log = logtext(proc)
    assert code == 0, log
    assert "stopped (source ended): 7 frames" in log
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(7))
    assert len(list((out / "masks").glob("*.png"))) == 7
    # areas in mm^2 from the DICOM's PixelSpacing
    first = records[0]
    assert first["areas_mm2"]["lesion"] == pytest.approx(first["areas_px"]["lesion"] * 0.02, rel=1e-3)


@needs_ffmpeg
@pytest.mark.skipif(tuple(int(p) for p in cv2.__version__.split(".")[:2]) < (4, 6),
                    reason="OpenCV %s's bundled FFmpeg decodes no frame of a live MPEG-TS UDP stream (fixed by 4.6; "
                    "see tests/jetson/sources/test_src_live.py)" % cv2.__version__)
def test_udp_stream_lost_and_back_daemon_reconnects_and_keeps_producing_masks(tiny_bundle, tmp_path):
    udp, port = free_port(2), free_port()
    out = tmp_path / "masks"
    sender = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
              "testsrc=size=160x120:rate=15", "-f", "mpegts", "udp://127.0.0.1:%d?pkt_size=1316" % udp]
    uri = "udp://127.0.0.1:%d?backend=ffmpeg&open_timeout=1&read_timeout=1&backoff=0.2&backoff_max=0.5" % udp
    config = tmp_path / "daemon.yaml"
    config.write_text("source: {stall_timeout_s: 1.5}\nlogging: {json: true, interval_s: 0}\n")
    senders = []
    try:
        senders.append(subprocess.Popen(sender))
        with daemon("--config", str(config), "--model", str(tiny_bundle.path), "--source", uri,
                    "--sink", "masks://%s?png=0" % out, "--sink", "http://127.0.0.1:%d" % port,
                    "--backend-option", "threads=1") as proc:
            wait_for(lambda: proc.poll() is not None or count_lines(out / "frames.jsonl") >= 10, timeout=90,
                     what="masks from the UDP stream")
            assert proc.poll() is None, logtext(proc)
            senders[-1].kill()
            senders[-1].wait(10)
            status, body = wait_for(lambda: health(port) if health(port)[1]["source_state"] == "reconnecting"
                                    else None, timeout=30, what="the source to be reconnecting")
            assert status == 200 and body["status"] == "degraded" and proc.poll() is None
            assert any(reason.startswith("source lost, reconnecting") for reason in body["reasons"])
            before = count_lines(out / "frames.jsonl")
            senders.append(subprocess.Popen(sender))
            wait_for(lambda: count_lines(out / "frames.jsonl") >= before + 10, timeout=90,
                     what="masks after the sender came back")
            wait_for(lambda: health(port)[1]["status"] == "ok", timeout=30, what="ok health again")
            assert stop(proc, signal.SIGINT) == 0, logtext(proc)
            lines = [json.loads(line) for line in logtext(proc).splitlines() if line.startswith("{")]
    finally:
        for s in senders:
            if s.poll() is None:
                s.kill()
                s.wait(10)
    events = [entry.get("event") for entry in lines]
    assert "source_lost" in events and "stopped" in events
    indices = [json.loads(line)["frame"] for line in (out / "frames.jsonl").read_text().splitlines()]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)  # numbering continued


def test_sighup_reloads_the_config_file(tiny_bundle, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    config = tmp_path / "daemon.yaml"
    body = ("model: %s\nbackend: {options: {threads: 1}}\n"
            "source: 'synthetic://ultrasound?width=160&height=120&fps=15&realtime=1'\nsinks: ['masks://%%s?png=0']\n"
            "logging: {interval_s: 0}\n" % tiny_bundle.path)
    config.write_text(body % first)
    with daemon("--config", str(config)) as proc:
        wait_for(lambda: proc.poll() is not None or count_lines(first / "frames.jsonl") >= 3, timeout=90,
                 what="masks before the reload")
        assert proc.poll() is None, logtext(proc)
        config.write_text(body % second)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: count_lines(second / "frames.jsonl") >= 3, timeout=60, what="masks after SIGHUP")
        assert proc.poll() is None
        assert stop(proc) == 0
        log = logtext(proc)
    assert "configuration reloaded (sinks)" in log


@pytest.mark.parametrize("args, message", [
    (["--source", "nope://x"], "jetseg run: error: unknown source 'nope'"),
    (["--sink", "masks"], "jetseg run: error: config field 'sinks[0].uri' is 'masks'; expected a sink URI"),
    (["--roi", "1,2"], "jetseg run: error: --roi '1,2': expected auto, spec, none or x,y,w,h"),
    (["--smoothing", "3"], "jetseg run: error: config field 'postprocess.smoothing' is 3.0"),
    (["--backend", "onxrt"], "jetseg run: error: unknown backend 'onxrt'; did you mean 'onnxrt'?"),
    (["--source", "/no/such/video.mp4"], "jetseg run: error: source /no/such/video.mp4 does not exist"),
    (["--scheduler", "fibers"], "jetseg run: error: config field 'pipeline.scheduler' is 'fibers'; expected one "
                                "of auto, threaded, latency, serial"),
])
def test_user_errors_are_one_line_and_non_zero(tiny_bundle, args, message):
    result = subprocess.run(JETSEG + ["run", "--model", str(tiny_bundle.path)] + args, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_bad_model_and_config_file_are_one_line(tmp_path):
    result = subprocess.run(JETSEG + ["run", "--model", str(tmp_path / "missing")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "is not a model bundle directory" in result.stderr.strip().splitlines()[-1]
    bad = tmp_path / "bad.yaml"
    bad.write_text("sink: [null://]\n")
    result = subprocess.run(JETSEG + ["run", "--config", str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "jetseg run: error: %s: unknown config field 'sink' (did you mean 'sinks'?); known fields: backend, batch, "
        "device, logging, model, pipeline, postprocess, roi, sinks, source, sources, web" % bad)


@pytest.mark.parametrize("args, said", [
    ([], "pipeline scheduler latency: live at 30 fps: one inference"),
    (["--scheduler", "threaded"], "pipeline scheduler threaded: configured"),
])
def test_a_paced_source_runs_capture_to_mask_in_one_thread_unless_told(tiny_bundle, args, said):
    result = subprocess.run(JETSEG + ["run", "--model", str(tiny_bundle.path), "--source",
                                      "synthetic://ultrasound?loop=4&width=160&height=120", "--realtime",
                                      "--max-frames", "10"] + args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert said in result.stderr


def test_check_validates_without_running(tiny_bundle):
    result = subprocess.run(JETSEG + ["run", "--model", str(tiny_bundle.path), "--sink", "null://",
                                      "--sink", "http://127.0.0.1:1?token=abc-viewer-token-0", "--token", "s3cret-flag-token-1",
                                      "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # the default backend is auto: what choose_backend picks on this machine, with one thread less than the cores
    assert report["ok"] is True and report["sinks"] == ["null", "http"]
    assert report["backend"]["backend"] == choose_backend(tiny_bundle)[0]
    assert report["backend"]["threads"] == default_threads()
    assert "s3cret" not in result.stdout and "abc-viewer" not in result.stdout
