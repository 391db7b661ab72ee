"""Soak the daemon: ``jetseg run`` for a while under reloads and a signal storm; memory, files, numbering.

What it does (the done-when of issue 20): start ``jetseg run --config`` on a paced synthetic source with
masks (JSON lines only), web and mp4 sinks; scrape ``/metrics`` and ``/stats`` and sample the daemon's
resident memory and open file descriptors (from ``/proc``) every few seconds; send SIGHUP every
``--hup`` seconds (the config's smoothing alternates 0 / 0.2, so each reload builds a new pipeline on the
kept parts); halfway through, a storm of ``--storm`` SIGHUPs 0.5-20 ms apart; at the end SIGTERM, which
must stop the daemon within ``--stop-limit`` seconds with exit code 0. Run from the repository root::

    python tools/soak.py --model BUNDLE --seconds 600 --hup 10 --storm 2000 --json soak.json

Prints one summary line and writes the numbers as JSON; exits 1 when a check failed (each failed check is
listed). Linux only (``/proc``).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Tuple

RSS_LIMIT_MB = 8.0  # growth of the mean of the last third of the samples over the first third
RSS_MIN_SECONDS = 120.0  # shorter runs measure the warm-up (buffers filling), not a leak: reported, not checked
FD_LIMIT = 4  # open files may vary this much after the warm-up (sockets of scrapes in flight)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_and_fds(pid: int) -> Tuple[int, int]:
    """Resident memory in bytes and the number of open file descriptors of ``pid``."""
    rss = 0
    with open("/proc/%d/status" % pid, encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def lines(path: Path) -> List[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def scrape(url: str) -> None:
    """GET ``url`` as a viewer would; a failed scrape is reported, not fatal (the health checks say why)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
    except OSError as exc:
        print("scrape %s failed: %s" % (url, exc), file=sys.stderr)


def soak(model: str, seconds: float, hup_every: float, storm: int, stop_limit: float, workdir: Path,
         seed: int = 20) -> Dict[str, Any]:
    """Run the soak; returns the numbers and ``failures`` (empty when every check held)."""
    port = free_port()
    out = workdir / "soak"
    config = workdir / "daemon.yaml"
    body = ("model: %s\nbackend: {options: {threads: 1}}\n"
            "source: 'synthetic://ultrasound?loop=30&fps=30&realtime=1'\n"
            "sinks: ['masks://%s?png=0', 'http://127.0.0.1:%d', 'file://%s']\n"
            "postprocess: {smoothing: %%s}\nlogging: {interval_s: 30}\n" % (model, out, port, out / "soak.mp4"))
    config.write_text(body % 0.0, encoding="utf-8")
    log_path = workdir / "daemon.log"
    samples: List[Tuple[float, int, int]] = []
    hups = storm_sent = 0
    rng = random.Random(seed)
    with open(str(log_path), "w+", encoding="utf-8") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jetseg", "run", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            deadline = time.monotonic() + 120
            while len(lines(out / "frames.jsonl")) < 30:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the daemon did not start: " + log_path.read_text()[-2000:])
                time.sleep(0.2)
            start = time.monotonic()
            next_hup, storm_at = start + hup_every, start + seconds / 2
            while time.monotonic() - start < seconds and proc.poll() is None:
                scrape("http://127.0.0.1:%d/metrics" % port)
                scrape("http://127.0.0.1:%d/stats" % port)
                rss, fds = rss_and_fds(proc.pid)
                samples.append((time.monotonic() - start, rss, fds))
                if storm and not storm_sent and time.monotonic() >= storm_at:
                    for _ in range(storm):
                        if proc.poll() is not None:
                            break
                        proc.send_signal(signal.SIGHUP)
                        storm_sent += 1
                        time.sleep(rng.uniform(0.0005, 0.020))
                if time.monotonic() >= next_hup:
                    hups += 1
                    config.write_text(body % (0.2 if hups % 2 else 0.0), encoding="utf-8")
                    proc.send_signal(signal.SIGHUP)
                    next_hup += hup_every
                time.sleep(max(0.5, min(seconds / 120, 5.0)))
            running = proc.poll() is None
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(stop_limit)
            except subprocess.TimeoutExpired:
                code = None
            stop_s = time.monotonic() - stopping
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = log_path.read_text(encoding="utf-8")
    warm = [s for s in samples if s[0] >= min(60.0, seconds / 4)] or samples
    rss_mb = [s[1] / 2 ** 20 for s in warm]
    fds = [s[2] for s in warm]
    third = max(1, len(rss_mb) // 3)
    growth = sum(rss_mb[-third:]) / third - sum(rss_mb[:third]) / third
    indices = [json.loads(line)["frame"] for line in lines(out / "frames.jsonl")]
    report: Dict[str, Any] = {
        "seconds": seconds, "frames": len(indices), "sighup": hups, "storm": storm_sent,
        "reloads": text.count("configuration reloaded"), "reload_failures": text.count("reload failed"),
        "rss_mb": [round(min(rss_mb), 1), round(max(rss_mb), 1)], "rss_growth_mb": round(growth, 2),
        "fds": [min(fds), max(fds)], "exit_code": code, "stop_s": round(stop_s, 2),
        "numbering_continuous": bool(indices) and all(b > a for a, b in zip(indices, indices[1:])),
        "rss_checked": seconds >= RSS_MIN_SECONDS,
    }
    failures = []
    if not running:
        failures.append("the daemon ended before the SIGTERM (exit %s)" % proc.returncode)
    if code != 0:
        failures.append("SIGTERM: exit code %s after %.1f s (limit %.0f s)" % (code, stop_s, stop_limit))
    if report["reload_failures"] or report["reloads"] < hups + (1 if storm_sent else 0):
        failures.append("%d SIGHUP (+ a storm of %d) but %d reloads and %d failures"
                        % (hups, storm_sent, report["reloads"], report["reload_failures"]))
    if not report["numbering_continuous"]:
        failures.append("frame numbers restarted or repeated")
    if report["rss_checked"] and growth >= RSS_LIMIT_MB:
        failures.append("resident memory grew by %.1f MB (limit %.0f MB)" % (growth, RSS_LIMIT_MB))
    if max(fds) - min(fds) > FD_LIMIT:
        failures.append("open files went from %d to %d" % (min(fds), max(fds)))
    if "Traceback" in text:
        failures.append("a traceback in the log")
    report["failures"] = failures
    return report


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the bundle to run (a tiny one keeps the CPU free)")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to run (default 600)")
    parser.add_argument("--hup", type=float, default=10.0, help="seconds between SIGHUPs (default 10)")
    parser.add_argument("--storm", type=int, default=2000, help="SIGHUPs in the storm halfway (default 2000)")
    parser.add_argument("--stop-limit", type=float, default=45.0, help="seconds SIGTERM may take (default 45)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jetseg-soak-") as work:
        report = soak(args.model, args.seconds, args.hup, args.storm, args.stop_limit, Path(work))
    print("soak %.0f s: %d frames, %d SIGHUP + a storm of %d (%d reloads), RSS %.1f..%.1f MB (growth %.2f MB), "
          "open fds %d..%d, SIGTERM exit %s in %.1f s, numbering %s"
          % (report["seconds"], report["frames"], report["sighup"], report["storm"], report["reloads"],
             report["rss_mb"][0], report["rss_mb"][1], report["rss_growth_mb"], report["fds"][0],
             report["fds"][1], report["exit_code"], report["stop_s"],
             "continuous" if report["numbering_continuous"] else "BROKEN"))
    for failure in report["failures"]:
        print("FAILED: " + failure)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
