"""Headless Chromium driven over the DevTools protocol: open pages, read their state, take screenshots.

Used by ``benchmarks/viewer.py`` (what the web viewer shows, measured in a real browser) and by the viewer's
tests. Needs Debian's ``chromium`` and the ``websocket-client`` package (the dev extra). Every browser gets a
fresh profile and talks to loopback only; :meth:`Browser.close` ends the process it started.
"""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

from jetseg.errors import JetsegError
from jetseg.optional import require

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
         "--disable-backgrounding-occluded-windows", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0")


def chromium_path() -> Optional[str]:
    """Debian's chromium on PATH, or None."""
    return shutil.which("chromium")


class Tab:
    """One page, driven over its DevTools websocket."""

    def __init__(self, ws_url: str, timeout_s: float) -> None:
        websocket = require("websocket", "driving headless chromium (pip install websocket-client)")
        self._ws = websocket.create_connection(ws_url, timeout=timeout_s, suppress_origin=True)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Dict[str, Any]:
        """Send one DevTools command and return its result (events in between are skipped)."""
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") != ident:
                continue
            if "error" in message:
                raise JetsegError("chromium %s failed: %s" % (method, message["error"].get("message")))
            return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        out = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise JetsegError("page script %r failed: %s" % (expression[:80], out["exceptionDetails"].get("text")))
        return out.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; raise with the expression after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise JetsegError("the page did not reach %r within %.0f s" % (expression, timeout_s))
            time.sleep(0.1)

    def busy(self) -> Dict[str, float]:
        """The page's main-thread time so far, seconds: ``task``, ``script``, ``layout``, ``style`` (DevTools'
        ``Performance.getMetrics``; the first call enables the counters)."""
        self.call("Performance.enable")
        values = {m["name"]: float(m["value"]) for m in self.call("Performance.getMetrics").get("metrics", [])}
        return {"task": values.get("TaskDuration", 0.0), "script": values.get("ScriptDuration", 0.0),
                "layout": values.get("LayoutDuration", 0.0), "style": values.get("RecalcStyleDuration", 0.0)}

    def viewport(self, width: int, height: int, mobile: bool = False, scale: float = 1.0) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=scale,
                  mobile=mobile)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._ws.close()


class Browser:
    """A headless chromium with a fresh profile; ``with Browser() as b: tab = b.open(url)``."""

    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 30.0) -> None:
        path = chromium_path()
        if path is None:
            raise JetsegError("chromium is not installed; apt-get install chromium (./setup.sh installs it)")
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="jetseg-chromium-")
        self._proc = subprocess.Popen([path, *FLAGS, "--user-data-dir=%s" % self._profile,
                                       "--window-size=%d,%d" % (width, height), "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = self._debug_port()
        self.tabs: List[Tab] = []
        self._browser: Optional[Tab] = None  # the browser-wide DevTools connection, made on first open()

    def _debug_port(self) -> int:
        marker = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise JetsegError("chromium exited with code %s at start" % self._proc.returncode)
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.05)
        self.close()
        raise JetsegError("chromium did not open its DevTools port within %.0f s" % self.timeout_s)

    def _about(self) -> Dict[str, Any]:
        """DevTools' ``/json/version``: the browser's version and its websocket."""
        with urllib.request.urlopen("http://127.0.0.1:%d/json/version" % self.port, timeout=self.timeout_s) as resp:
            return dict(json.loads(resp.read()))

    def version(self) -> str:
        """The browser's name and version, e.g. ``Chrome/120.0.6099.224`` (HeadlessChrome for headless)."""
        return str(self._about().get("Browser", "unknown"))

    def open(self, url: str) -> Tab:
        """A new window at ``url`` (each its own window: a background tab is hidden and draws nothing)."""
        if self._browser is None:
            self._browser = Tab(self._about()["webSocketDebuggerUrl"], self.timeout_s)
        target = self._browser.call("Target.createTarget", url=url, newWindow=True)["targetId"]
        tab = Tab("ws://127.0.0.1:%d/devtools/page/%s" % (self.port, target), self.timeout_s)
        self.tabs.append(tab)
        return tab

    @property
    def pid(self) -> int:
        """The browser process's id (its renderers and GPU process are its descendants)."""
        return int(self._proc.pid)

    def close(self) -> None:
        for tab in self.tabs + ([self._browser] if self._browser is not None else []):
            tab.close()
        self.tabs, self._browser = [], None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
