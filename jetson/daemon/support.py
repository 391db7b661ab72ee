"""The daemon's small helpers: systemd notification and watchdog, the telemetry hook, logging, status lines."""
from __future__ import annotations

import logging
import os
import socket
from typing import Any, Dict, Optional, Tuple

from jetseg.jetson.daemon.config import DaemonConfig
from jetseg.jetson.frames.metrics import Metrics

log = logging.getLogger("jetseg.daemon")


# ====================================================================== systemd notification
def sd_notify(message: str) -> bool:
    """Send ``message`` (``READY=1``, ``WATCHDOG=1``, ...) to systemd's ``$NOTIFY_SOCKET``; False if not under
    systemd (or it could not be reached)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        log.debug("sd_notify(%s) failed: %s", message.split("\n")[0], exc)
        return False
    return True


def watchdog_interval() -> Optional[float]:
    """Half of systemd's ``WatchdogSec`` (from ``$WATCHDOG_USEC``) when the watchdog is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return max(0.05, int(usec) / 2e6)
    except ValueError:
        return None


# ====================================================================== helpers
def poke(fd: int) -> None:
    """Write one byte to the wake-up pipe ``fd`` (safe inside a signal handler: one system call, no lock)."""
    try:
        os.write(fd, b"\0")
    except BlockingIOError:
        pass  # the pipe is full: the main loop is already woken


def lost_frames_message(lost: Dict[str, Tuple[int, int]]) -> str:
    """The one line at exit for sinks that lost frames to failures (``{sink: (lost, given)}``)."""
    parts = []
    for name, (count, given) in lost.items():
        if count >= given:
            parts.append("sink %s failed on every frame (%d errors); nothing was written there" % (name, count))
        else:
            parts.append("sink %s lost %d of %d frames" % (name, count, given))
    return "; ".join(parts) + "; see the log above"


def apply_logging(config: DaemonConfig, verbose: bool = False) -> None:
    """Configure the ``jetseg`` logger from the config's logging section (JSON lines, level)."""
    from jetseg.log import setup_logging

    setup_logging(verbose=verbose or config.logging.level == "debug", json_lines=config.logging.json)
    if not verbose and config.logging.level in ("warning", "error"):
        logging.getLogger("jetseg").setLevel(config.logging.level.upper())


def log_status_line(metrics: Metrics, prefix: str, fields: Dict[str, Any]) -> None:
    """Log one stream's status line (``prefix`` first) with its structured fields."""
    stats = metrics.stats(recent=True)
    e2e = stats["latency_ms"]["capture_to_sink"]
    health = metrics.health()
    fields = dict(fields, event="status", status=health["status"], fps=stats["fps"], frames=stats["frames"],
                  latency_ms=e2e, dropped=stats["dropped"], source_state=stats["source_state"],
                  reasons=health["reasons"],
                  sinks={k: {"written": v["written"], "dropped": v["dropped"], "errors": v["errors"]}
                         for k, v in stats["sinks"].items()})
    log.info(prefix + "%s: %.1f fps, capture-to-sink p50 %s ms p95 %s ms, %d frames, dropped %s, source %s",
             health["status"], stats["fps"], e2e.get("p50", "-"), e2e.get("p95", "-"), stats["frames"],
             stats["dropped"], stats["source_state"], extra={"fields": fields})
